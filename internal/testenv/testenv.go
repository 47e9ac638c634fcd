// Package testenv finds the Python reference stack (TensorFlow, NumPy, OpenCV)
// that tfcat's tests compare against. A missing interpreter fails the test: the
// reference checks are never skipped.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Python returns the reference interpreter: $TFCAT_PYTHON, else the
// repository's .venv/bin/python (made by scripts/setup-python.sh).
func Python(t testing.TB) string {
	t.Helper()
	p := os.Getenv("TFCAT_PYTHON")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", ".venv", "bin", "python")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the Python reference interpreter %s is missing (run scripts/setup-python.sh or set TFCAT_PYTHON): %v", p, err)
	}
	return p
}

// RunPython runs the reference interpreter with args and returns its stdout; a
// non-zero exit fails the test with the script's stderr.
func RunPython(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(Python(t), args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "PYTHONHASHSEED=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
