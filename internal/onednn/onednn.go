// Package onednn turns on TensorFlow's oneDNN CPU kernels for a command that
// asks for them with a global --onednn flag, by starting the process again.
package onednn

import (
	"os"
	"syscall"
)

// TensorFlow reads TF_ENABLE_ONEDNN_OPTS while libtensorflow is being loaded,
// before any Go code runs, and leaves oneDNN off on CPUs without AVX-512
// extensions. On such CPUs oneDNN's fp32 kernels run the tutorial's network
// about twice as fast, with probabilities within 2e-7 of the default kernels
// (BENCHMARKS.md). The global flag --onednn turns them on by starting tfcat
// again with the variable set; TF_ENABLE_ONEDNN_OPTS in the environment does
// the same without the second start.

// Wanted reports whether the global flags (those before the command)
// include --onednn.
func Wanted(args []string) bool {
	for _, a := range args[1:] {
		switch {
		case a == "--onednn" || a == "-onednn" || a == "--onednn=true":
			return true
		case len(a) == 0 || a[0] != '-':
			return false // the command name: its flags are not global
		}
	}
	return false
}

// Reexec replaces the process with tfcat started again under
// TF_ENABLE_ONEDNN_OPTS=1, when --onednn asks for it and the variable is unset.
// It returns only if it did nothing or the exec failed.
func Reexec(args []string) {
	if !Wanted(args) {
		return
	}
	if _, set := os.LookupEnv("TF_ENABLE_ONEDNN_OPTS"); set {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	syscall.Exec(exe, args, append(os.Environ(), "TF_ENABLE_ONEDNN_OPTS=1"))
}
