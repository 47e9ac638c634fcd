// Package tflog quiets TensorFlow's C++ logging for a command-line program:
// it sets TF_CPP_MIN_LOG_LEVEL before libtensorflow reads it and, on Linux,
// filters the absl lines that the variable does not reach out of stderr.
package tflog

import (
	"os"
	"strconv"
)

// Quiet hides TensorFlow's info and warning logs unless the user set
// TF_CPP_MIN_LOG_LEVEL (TFCAT_TF_LOGS=1 keeps every line). Call it first in
// main, and Flush before exiting.
func Quiet() {
	level, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL")
	if !ok {
		level = "2"
		os.Setenv("TF_CPP_MIN_LOG_LEVEL", level)
	}
	// gRPC (the distributed runtime's) logs its own errors unless told not
	// to; tfcat reports what failed in one line.
	if _, ok := os.LookupEnv("GRPC_VERBOSITY"); !ok {
		os.Setenv("GRPC_VERBOSITY", "NONE")
	}
	n, _ := strconv.Atoi(level)
	start(n)
}
