// Package testenv finds the Python reference stack (TensorFlow, NumPy, OpenCV)
// that tfcat's tests compare against. A missing interpreter fails the test: the
// reference checks are never skipped.
package testenv

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
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
	p, err := python()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func python() (string, error) {
	p := os.Getenv("TFCAT_PYTHON")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".venv", "bin", "python"))
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the Python reference environment is missing (no %s): run bash scripts/setup-python.sh, or set TFCAT_PYTHON", p)
	}
	return p, nil
}

// M is what TestMain runs: *testing.M, or a wrapper such as RequirePython's.
type M interface{ Run() int }

type requirePython struct{ m M }

func (r requirePython) Run() int {
	if _, err := python(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return r.m.Run()
}

// RequirePython wraps the TestMain argument of a package whose tests compare
// against the Python reference: its Run fails the package with one line
// naming the set-up command when the interpreter is missing, instead of a
// failure per test. Nothing is skipped.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }
func RequirePython(m M) M { return requirePython{m} }

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

// WriteClassFolders writes a class folder tree for training tests and
// examples: perClass size×size grey PNGs in each of dir/<class>, class c
// brighter than class c-1 by a margin a small network learns in a few steps.
func WriteClassFolders(dir string, classes []string, perClass, size int) error {
	step := 180 / max(len(classes)-1, 1)
	for c, class := range classes {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			return err
		}
		for i := range perClass {
			img := image.NewGray(image.Rect(0, 0, size, size))
			for p := range img.Pix {
				img.Pix[p] = uint8(20 + step*c + (p*7+i*13)%50)
			}
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, class, fmt.Sprintf("%03d.png", i)), b.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
