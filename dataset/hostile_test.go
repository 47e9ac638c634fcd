package dataset

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/hostile"
)

// The JPEG of issue 16: a header claiming 10000×10000 and entropy-coded data
// that ends at once. With the generous default pixel limit that training
// uses (10^8 pixels: it passes), decoding stops at the first MCU row: the
// output buffer grows with the rows decoded, so the refusal costs one 4 MB
// step of it, where decoding the whole declared image (as when libjpeg's
// "premature end of data" was only recorded) allocated 300 MB and took
// 1.6 s. The bound is on memory, which is deterministic: the Go heap
// allocated during the call and the growth of the peak resident set (C
// memory included), read after every call. The time is
// BenchmarkJPEGBombRefused's.
func TestJPEGBombRefusedQuickly(t *testing.T) {
	data := hostile.JPEG(10000, 10000)
	for _, ch := range []int{3, 1} {
		var err error
		c, merr := fuzzlimit.MeasurePeak(func() { _, err = PreprocessLimit(data, 128, ch, 0) })
		if merr != nil {
			t.Fatal(merr)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "premature end of data") {
			t.Errorf("%d channels: error %v, want a truncated file", ch, err)
		}
		t.Logf("%d-byte JPEG claiming 10000x10000, %d channels: refused, %d KB allocated, peak RSS growth %d KB (reset peak: %v): %v",
			len(data), ch, c.GoAlloc>>10, c.PeakRSS>>10, c.RSSExact, err)
		// The whole image is 10^8×ch bytes; 20 MB is 200 rows of 10000
		// 3-channel pixels at most, of the 10000 the header claims.
		if !c.PeakRead || c.GoAlloc > 20<<20 || c.PeakRSS > 20<<20 {
			t.Errorf("%d channels: %+v, want under 20 MB allocated and 20 MB of peak RSS growth", ch, c)
		}
	}
}

// BenchmarkJPEGBombRefused is the time TestJPEGBombRefusedQuickly's refusal
// takes: the target is under 50 ms (1.6 s when the whole declared image was
// decoded).
//
//	go test -run '^$' -bench JPEGBombRefused ./dataset/
func BenchmarkJPEGBombRefused(b *testing.B) {
	data := hostile.JPEG(10000, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PreprocessLimit(data, 128, 3, 0); !errors.Is(err, ErrCorrupt) {
			b.Fatalf("error %v, want a truncated file", err)
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

// hostileTree writes goodTree's 8 images and 18 hostile files beside them:
// JPEGs claiming 10000×10000 with no data, PNGs of 10000×10000 cut in half,
// a PNG header claiming 10000×10000 with no data, a cut JPEG. It returns the
// hostile files by slash path under dir.
func hostileTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
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
	return files
}

// Training on a folder that holds hostile files skips them, names each with
// what is wrong, and with bounded memory: the PNGs are refused from their
// headers (their data cannot hold the pixels claimed), the JPEG bombs at
// their first rows. Each hostile file claims 10^8 pixels (300 MB decoded);
// the whole load may allocate 8 MB per hostile file (a JPEG's 4 MB output
// step and libjpeg's tables; a PNG's nothing), 144 MB in all, less than one
// of them decoded. The time is BenchmarkLoadHostileFiles's.
func TestLoadSkipsHostileFiles(t *testing.T) {
	dir := t.TempDir()
	files := hostileTree(t, dir)
	var set *Set
	var err error
	c, merr := fuzzlimit.MeasurePeak(func() { set, err = Load(dir, Options{Size: 32}) })
	if merr != nil {
		t.Fatal(merr)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := set.Report()
	t.Logf("loaded: %d KB allocated, peak RSS growth %d KB: %s", c.GoAlloc>>10, c.PeakRSS>>10, r.String())
	if len(r.Skipped) != len(files) || r.Images != 8 {
		t.Errorf("skipped %d of %d hostile files, kept %d images, want 8:\n%s", len(r.Skipped), len(files), r.Images, r.String())
	}
	// What each is refused for ("truncated" alone is in every ErrCorrupt
	// message): the PNGs from the header, before image/png allocates the
	// 10000×10000 image.
	reason := func(rel string) string {
		switch {
		case strings.HasSuffix(rel, ".png"):
			return "bytes of image data cannot hold 10000x10000 pixels"
		case strings.Contains(rel, "/bomb"):
			return "jpeg: Corrupt JPEG data: premature end of data segment"
		}
		return "jpeg: truncated file (Corrupt JPEG data: premature end of data segment)"
	}
	for _, p := range r.Skipped {
		rel := filepath.ToSlash(strings.TrimPrefix(p.Path, dir+string(filepath.Separator)))
		if _, ok := files[rel]; !ok {
			t.Errorf("skipped %s, which is not one of the hostile files", p.Path)
			continue
		}
		if want := reason(rel); !errors.Is(p.Err, ErrCorrupt) || !strings.Contains(p.Err.Error(), want) {
			t.Errorf("%s: %v, want an ErrCorrupt saying %q", rel, p.Err, reason(rel))
		}
	}
	if bound := uint64(len(files)) * 8 << 20; !c.PeakRead || c.GoAlloc > bound || c.PeakRSS > int64(bound) {
		t.Errorf("loading %d hostile files: %+v, want under %d MB allocated and %d MB of peak RSS growth", len(files), c, bound>>20, bound>>20)
	}
}

// BenchmarkLoadHostileFiles is the time TestLoadSkipsHostileFiles's load
// takes: the target is under 3 s on 2 cores.
//
//	go test -run '^$' -bench LoadHostileFiles ./dataset/
func BenchmarkLoadHostileFiles(b *testing.B) {
	dir := b.TempDir()
	files := hostileTree(b, dir)
	for b.Loop() {
		set, err := Load(dir, Options{Size: 32})
		if err != nil {
			b.Fatal(err)
		}
		if r := set.Report(); len(r.Skipped) != len(files) {
			b.Fatalf("skipped %d of %d hostile files", len(r.Skipped), len(files))
		}
	}
}
