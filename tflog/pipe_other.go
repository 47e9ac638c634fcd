//go:build !linux || !cgo

package tflog

// start does nothing where the filter is not built: there
// TF_CPP_MIN_LOG_LEVEL, set in init, is all.
func start(int) {}

// Flush does nothing where no filter runs.
func Flush() {}

// Active reports whether the filter runs: never here.
func Active() bool { return false }
