// Package tflog keeps TensorFlow's C++ log lines off the standard error of a
// program that imports it.
//
// libtensorflow logs at INFO level while it loads ("oneDNN custom operations
// are on", "This TensorFlow binary is optimized to use available CPU
// instructions", on CPUs with AVX512_VNNI, AVX512_BF16 or AMX), then through
// absl when a session first runs ("WARNING: All log messages before
// absl::InitializeLog() ...", "I0000 ... MLIR V1 optimization pass is not
// enabled"). TF_CPP_MIN_LOG_LEVEL set from Go comes too late for the first
// kind — TensorFlow reads it once, at its first line, while the library loads
// — and never reaches the second. So importing tflog routes file descriptor 2
// through a filter from before the library's initialisers run until Flush:
//
//	import _ "github.com/tfcat/tfcat/tflog" // in package main
//
//	func main() {
//		code := run()
//		tflog.Flush() // before exiting: pass on what C++ wrote last
//		os.Exit(code)
//	}
//
// The filter drops TensorFlow's and absl's INFO lines (and WARNING lines at
// level 2) with their continuation lines, and passes everything else on as it
// arrives. The level is TF_CPP_MIN_LOG_LEVEL if the user set it (0 shows every
// line: no filter), else 2; TFCAT_TF_LOGS=1 turns the filter off. Go's own
// os.Stderr keeps the original descriptor, so Go output is never delayed; an
// unhandled panic is also written there (debug.SetCrashOutput). Where the
// filter cannot run (not Linux, no cgo) importing tflog only sets
// TF_CPP_MIN_LOG_LEVEL.
//
// The library packages of tfcat never import tflog: a program's standard error
// is its own to change.
package tflog

import (
	"os"
	"strconv"
)

// Env turns the filter off when set to 1.
const Env = "TFCAT_TF_LOGS"

// level is the TF_CPP_MIN_LOG_LEVEL the filter applies: the user's if set,
// else 2 (errors only); -1 when TFCAT_TF_LOGS=1.
func level(lookup func(string) (string, bool)) int {
	if v, _ := lookup(Env); v == "1" {
		return -1
	}
	if v, ok := lookup("TF_CPP_MIN_LOG_LEVEL"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0 // TensorFlow reads an unparsable level as 0
		}
		return n
	}
	return 2
}

func init() {
	lvl := level(os.LookupEnv)
	if lvl < 0 {
		return
	}
	// For libraries that read the variable after this point (TensorFlow on
	// CPUs where nothing logs while it loads) and for child processes.
	if _, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); !ok {
		os.Setenv("TF_CPP_MIN_LOG_LEVEL", strconv.Itoa(lvl))
	}
	// gRPC (TensorFlow's distributed runtime) logs its own errors unless
	// told not to; tfcat reports what failed in one line.
	if _, ok := os.LookupEnv("GRPC_VERBOSITY"); !ok {
		os.Setenv("GRPC_VERBOSITY", "NONE")
	}
	start(lvl)
}
