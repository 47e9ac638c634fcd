package dataset

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/hostile"
)

// The JPEG of issue 16: a header claiming 10000×10000 and entropy-coded data
// that ends at once. With the generous default pixel limit that training
// uses (10^8 pixels: it passes), decoding stops at the first MCU row: under
// 50 ms and 20 MB, where it took 1.6 s and 530 MB when libjpeg's "premature
// end of data" was recorded and the whole declared image decoded anyway.
func TestJPEGBombRefusedQuickly(t *testing.T) {
	data := hostile.JPEG(10000, 10000)
	for _, ch := range []int{3, 1} {
		var err error
		c, merr := fuzzlimit.Measure(func() { _, err = PreprocessLimit(data, 128, ch, 0) })
		if merr != nil {
			t.Fatal(merr)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%d channels: error %v, want a truncated file", ch, err)
		}
		// Measure reads the peak only when the input ran long enough to
		// touch 20 MB quickly; read it here in any case.
		peak, perr := fuzzlimit.PeakRSS()
		rss, rerr := fuzzlimit.RSS()
		if perr != nil || rerr != nil {
			t.Fatal(perr, rerr)
		}
		t.Logf("%d-byte JPEG claiming 10000x10000, %d channels: refused in %v, %d KB allocated, peak RSS growth <= %d KB: %v",
			len(data), ch, c.Time, c.GoAlloc>>10, max(c.PeakRSS, peak-rss)>>10, err)
		if c.Time > 50*time.Millisecond || c.GoAlloc > 20<<20 || c.PeakRSS > 20<<20 {
			t.Errorf("%d channels: %+v, want under 50 ms and 20 MB", ch, c)
		}
	}
}

// DecodeMemory must bound what a decode holds: checked with the garbage
// collector off, so that everything allocated stays counted in the peak RSS.
func TestDecodeMemoryBound(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for name, data := range map[string][]byte{
		"jpeg":       encJPEG(t, testRGBA(3000, 2000, 1)),
		"png rgba":   encPNG(t, testRGBA(1500, 1500, 2)),
		"png bomb":   hostile.PNG(5000, 5000),
		"bmp":        encBMP(2000, 1500, 3),
		"gif":        encGIF(t, testRGBA(1000, 1000, 4)),
		"jpeg bomb":  hostile.JPEG(8000, 8000),
		"png header": hugePNG(8000, 8000),
	} {
		h, err := ReadHeader(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ch := range []int{3, 1} {
			debug.FreeOSMemory()
			var derr error
			c, err := fuzzlimit.Measure(func() { _, derr = Decode(data, ch, 0) })
			if err != nil {
				t.Fatal(err)
			}
			bound := h.DecodeMemory(ch)
			t.Logf("%s %dx%d, %d channels: allocated %d MB, peak RSS growth %d MB, bound %d MB (%v)",
				name, h.Width, h.Height, ch, c.GoAlloc>>20, c.PeakRSS>>20, bound>>20, derr)
			if c.PeakRSS > bound {
				t.Errorf("%s, %d channels: the peak RSS grew %d bytes, over DecodeMemory %d", name, ch, c.PeakRSS, bound)
			}
		}
	}
}

// Training on a folder that holds hostile files skips them, names each with
// what is wrong, and takes bounded time.
func TestLoadSkipsHostileFiles(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"cats", "dogs"}, 4)
	bomb := hostile.JPEG(10000, 10000)
	png := hostile.PNG(10000, 10000)
	files := map[string][]byte{}
	for i := range 8 {
		files[fmt.Sprintf("cats/bomb%d.jpg", i)] = bomb
		files[fmt.Sprintf("dogs/cut%d.png", i)] = hostile.Truncate(png, len(png)/2)
	}
	files["cats/header.png"] = hugePNG(10000, 10000)
	files["dogs/cut.jpg"] = hostile.Truncate(hostile.Gradient(640, 480, 1), 3000)
	writeFiles(t, dir, files)
	start := time.Now()
	set, err := Load(dir, Options{Size: 32})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	r := set.Report()
	t.Logf("loaded in %v: %s", took, r.String())
	if len(r.Skipped) != len(files) || r.Images != 8 {
		t.Errorf("skipped %d of %d hostile files, kept %d images, want 8:\n%s", len(r.Skipped), len(files), r.Images, r.String())
	}
	for _, p := range r.Skipped {
		if !errors.Is(p.Err, ErrCorrupt) || !strings.Contains(p.Err.Error(), "truncated") {
			t.Errorf("%s: %v, want a truncated file", p.Path, p.Err)
		}
		if _, ok := files[filepath.ToSlash(strings.TrimPrefix(p.Path, dir+string(filepath.Separator)))]; !ok {
			t.Errorf("skipped %s, which is not one of the hostile files", p.Path)
		}
	}
	if took > 3*time.Second {
		t.Errorf("loading took %v, want under 3 s", took)
	}
}
