// Package onednn turns on TensorFlow's oneDNN CPU kernels for the commands
// that run long enough to gain from them, by starting the process again.
package onednn

import (
	"os"
	"strings"
	"syscall"
)

// TensorFlow reads TF_ENABLE_ONEDNN_OPTS while libtensorflow is being loaded,
// before any Go code runs, and on Linux leaves oneDNN off unless the CPU has
// AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX. On other CPUs oneDNN's fp32 kernels run the tutorial's network
// about twice as fast, with probabilities within 2e-7 of the default kernels
// (BENCHMARKS.md). tfcat therefore starts itself again with the variable set
// for the commands that run many steps — train, eval, serve and predict of a
// folder or several images — which costs one more library load (about
// 0.35 s). A one-image predict gains less than that and stays as it is.
//
// On Linux TensorFlow already turns oneDNN on by itself on CPUs with
// neural-network instructions (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX): there
// tfcat does not restart, as the variable would change nothing.
//
// Off switches: the global flag --onednn=false, or TF_ENABLE_ONEDNN_OPTS set
// in the environment (to 0 for TensorFlow's default kernels; to 1 for oneDNN
// without the second start). The global flag --onednn turns it on for every
// command, one-image predict included.

// Env is the variable TensorFlow reads.
const Env = "TF_ENABLE_ONEDNN_OPTS"

// longCommands gain from oneDNN whatever their arguments.
var longCommands = map[string]bool{"train": true, "eval": true, "serve": true}

// PredictValueFlags are predict's flags that take a value, so that Wanted can
// tell a flag's value from an image argument.
var PredictValueFlags = []string{"model", "m", "classes", "format", "f", "batch", "device", "threads", "precision"}

// Wanted reports whether the command line asks for oneDNN: the global flags
// (those before the command) say so, or, without --onednn among them, the
// command is one that runs many steps.
func Wanted(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--onednn" || a == "-onednn" || a == "--onednn=true" || a == "-onednn=true":
			return true
		case a == "--onednn=false" || a == "-onednn=false":
			return false
		case a == "" || a[0] != '-':
			if longCommands[a] {
				return true
			}
			return a == "predict" && manyImages(args[i+1:])
		}
	}
	return false
}

// manyImages reports whether predict's arguments name a folder or more than
// one image.
func manyImages(args []string) bool {
	var paths []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			paths = append(paths, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			paths = append(paths, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		for _, f := range PredictValueFlags {
			if name == f {
				i++ // its value
				break
			}
		}
	}
	if len(paths) != 1 {
		return len(paths) > 1
	}
	fi, err := os.Stat(paths[0])
	return err == nil && fi.IsDir()
}

// Reexec replaces the process with tfcat started again under
// TF_ENABLE_ONEDNN_OPTS=1 when Wanted says so and the variable is unset. It
// returns only if it did nothing or the exec failed (tfcat then runs with
// TensorFlow's default kernels). before, if not nil, runs just before the exec
// (tfcat puts its original standard error back there).
func Reexec(args []string, before func()) {
	if _, set := os.LookupEnv(Env); set || !Wanted(args) || TensorFlowDefault(cpuFlags()) {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if before != nil {
		before()
	}
	syscall.Exec(exe, args, append(os.Environ(), Env+"=1"))
}

// tfDefaultFlags are the /proc/cpuinfo flags on which TensorFlow 2.18 turns
// oneDNN on by itself on Linux (tensorflow/core/util/port.cc, IsMklEnabled).
var tfDefaultFlags = []string{"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}

// TensorFlowDefault reports whether TensorFlow turns oneDNN on by itself on a
// CPU with these flags (as /proc/cpuinfo lists them).
func TensorFlowDefault(flags []string) bool {
	for _, f := range flags {
		for _, w := range tfDefaultFlags {
			if f == w {
				return true
			}
		}
	}
	return false
}

// cpuFlags are the first CPU's flags in /proc/cpuinfo; none where it cannot be read.
func cpuFlags() []string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			return strings.Fields(v)
		}
	}
	return nil
}

// On reports whether TensorFlow runs its oneDNN kernels in this process: as
// TF_ENABLE_ONEDNN_OPTS says, or by its own default for this CPU.
func On() bool {
	switch os.Getenv(Env) {
	case "0", "false", "False", "FALSE":
		return false
	case "1", "true", "True", "TRUE":
		return true
	}
	return TensorFlowDefault(cpuFlags())
}

// BF16 reports whether oneDNN multiplies bfloat16 in hardware here: the CPU
// has AVX512_BF16 or AMX and ONEDNN_MAX_CPU_ISA does not cap oneDNN below
// them. Elsewhere oneDNN emulates bfloat16, slower than float32.
func BF16() bool {
	switch strings.ToUpper(os.Getenv("ONEDNN_MAX_CPU_ISA")) {
	case "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI":
		return false
	}
	for _, f := range cpuFlags() {
		if f == "avx512_bf16" || f == "amx_bf16" {
			return true
		}
	}
	return false
}
