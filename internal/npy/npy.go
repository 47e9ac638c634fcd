// Package npy reads and writes NumPy .npy files (format versions 1.0–3.0) holding
// little-endian float32, float64, int32, int64 or uint8 arrays in C order. tfcat uses
// it to hand tensors to and from Python for parity checks.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is an n-dimensional array in C (row-major) order. Exactly one of the data
// slices is set, matching Dtype.
type Array struct {
	Shape   []int
	Dtype   string // NumPy descr: "<f4", "<f8", "<i4", "<i8" or "|u1"
	Float32 []float32
	Float64 []float64
	Int32   []int32
	Int64   []int64
	Uint8   []uint8
}

// Len is the number of elements the shape describes.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Float64s returns the data converted to float64, whatever the dtype.
func (a *Array) Float64s() []float64 {
	out := make([]float64, 0, a.Len())
	switch {
	case a.Float32 != nil:
		for _, v := range a.Float32 {
			out = append(out, float64(v))
		}
	case a.Float64 != nil:
		out = append(out, a.Float64...)
	case a.Int32 != nil:
		for _, v := range a.Int32 {
			out = append(out, float64(v))
		}
	case a.Int64 != nil:
		for _, v := range a.Int64 {
			out = append(out, float64(v))
		}
	case a.Uint8 != nil:
		for _, v := range a.Uint8 {
			out = append(out, float64(v))
		}
	}
	return out
}

var magic = []byte("\x93NUMPY")

// Write writes data (a []float32, []float64, []int32, []int64 or []uint8) with the
// given shape as a version 1.0 .npy stream.
func Write(w io.Writer, shape []int, data any) error {
	var descr string
	var n int
	switch d := data.(type) {
	case []float32:
		descr, n = "<f4", len(d)
	case []float64:
		descr, n = "<f8", len(d)
	case []int32:
		descr, n = "<i4", len(d)
	case []int64:
		descr, n = "<i8", len(d)
	case []uint8:
		descr, n = "|u1", len(d)
	default:
		return fmt.Errorf("npy: unsupported data type %T", data)
	}
	want := 1
	dims := make([]string, len(shape))
	for i, s := range shape {
		if s < 0 {
			return fmt.Errorf("npy: negative dimension %d in shape %v", s, shape)
		}
		want *= s
		dims[i] = strconv.Itoa(s)
	}
	if want != n {
		return fmt.Errorf("npy: shape %v holds %d values, data has %d", shape, want, n)
	}
	shapeStr := strings.Join(dims, ", ")
	if len(shape) == 1 {
		shapeStr += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shapeStr)
	// Pad so the data starts on a 64-byte boundary; the header ends in '\n'.
	total := len(magic) + 2 + 2 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	bw := bufio.NewWriter(w)
	bw.Write(magic)
	bw.Write([]byte{1, 0})
	binary.Write(bw, binary.LittleEndian, uint16(len(header)))
	bw.WriteString(header)
	if err := binary.Write(bw, binary.LittleEndian, data); err != nil {
		return fmt.Errorf("npy: writing data: %w", err)
	}
	return bw.Flush()
}

// WriteFile writes data to path as .npy; see Write.
func WriteFile(path string, shape []int, data any) error {
	var buf bytes.Buffer
	if err := Write(&buf, shape, data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

var (
	descrRE = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	fortRE  = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// maxElements bounds what a header may claim, so a corrupt file cannot make Read
// allocate without limit.
const maxElements = 1 << 31

// Read parses one .npy stream.
func Read(r io.Reader) (*Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: reading magic: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var l uint16
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int(l)
	case 2, 3:
		var l uint32
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", err)
		}
		if l > 1<<20 {
			return nil, fmt.Errorf("npy: header length %d too large", l)
		}
		hlen = int(l)
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: reading header: %w", err)
	}
	h := string(hdr)
	m := descrRE.FindStringSubmatch(h)
	if m == nil {
		return nil, fmt.Errorf("npy: header has no descr: %q", h)
	}
	a := &Array{Dtype: m[1]}
	if f := fortRE.FindStringSubmatch(h); f == nil || f[1] != "False" {
		return nil, errors.New("npy: only C-order arrays are supported")
	}
	s := shapeRE.FindStringSubmatch(h)
	if s == nil {
		return nil, fmt.Errorf("npy: header has no shape: %q", h)
	}
	n := 1
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("npy: bad dimension %q", part)
		}
		a.Shape = append(a.Shape, d)
		if d > 0 && n > maxElements/d {
			return nil, fmt.Errorf("npy: shape %v too large", a.Shape)
		}
		n *= d
	}
	var err error
	switch a.Dtype {
	case "<f4":
		a.Float32 = make([]float32, n)
		err = binary.Read(r, binary.LittleEndian, a.Float32)
	case "<f8":
		a.Float64 = make([]float64, n)
		err = binary.Read(r, binary.LittleEndian, a.Float64)
	case "<i4":
		a.Int32 = make([]int32, n)
		err = binary.Read(r, binary.LittleEndian, a.Int32)
	case "<i8":
		a.Int64 = make([]int64, n)
		err = binary.Read(r, binary.LittleEndian, a.Int64)
	case "|u1", "<u1", "|b1":
		a.Uint8 = make([]uint8, n)
		_, err = io.ReadFull(r, a.Uint8)
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %q", a.Dtype)
	}
	if err != nil {
		return nil, fmt.Errorf("npy: reading %d values of %s: %w", n, a.Dtype, err)
	}
	return a, nil
}

// ReadFile reads the .npy file at path.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// MaxRelDiff is the largest |a-b| / max(|a|,|b|,floor) over two equally long
// slices; floor keeps values near zero from dominating.
func MaxRelDiff(a, b []float64, floor float64) float64 {
	worst := 0.0
	for i := range a {
		d := math.Abs(a[i] - b[i])
		den := math.Max(math.Max(math.Abs(a[i]), math.Abs(b[i])), floor)
		if r := d / den; r > worst || math.IsNaN(r) {
			worst = r
		}
	}
	return worst
}
