package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
)

// pythonPath returns the reference interpreter; a missing one fails the test:
// parity is not optional.
func pythonPath(t testing.TB) string { return testenv.Python(t) }

// runPython runs a script from testdata with the reference interpreter.
func runPython(t testing.TB, timeout time.Duration, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonPath(t), append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENCV_FOR_THREADS_NUM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v (the reference Python needs numpy, opencv-python-headless and pillow: scripts/setup-python.sh)\n%s",
			script, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type parityManifest struct {
	Files []struct {
		File        string `json:"file"`
		Kind        string `json:"kind"`
		None        bool   `json:"none"`
		ExpectError bool   `json:"expect_error"`
	} `json:"files"`
	Resize []struct {
		Name          string `json:"name"`
		Channels      int    `json:"channels"`
		Width, Height int
	} `json:"resize"`
	Versions map[string]string `json:"versions"`
}

// diffStat accumulates differences for one kind of file.
type diffStat struct {
	files, badFiles int
	values, diff    int
	maxDiff         float64
	first           string
}

func (d *diffStat) add(file, what string, got []uint8, want *npy.Array, shape []int) {
	if !slices.Equal(want.Shape, shape) {
		d.diff++
		if d.first == "" {
			d.first = fmt.Sprintf("%s %s: shape %v, want %v", file, what, shape, want.Shape)
		}
		return
	}
	n := 0
	for i, v := range want.Uint8 {
		if got[i] != v {
			n++
			d.maxDiff = max(d.maxDiff, math.Abs(float64(got[i])-float64(v)))
		}
	}
	d.values += len(got)
	d.diff += n
	if n > 0 && d.first == "" {
		d.first = fmt.Sprintf("%s %s: %d of %d values differ", file, what, n, len(got))
	}
}

func (d *diffStat) addFloat(file, what string, got []float32, want *npy.Array) {
	n := 0
	for i, v := range want.Float32 {
		if math.Float32bits(got[i]) != math.Float32bits(v) {
			n++
			d.maxDiff = max(d.maxDiff, math.Abs(float64(got[i])-float64(v)))
		}
	}
	d.values += len(got)
	d.diff += n
	if n > 0 && d.first == "" {
		d.first = fmt.Sprintf("%s %s: %d of %d float32 values differ", file, what, n, len(got))
	}
}

// TestParityOpenCV compares decoding, resizing and the float32 conversion
// with opencv-python on a generated corpus (testdata/parity.py): every
// uint8 and every float32 bit must match.
func TestParityOpenCV(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	out := runPython(t, 5*time.Minute, "parity.py", dir)
	t.Logf("reference: %s(%.1fs)", out, time.Since(start).Seconds())
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m parityManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	t.Logf("reference versions: %v", m.Versions)
	if len(m.Files) < 200 {
		t.Errorf("corpus has %d files, want at least 200", len(m.Files))
	}

	// The float32 conversion of every byte value.
	scale, err := npy.ReadFile(filepath.Join(dir, "scale.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for v := range 256 {
		if math.Float32bits(scale255[v]) != math.Float32bits(scale.Float32[v]) {
			t.Errorf("float32 of %d: %v (%#x), NumPy %v (%#x)", v, scale255[v], math.Float32bits(scale255[v]),
				scale.Float32[v], math.Float32bits(scale.Float32[v]))
		}
	}

	ref := func(name string) *npy.Array {
		a, err := npy.ReadFile(filepath.Join(dir, "ref", name))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	stats := map[string]*diffStat{}
	var s scratch
	for _, f := range m.Files {
		st := stats[f.Kind]
		if st == nil {
			st = &diffStat{}
			stats[f.Kind] = st
		}
		st.files++
		before := st.diff
		data, err := os.ReadFile(filepath.Join(dir, "corpus", f.File))
		if err != nil {
			t.Fatal(err)
		}
		if f.ExpectError {
			// Truncated files: refused, whatever cv2.imread makes of them.
			_, err := s.decode(data, 3, 0)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: error %v, want ErrCorrupt", f.File, err)
			}
			// Decoding stops at libjpeg's first warning of damaged data, so
			// there is no "decoded anyway" image to compare with what
			// cv2.imread returns.
			t.Logf("%s: refused (%v)", f.File, err)
			continue
		}
		for _, c := range []struct {
			ch, size  int
			dec, r, f string
		}{{3, 128, "dec3", "r128", "f128"}, {1, 28, "dec1", "r28", "f28"}} {
			img, err := s.decode(data, c.ch, 0)
			if f.None {
				// No OpenCV reference (GIF): it must still decode.
				if err != nil {
					t.Errorf("%s: %v", f.File, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (%d channels): %v", f.File, c.ch, err)
				st.diff++
				continue
			}
			shape := []int{img.Height, img.Width}
			if c.ch == 3 {
				shape = append(shape, 3)
			}
			st.add(f.File, c.dec, img.Pix, ref(f.File+"."+c.dec+".npy"), shape)
			small := NewImage(c.size, c.size, c.ch)
			s.resizeInto(img, small.Pix, c.size, c.size)
			rshape := []int{c.size, c.size}
			if c.ch == 3 {
				rshape = append(rshape, 3)
			}
			st.add(f.File, c.r, small.Pix, ref(f.File+"."+c.r+".npy"), rshape)
			st.addFloat(f.File, c.f, small.Float32(nil), ref(f.File+"."+c.f+".npy"))
		}
		if st.diff > before {
			st.badFiles++
		}
	}
	kinds := make([]string, 0, len(stats))
	for k := range stats {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var report strings.Builder
	for _, k := range kinds {
		st := stats[k]
		fmt.Fprintf(&report, "  %-30s %3d files  %9d values checked  %d differ", k, st.files, st.values, st.diff)
		if st.diff > 0 {
			fmt.Fprintf(&report, " (max %g; %d files; first: %s)", st.maxDiff, st.badFiles, st.first)
			t.Errorf("%s: %d values differ from OpenCV in %d files (max diff %g); first: %s", k, st.diff, st.badFiles, st.maxDiff, st.first)
		}
		report.WriteByte('\n')
	}
	t.Logf("%d files, %d kinds:\n%s", len(m.Files), len(kinds), report.String())

	// Resize alone, for sizes and aspect ratios the corpus does not cover.
	for _, rc := range m.Resize {
		src, err := npy.ReadFile(filepath.Join(dir, "resize", rc.Name+".src.npy"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := npy.ReadFile(filepath.Join(dir, "resize", rc.Name+".dst.npy"))
		if err != nil {
			t.Fatal(err)
		}
		img := &Image{Width: src.Shape[1], Height: src.Shape[0], Channels: rc.Channels, Pix: src.Uint8}
		got, err := Resize(img, rc.Width, rc.Height)
		if err != nil {
			t.Fatal(err)
		}
		if n := countDiff(got.Pix, want.Uint8); n > 0 || len(got.Pix) != len(want.Uint8) {
			t.Errorf("resize %s: %d of %d values differ", rc.Name, n, len(want.Uint8))
		}
	}
}

func countDiff(a, b []uint8) int {
	if len(a) != len(b) {
		return max(len(a), len(b))
	}
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
