package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		shape []int
		data  any
	}{
		{[]int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}},
		{[]int{3}, []float64{1, 2.5, -3}},
		{[]int{2, 1}, []int32{7, -8}},
		{[]int{1}, []int64{1 << 40}},
		{[]int{2, 2, 1}, []uint8{0, 1, 254, 255}},
		{[]int{0, 4}, []float32{}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if err := Write(&buf, c.shape, c.data); err != nil {
			t.Fatal(err)
		}
		if buf.Len()%64 != 0 && buf.Len() < 64 {
			t.Errorf("%T: header not padded", c.data)
		}
		a, err := Read(&buf)
		if err != nil {
			t.Fatalf("%T: %v", c.data, err)
		}
		if !slices.Equal(a.Shape, c.shape) {
			t.Errorf("%T: shape %v, want %v", c.data, a.Shape, c.shape)
		}
		var got any
		switch {
		case a.Float32 != nil:
			got = a.Float32
		case a.Float64 != nil:
			got = a.Float64
		case a.Int32 != nil:
			got = a.Int32
		case a.Int64 != nil:
			got = a.Int64
		case a.Uint8 != nil:
			got = a.Uint8
		}
		if a.Len() > 0 && !equalAny(got, c.data) {
			t.Errorf("%T: read %v, want %v", c.data, got, c.data)
		}
	}
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		return slices.Equal(x, b.([]float32))
	case []float64:
		return slices.Equal(x, b.([]float64))
	case []int32:
		return slices.Equal(x, b.([]int32))
	case []int64:
		return slices.Equal(x, b.([]int64))
	case []uint8:
		return slices.Equal(x, b.([]uint8))
	}
	return false
}

func TestErrors(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []int{3}, []float32{1}); err == nil {
		t.Error("shape/data mismatch accepted")
	}
	if err := Write(&bytes.Buffer{}, []int{1}, []string{"x"}); err == nil {
		t.Error("string data accepted")
	}
	for _, bad := range []string{"", "NOTNUMPY", "\x93NUMPY\x01\x00\x05\x00{'de"} {
		if _, err := Read(strings.NewReader(bad)); err == nil {
			t.Errorf("Read(%q) gave no error", bad)
		}
	}
	huge := "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	b.WriteByte(byte(len(huge)))
	b.WriteByte(0)
	b.WriteString(huge)
	if _, err := Read(&b); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("huge shape: %v", err)
	}
}

// TestNumPyAgrees: NumPy reads what Write writes, and Read reads what np.save writes.
func TestNumPyAgrees(t *testing.T) {
	dir := t.TempDir()
	goFile := filepath.Join(dir, "go.npy")
	if err := WriteFile(goFile, []int{2, 2}, []float32{0.5, -1, 3, 1e-8}); err != nil {
		t.Fatal(err)
	}
	pyFile := filepath.Join(dir, "py.npy")
	script := filepath.Join(dir, "check.py")
	os.WriteFile(script, []byte(`import sys, numpy as np
a = np.load(sys.argv[1])
assert a.dtype == np.float32 and a.shape == (2, 2), (a.dtype, a.shape)
print(repr(a.ravel().tolist()))
np.save(sys.argv[2], np.arange(6, dtype=np.int64).reshape(3, 2) - 2)
`), 0o644)
	out := testenv.RunPython(t, script, goFile, pyFile)
	if !strings.Contains(out, "[0.5, -1.0, 3.0, 9.99999993922529e-09]") {
		t.Errorf("NumPy read %s", out)
	}
	a, err := ReadFile(pyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Shape, []int{3, 2}) || !slices.Equal(a.Int64, []int64{-2, -1, 0, 1, 2, 3}) {
		t.Errorf("read NumPy's file as %v %v", a.Shape, a.Int64)
	}
}
