//go:build !linux

package tflog

// start does nothing where the file-descriptor filter is not built: there
// TF_CPP_MIN_LOG_LEVEL alone quiets TensorFlow.
func start(int) {}

// Flush does nothing where no filter runs.
func Flush() {}
