package dataset

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/pixels"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"dogs", "cats"}, 10)
	writeFiles(t, dir, map[string][]byte{
		"README.txt":        []byte("not a class"),
		".git":              nil,
		"cats/notes.txt":    []byte("ignored"),
		"cats/.DS_Store":    []byte("ignored"),
		"cats/.hidden.jpg":  []byte("ignored like glob('*g') ignores it"),
		"dogs/sub":          nil,
		"dogs/thumbs/x.jpg": []byte("not read: not recursive"),
	})
	set, err := Load(dir, Options{Size: 32, ValidationSize: 0.25, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.Classes, []string{"cats", "dogs"}) {
		t.Errorf("classes %v, want sorted [cats dogs]", set.Classes)
	}
	r := set.Report()
	if r.Images != 20 || !slices.Equal(r.PerClass, []int{10, 10}) || len(r.Skipped) != 0 {
		t.Errorf("report: %s", r.String())
	}
	if len(r.Ignored) != 7 {
		t.Errorf("ignored %d entries, want 7: %v", len(r.Ignored), r.Ignored)
	}
	if set.Validation.Len() != 5 || set.Train.Len() != 15 { // int(0.25*20)
		t.Errorf("split %d/%d, want 5/15", set.Validation.Len(), set.Train.Len())
	}
	// Every stored image is what PreprocessFile gives for its file.
	for _, sp := range []*Split{set.Train, set.Validation} {
		for i := range sp.Len() {
			img, err := sp.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			want, err := PreprocessFile(sp.Path(i), 32, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Float32(nil); !slices.Equal(got, want) {
				t.Fatalf("%s: stored image differs from PreprocessFile", sp.Path(i))
			}
			wantLabel := slices.Index(set.Classes, filepath.Base(filepath.Dir(sp.Path(i))))
			if sp.Label(i) != wantLabel {
				t.Errorf("%s: label %d, want %d", sp.Path(i), sp.Label(i), wantLabel)
			}
		}
	}

	// Classes given: their order is the label order.
	set2, err := Load(dir, Options{Size: 8, Channels: 1, Classes: []string{"dogs", "cats"}, ValidationSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set2.Classes, []string{"dogs", "cats"}) || set2.Validation.Len() != 3 {
		t.Errorf("classes %v, validation %d", set2.Classes, set2.Validation.Len())
	}
	for i := range set2.Train.Len() {
		if want := map[string]int{"dogs": 0, "cats": 1}[filepath.Base(filepath.Dir(set2.Train.Path(i)))]; set2.Train.Label(i) != want {
			t.Fatalf("label %d for %s", set2.Train.Label(i), set2.Train.Path(i))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	png := encPNG(t, testRGBA(4, 4, 1))
	tests := []struct {
		name  string
		files map[string][]byte
		opts  Options
		want  string
	}{
		{"no classes", map[string][]byte{"a.png": png}, Options{}, "no class folders"},
		{"single class", map[string][]byte{"cats/a.png": png}, Options{}, "only one class folder (cats)"},
		{"empty class", map[string][]byte{"cats/a.png": png, "dogs": nil}, Options{}, `class "dogs" has no image files`},
		{"class without images", map[string][]byte{"cats/a.png": png, "dogs/a.txt": []byte("x")}, Options{}, `class "dogs" has no image files`},
		{"all files bad", map[string][]byte{"cats/a.png": png, "dogs/a.png": []byte("x")}, Options{}, `class "dogs": none of its image files`},
		{"missing class", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{Classes: []string{"cats", "birds"}}, `class "birds" has no folder`},
		{"class twice", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{Classes: []string{"cats", "cats"}}, "given twice"},
		{"bad class name", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{Classes: []string{"cats", "../dogs"}}, "invalid class name"},
		{"validation too big", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{ValidationSize: 2}, "leaves no training images"},
		{"validation fraction of count", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{ValidationSize: 1.5}, "whole number"},
		{"negative validation", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{ValidationSize: -1}, "invalid validation size"},
		{"channels", map[string][]byte{"cats/a.png": png, "dogs/a.png": png}, Options{Channels: 4}, "channels must be 1 or 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			for _, open := range []func(string, Options) (*Set, error){Load, Open} {
				_, err := open(dir, tt.opts)
				if tt.name == "all files bad" && err == nil {
					continue // Open cannot know before decoding
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v, want one containing %q", err, tt.want)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

// badFiles are unusable image files and the error each must give.
func badFiles(t testing.TB) map[string]struct {
	data []byte
	is   error
	msg  string
} {
	jpg := encJPEG(t, testRGBA(64, 48, 3))
	png := encPNG(t, testRGBA(20, 20, 4))
	corruptPNG := append([]byte(nil), png...)
	corruptPNG[len(corruptPNG)/2] ^= 0xFF
	return map[string]struct {
		data []byte
		is   error
		msg  string
	}{
		"a-empty.jpg":       {[]byte{}, ErrCorrupt, "empty file"},
		"b-truncated.jpg":   {jpg[:len(jpg)/2], ErrCorrupt, "truncated file"},
		"c-truncated.png":   {png[:len(png)-30], ErrCorrupt, "png"},
		"d-corrupt.png":     {corruptPNG, ErrCorrupt, "png"},
		"e-text.png":        {[]byte("hello, I am not an image"), ErrFormat, "not a JPEG, PNG, BMP or GIF"},
		"f-webp.jpeg":       {[]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), ErrFormat, "webp is not supported"},
		"g-huge.png":        {hugePNG(60000, 60000), ErrTooLarge, "3600000000 pixels"},
		"h-huge.jpg":        {hugeJPEG(t, 65000, 65000), ErrTooLarge, "limit"},
		"i-garbage.bmp":     {[]byte("BM\x00\x00\x00"), ErrCorrupt, "truncated header"},
		"j-truncated.gif":   {encGIF(t, testRGBA(10, 10, 5))[:30], ErrCorrupt, "gif"},
		"k-only-header.jpg": {jpg[:20], ErrCorrupt, "jpeg"},
	}
}

func TestDecodeBadInput(t *testing.T) {
	for name, bf := range badFiles(t) {
		for _, ch := range []int{1, 3} {
			_, err := Decode(bf.data, ch, 0)
			if !errors.Is(err, bf.is) || !strings.Contains(err.Error(), bf.msg) {
				t.Errorf("%s (%d channels): error %v, want %v containing %q", name, ch, err, bf.is, bf.msg)
			}
		}
	}
	if _, err := DecodeFile(t.TempDir(), 3, 0); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := DecodeFile(filepath.Join(t.TempDir(), "nope.png"), 3, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestPixelLimitBeforeAllocation checks that oversized images are refused
// from their header: decoding them allocates next to nothing.
func TestPixelLimitBeforeAllocation(t *testing.T) {
	for name, data := range map[string][]byte{
		"png":  hugePNG(30000, 30000),
		"jpeg": hugeJPEG(t, 30000, 30000),
		"bmp":  func() []byte { b := encBMP(2, 2, 1); b[18], b[19], b[22], b[23] = 0x30, 0x75, 0x30, 0x75; return b }(),
		"gif": func() []byte {
			b := encGIF(t, testRGBA(2, 2, 1))
			b[6], b[7], b[8], b[9] = 0x30, 0x75, 0x30, 0x75
			return b
		}(),
	} {
		var err error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = Decode(data, 3, 1_000_000)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: error %v, want ErrTooLarge", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: %d bytes allocated to refuse it", name, n)
		}
		// Without a limit small enough, the same header is accepted.
		if name == "png" {
			if _, err := Decode(hugePNG(3, 3), 3, 9); errors.Is(err, ErrTooLarge) {
				t.Errorf("3x3 refused with limit 9")
			}
		}
	}
	// The byte counting itself: a bigger limit than memory is still refused
	// when width*height overflows the safety bound.
	if _, err := Decode(hugePNG(1<<30, 1<<30), 3, -1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("no limit, 2^60 pixels: %v", err)
	}
}

func TestLoadSkipsAndStrict(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"cats", "dogs"}, 6)
	bad := badFiles(t)
	files := map[string][]byte{"dogs/z-dir.jpg": nil} // a directory with an image name: unreadable
	for name, bf := range bad {
		files["cats/"+name] = bf.data
	}
	writeFiles(t, dir, files)
	// A named pipe must not block the load (opening one waits for a writer).
	if err := syscall.Mkfifo(filepath.Join(dir, "dogs", "z-fifo.png"), 0o644); err != nil {
		t.Fatal(err)
	}

	set, err := Load(dir, Options{Size: 16, MaxPixels: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	r := set.Report()
	if len(r.Skipped) != len(bad)+2 {
		t.Fatalf("skipped %d, want %d:\n%s", len(r.Skipped), len(bad)+2, r.String())
	}
	for _, p := range r.Skipped {
		base := filepath.Base(p.Path)
		if base == "z-dir.jpg" || base == "z-fifo.png" {
			if !strings.Contains(p.Err.Error(), "not a regular file") {
				t.Errorf("%s: %v", base, p.Err)
			}
			continue
		}
		if bf := bad[base]; !errors.Is(p.Err, bf.is) {
			t.Errorf("%s: %v, want %v", base, p.Err, bf.is)
		}
	}
	if r.Images != 12 || set.Train.Len() != 12 || !slices.Equal(r.PerClass, []int{6, 6}) {
		t.Errorf("report: %s", r.String())
	}
	if s := r.String(); !strings.Contains(s, "12 images in 2 classes") || !strings.Contains(s, "13 image files skipped") {
		t.Errorf("report string:\n%s", s)
	}

	_, err = Load(dir, Options{Size: 16, Strict: true, Workers: 3})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "cats", "a-empty.jpg")) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("strict: %v, want the first bad file (cats/a-empty.jpg)", err)
	}
}

func TestNextBatch(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b", "c"}, 4) // 12 images
	set, err := Load(dir, Options{Size: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	sp := set.Train
	order := make([]string, sp.Len())
	for i := range order {
		order[i] = sp.Path(i)
	}
	// Batches of 5 over 12: [0,5) [5,10), then 15 > 12: epoch 1, [0,5) ...
	steps := []struct{ start, epochs, index int }{
		{0, 0, 5}, {5, 0, 10}, {0, 1, 5}, {5, 1, 10}, {0, 2, 5},
	}
	var b pixels.Batch
	for i, st := range steps {
		if err := sp.NextBatch(5, &b); err != nil {
			t.Fatal(err)
		}
		if b.N != 5 || !slices.Equal(b.Paths, order[st.start:st.start+5]) {
			t.Errorf("batch %d: paths %v, want order[%d:%d]", i, b.Paths, st.start, st.start+5)
		}
		if sp.Epochs() != st.epochs || sp.Index() != st.index {
			t.Errorf("batch %d: epochs %d index %d, want %d %d", i, sp.Epochs(), sp.Index(), st.epochs, st.index)
		}
		for k := range b.N {
			img, _ := sp.Image(st.start + k)
			if !slices.Equal(b.X[k*48:(k+1)*48], img.Float32(nil)) {
				t.Fatalf("batch %d example %d: X differs", i, k)
			}
			for c := range 3 {
				want := float32(0)
				if c == b.Labels[k] {
					want = 1
				}
				if b.Y[k*3+c] != want {
					t.Fatalf("batch %d example %d: Y %v for label %d", i, k, b.Y[k*3:k*3+3], b.Labels[k])
				}
			}
		}
	}
	// An exact fit reaches the end before wrapping: 12 = 3 batches of 4.
	set, _ = Load(dir, Options{Size: 4, Seed: 3})
	for i := range 4 {
		if err := set.Train.NextBatch(4, &b); err != nil {
			t.Fatal(err)
		}
		if want := []int{0, 0, 0, 1}[i]; set.Train.Epochs() != want {
			t.Errorf("exact fit, batch %d: epochs %d, want %d", i, set.Train.Epochs(), want)
		}
	}
	// The buffers are reused: no allocation per batch, over 1000 batches
	// (333 epochs, each reshuffled).
	if n := testenv.Mallocs(1000, func() { set.Train.NextBatch(4, &b) }); n != 0 {
		t.Errorf("%d allocations in 1000 batches, want none", n)
	}
	for _, n := range []int{0, -1, 13} {
		if err := set.Train.NextBatch(n, &b); err == nil {
			t.Errorf("batch size %d: no error", n)
		}
	}
	if err := set.Validation.NextBatch(1, &b); err == nil {
		t.Error("empty validation split: no error")
	}
}

func splitOrder(sp *Split) []string {
	out := make([]string, sp.Len())
	for i := range out {
		out[i] = sp.Path(i)
	}
	return out
}

func TestShuffleSeed(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 15)
	load := func(seed int64, reshuffle bool) *Set {
		s, err := Load(dir, Options{Size: 4, Seed: seed, ValidationSize: 0.2, Reshuffle: reshuffle, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := load(1, false), load(1, false), load(2, false)
	if !slices.Equal(splitOrder(a.Train), splitOrder(b.Train)) || !slices.Equal(splitOrder(a.Validation), splitOrder(b.Validation)) {
		t.Error("same seed, different order")
	}
	if slices.Equal(splitOrder(a.Train), splitOrder(c.Train)) {
		t.Error("different seeds, same order")
	}
	if a.Validation.Len() != 6 {
		t.Errorf("validation %d, want int(0.2*30) = 6", a.Validation.Len())
	}
	// The order for a seed is fixed across Go versions (own shuffle over PCG).
	r := newRand(42)
	ex := make([]example, 8)
	for i := range ex {
		ex[i].slot = i
	}
	shuffle(r, ex)
	var got []int
	for _, e := range ex {
		got = append(got, e.slot)
	}
	if want := []int{5, 7, 2, 3, 6, 0, 1, 4}; !slices.Equal(got, want) {
		t.Errorf("shuffle(seed 42) = %v, want %v", got, want)
	}

	// Reshuffle: a new order after each wrap, the same for the same seed.
	x, y := load(5, true), load(5, true)
	first := splitOrder(x.Train)
	var bx, by pixels.Batch
	for range 4 { // 24 training images, batches of 10: the third batch wraps
		x.Train.NextBatch(10, &bx)
		y.Train.NextBatch(10, &by)
	}
	if x.Train.Epochs() != 1 || slices.Equal(first, splitOrder(x.Train)) {
		t.Errorf("reshuffle: epochs %d, order unchanged %v", x.Train.Epochs(), slices.Equal(first, splitOrder(x.Train)))
	}
	if !slices.Equal(splitOrder(x.Train), splitOrder(y.Train)) || !slices.Equal(bx.Paths, by.Paths) {
		t.Error("reshuffle is not deterministic")
	}
	z := load(5, false)
	for range 4 {
		z.Train.NextBatch(10, &bx)
	}
	if !slices.Equal(first, splitOrder(z.Train)) {
		t.Error("order changed without Reshuffle")
	}
}

// TestOpenMatchesLoad: streaming gives the batches Load gives.
func TestOpenMatchesLoad(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 9)
	opts := Options{Size: 12, Channels: 1, Seed: 11, ValidationSize: 4, Reshuffle: true, Workers: 3}
	mem, err := Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	str, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var bm, bs pixels.Batch
	for i := range 7 {
		for _, pair := range [][2]*Split{{mem.Train, str.Train}, {mem.Validation, str.Validation}} {
			n := 3
			if err := pair[0].NextBatch(n, &bm); err != nil {
				t.Fatal(err)
			}
			if err := pair[1].NextBatch(n, &bs); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(bm.Paths, bs.Paths) || !slices.Equal(bm.Y, bs.Y) || !slices.EqualFunc(bm.X, bs.X, func(a, b float32) bool {
				return math.Float32bits(a) == math.Float32bits(b)
			}) {
				t.Fatalf("batch %d differs between Load and Open", i)
			}
		}
	}
	if mem.Train.Epochs() != str.Train.Epochs() || mem.Train.Epochs() == 0 {
		t.Errorf("epochs %d and %d", mem.Train.Epochs(), str.Train.Epochs())
	}
}

func TestOpenSkipsBadFiles(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 5)
	writeFiles(t, dir, map[string][]byte{"a/zz-bad.png": []byte("junk"), "b/zz-bad.jpg": []byte{0xFF, 0xD8, 0xFF, 0xE0}})
	set, err := Open(dir, Options{Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	if set.Train.Len() != 12 {
		t.Fatalf("listed %d", set.Train.Len())
	}
	var b pixels.Batch
	seen := map[string]bool{}
	for range 6 {
		if err := set.Train.NextBatch(5, &b); err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Paths {
			if strings.Contains(p, "zz-bad") {
				t.Errorf("bad file %s in a batch", p)
			}
			seen[p] = true
		}
	}
	r := set.Report()
	if len(r.Skipped) != 2 || set.Train.Len() != 10 || len(seen) != 10 || r.Images != 10 {
		t.Errorf("skipped %d, left %d, seen %d: %s", len(r.Skipped), set.Train.Len(), len(seen), r.String())
	}

	strict, err := Open(dir, Options{Size: 8, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	var firstErr error
	for range 3 {
		if err := strict.Train.NextBatch(5, &b); err != nil {
			firstErr = err
			break
		}
	}
	if firstErr == nil || !strings.Contains(firstErr.Error(), "zz-bad") {
		t.Errorf("strict streaming: %v", firstErr)
	}
}

func TestIsImageFile(t *testing.T) {
	for name, want := range map[string]bool{
		"a.jpg": true, "a.JPEG": true, "b.Png": true, "c.bmp": true, "d.gif": true,
		"e.webp": false, "f.jpg.txt": false, "png": false, "g.svg": false, "h.tiff": false,
	} {
		if IsImageFile(name) != want {
			t.Errorf("IsImageFile(%q) = %v", name, !want)
		}
	}
}

// TestPNGAcceptance: PNG files libpng accepts or refuses (measured with
// cv2.imread in opencv-python 4.10) are accepted or refused here too.
func TestPNGAcceptance(t *testing.T) {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, 5)
	binary.BigEndian.PutUint32(ihdr[4:], 4)
	ihdr[8], ihdr[9] = 8, 2
	var raw []byte
	for y := range 4 {
		raw = append(raw, 0)
		for x := range 15 {
			raw = append(raw, byte(y*15+x))
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	sig := []byte("\x89PNG\r\n\x1a\n")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	head, idat, iend := hostile.PNGChunk("IHDR", ihdr), hostile.PNGChunk("IDAT", z.Bytes()), hostile.PNGChunk("IEND", nil)
	badText := hostile.PNGChunk("tEXt", []byte("k\x00v"))
	badText[len(badText)-1] ^= 1
	badIDAT := slices.Clone(idat)
	badIDAT[len(badIDAT)-1] ^= 1
	for _, tt := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"valid", cat(sig, head, idat, iend), true},
		{"ancillary chunk with a bad CRC (libpng: warning)", cat(sig, head, badText, idat, iend), true},
		{"ancillary chunk with a bad CRC after IDAT", cat(sig, head, idat, badText, iend), true},
		{"data after IEND", cat(sig, head, idat, iend, []byte("garbage")), true},
		{"invalid gAMA length (libpng: ignored)", cat(sig, head, hostile.PNGChunk("gAMA", []byte{0, 0}), idat, iend), true},
		{"no IEND", cat(sig, head, idat), false},
		{"unknown critical chunk", cat(sig, head, hostile.PNGChunk("ABCD", []byte("x")), idat, iend), false},
		{"IDAT with a bad CRC", cat(sig, head, badIDAT, iend), false},
	} {
		img, err := Decode(tt.data, 3, 0)
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if err == nil && (img.Width != 5 || img.Pix[0] != 2 || img.Pix[2] != 0) {
			t.Errorf("%s: wrong pixels %v", tt.name, img.Pix[:3])
		}
	}
}

// TestSplitsConcurrently: the two splits of one set may be used from
// different goroutines (each split by one goroutine at a time).
func TestSplitsConcurrently(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 8)
	for _, open := range []func(string, Options) (*Set, error){Load, Open} {
		set, err := open(dir, Options{Size: 8, ValidationSize: 6, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 2)
		for _, sp := range []*Split{set.Train, set.Validation} {
			go func() {
				var b pixels.Batch
				for range 5 {
					if err := sp.NextBatch(3, &b); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// NextPart: the shares of replicas that each read their part of every batch
// put together are the batch one process reads, with the same augmentation,
// loaded or streamed, across epochs and reshuffles.
func TestNextPartSharesTheBatch(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 9)
	for _, stream := range []bool{false, true} {
		for _, aug := range []bool{false, true} {
			t.Run(fmt.Sprintf("stream=%v,augment=%v", stream, aug), func(t *testing.T) {
				const n, of = 6, 3
				open := Load
				if stream {
					open = Open
				}
				opts := Options{Size: 12, Channels: 1, Seed: 11, ValidationSize: 2, Reshuffle: true, Workers: 2}
				augmenter := func() *Augmenter {
					if !aug {
						return nil
					}
					g, err := NewAugmenter(Augment{Flip: true, Rotation: 0.05}, 12, 1, 5)
					if err != nil {
						t.Fatal(err)
					}
					return g
				}
				whole, err := open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				wg := augmenter()
				parts := make([]*Split, of)
				gs := make([]*Augmenter, of)
				for i := range parts {
					set, err := open(dir, opts)
					if err != nil {
						t.Fatal(err)
					}
					parts[i], gs[i] = set.Train, augmenter()
				}
				var b, p pixels.Batch
				for step := range 8 { // 16 training images: several epochs
					if err := whole.Train.NextAugmented(n, &b, wg); err != nil {
						t.Fatal(err)
					}
					var x, y []float32
					var paths []string
					for i, sp := range parts {
						if err := sp.NextPart(n, i, of, &p, gs[i]); err != nil {
							t.Fatal(err)
						}
						if p.N != n/of {
							t.Fatalf("step %d part %d: %d images, want %d", step, i, p.N, n/of)
						}
						x, y, paths = append(x, p.X...), append(y, p.Y...), append(paths, p.Paths...)
					}
					if !slices.Equal(paths, b.Paths) || !slices.Equal(y, b.Y) || !slices.EqualFunc(x, b.X, func(a, b float32) bool {
						return math.Float32bits(a) == math.Float32bits(b)
					}) {
						t.Fatalf("step %d: the parts differ from the batch: %v, want %v", step, paths, b.Paths)
					}
				}
			})
		}
	}
	set, err := Load(dir, Options{Size: 12, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	var p pixels.Batch
	if err := set.Train.NextPart(6, 0, 4, &p, nil); err == nil || !strings.Contains(err.Error(), "the parts must be equal") {
		t.Errorf("6 images in 4 parts: %v", err)
	}
}

// A streamed share with an unusable file is an error naming it: the other
// replicas could not drop the file too.
func TestNextPartRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 5)
	writeFiles(t, dir, map[string][]byte{"a/zz-bad.png": []byte("junk")})
	set, err := Open(dir, Options{Size: 8, Reshuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	var b pixels.Batch
	var firstErr error
	for range 20 {
		for part := range 2 {
			if err := set.Train.NextPart(4, part, 2, &b, nil); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr == nil || !strings.Contains(firstErr.Error(), "zz-bad.png") {
		t.Errorf("a bad file in a share: %v", firstErr)
	}
}
