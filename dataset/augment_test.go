package dataset

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tfcat/tfcat/pixels"
)

func TestAugmentValidate(t *testing.T) {
	for _, tc := range []struct {
		a     Augment
		field string // "" when valid
	}{
		{Augment{}, ""},
		{DefaultAugment(), ""},
		{Augment{Rotation: 1}, ""},
		{Augment{Rotation: 1.5}, "Rotation"},
		{Augment{Rotation: -0.1}, "Rotation"},
		{Augment{Zoom: 1}, "Zoom"},
		{Augment{Translate: 2}, "Translate"},
		{Augment{Brightness: -1}, "Brightness"},
		{Augment{Contrast: 1.01}, "Contrast"},
		{Augment{Flip: true, Fill: FillConstant}, ""},
	} {
		t.Run(fmt.Sprintf("%+v", tc.a), func(t *testing.T) {
			err := tc.a.Validate()
			var ae *AugmentError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.field != "" && (!errors.As(err, &ae) || ae.Field != tc.field):
				t.Fatalf("Validate = %v, want an AugmentError for %s", err, tc.field)
			}
		})
	}
}

// testBatch is n random size×size×ch images.
func testBatch(seed uint64, n, size, ch int) *pixels.Batch {
	r := rand.New(rand.NewPCG(seed, 1))
	b := &pixels.Batch{N: n, X: make([]float32, n*size*size*ch)}
	for i := range b.X {
		b.X[i] = r.Float32()
	}
	return b
}

func augmented(t *testing.T, a Augment, seed int64, b *pixels.Batch, size, ch int) []float32 {
	t.Helper()
	g, err := NewAugmenter(a, size, ch, seed)
	if err != nil {
		t.Fatal(err)
	}
	c := &pixels.Batch{N: b.N, X: slices.Clone(b.X)}
	if err := g.Apply(c); err != nil {
		t.Fatal(err)
	}
	return c.X
}

func TestAugmenterDeterministic(t *testing.T) {
	const size, ch = 16, 3
	b := testBatch(1, 4, size, ch)
	a := DefaultAugment()
	x1, x2, x3 := augmented(t, a, 7, b, size, ch), augmented(t, a, 7, b, size, ch), augmented(t, a, 8, b, size, ch)
	if !slices.Equal(x1, x2) {
		t.Error("the same seed gave different images")
	}
	if slices.Equal(x1, x3) || slices.Equal(x1, b.X) {
		t.Error("seeds 7 and 8 gave the same images, or nothing changed")
	}
	for _, v := range x1 {
		if v < 0 || v > 1 {
			t.Fatalf("value %g outside [0, 1]", v)
		}
	}
}

// TestAugmentTransforms checks each transform on its own against what it
// must do exactly.
func TestAugmentTransforms(t *testing.T) {
	const size, ch = 8, 3
	b := testBatch(2, 16, size, ch)
	n := size * size * ch
	img := func(x []float32, i int) []float32 { return x[i*n : (i+1)*n] }
	mirror := func(x []float32) []float32 {
		out := make([]float32, len(x))
		for y := range size {
			for xx := range size {
				copy(out[(y*size+xx)*ch:(y*size+xx+1)*ch], x[(y*size+size-1-xx)*ch:(y*size+size-xx)*ch])
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		a     Augment
		check func(t *testing.T, in, out []float32)
	}{
		{"flip mirrors or keeps", Augment{Flip: true}, func(t *testing.T, in, out []float32) {
			if !slices.Equal(out, in) && !slices.Equal(out, mirror(in)) {
				t.Error("flip: neither the image nor its mirror")
			}
		}},
		{"full turn keeps", Augment{Rotation: 1e-9}, func(t *testing.T, in, out []float32) {
			for i := range in {
				if d := in[i] - out[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("a rotation of ~0 changed value %d: %g -> %g", i, in[i], out[i])
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := augmented(t, tc.a, 3, b, size, ch)
			flipped := 0
			for i := range b.N {
				tc.check(t, img(b.X, i), img(out, i))
				if slices.Equal(img(out, i), mirror(img(b.X, i))) {
					flipped++
				}
			}
			if tc.a.Flip && (flipped == 0 || flipped == b.N) {
				t.Errorf("%d of %d images flipped", flipped, b.N)
			}
		})
	}
}

// TestAugmentTone checks brightness and contrast against the parameters
// each image drew: out = clip(mean + (in-mean)·contrast + brightness), the
// mean the image's own per channel. The draws come from a second Augmenter
// with the same seed (Apply draws once per image, in order), and must
// themselves spread over the configured range: a transform that does
// nothing, has the wrong sign or the wrong size, or draws nothing, fails.
func TestAugmentTone(t *testing.T) {
	const size, ch, n = 8, 3, 64
	b := testBatch(4, n, size, ch)
	px := size * size * ch
	for _, tc := range []struct {
		name string
		a    Augment
	}{
		{"brightness", Augment{Brightness: 0.5}},
		{"contrast", Augment{Contrast: 0.5}},
		{"both", Augment{Brightness: 0.2, Contrast: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := augmented(t, tc.a, 3, b, size, ch)
			twin, err := NewAugmenter(tc.a, size, ch, 3)
			if err != nil {
				t.Fatal(err)
			}
			var lo, hi draw // the smallest and largest draws seen
			lo.bright, lo.contrast, hi.bright, hi.contrast = 1, 2, -1, 0
			changed := 0
			for i := range n {
				d := twin.next()
				lo.bright, hi.bright = min(lo.bright, d.bright), max(hi.bright, d.bright)
				lo.contrast, hi.contrast = min(lo.contrast, d.contrast), max(hi.contrast, d.contrast)
				in, o := b.X[i*px:(i+1)*px], out[i*px:(i+1)*px]
				var mean [ch]float64
				for j, v := range in {
					mean[j%ch] += float64(v) / float64(size*size)
				}
				for j := range in {
					m := mean[j%ch]
					want := min(max((float64(in[j])-m)*float64(d.contrast)+m+float64(d.bright), 0), 1)
					if diff := float64(o[j]) - want; diff > 1e-5 || diff < -1e-5 {
						t.Fatalf("image %d, value %d: %g -> %g, want %g (brightness %+g, contrast ×%g, mean %g)",
							i, j, in[j], o[j], want, d.bright, d.contrast, m)
					}
					if o[j] != in[j] {
						changed++
					}
				}
			}
			t.Logf("brightness drawn in [%+.3f, %+.3f], contrast in [%.3f, %.3f]; %d of %d values changed",
				lo.bright, hi.bright, lo.contrast, hi.contrast, changed, n*px)
			// 64 uniform draws (seeded): the outer quarter of the range at
			// each end holds none with probability (3/4)^64, about 1e-8.
			r, c := float32(tc.a.Brightness), float32(tc.a.Contrast)
			if lo.bright < -r || hi.bright > r || (r > 0 && (lo.bright > -r/2 || hi.bright < r/2)) {
				t.Errorf("brightness drawn in [%g, %g], want spread over [%g, %g]", lo.bright, hi.bright, -r, r)
			}
			if lo.contrast < 1-c || hi.contrast > 1+c || (c > 0 && (lo.contrast > 1-c/2 || hi.contrast < 1+c/2)) {
				t.Errorf("contrast drawn in [%g, %g], want spread over [%g, %g]", lo.contrast, hi.contrast, 1-c, 1+c)
			}
			if changed < n*px/2 {
				t.Errorf("%d of %d values changed", changed, n*px)
			}
		})
	}
}

// TestNextAugmentedMatchesApply checks the fused path training uses
// (transforms applied while uint8 pixels become float32) against filling a
// batch and then transforming it, for each kind of transform and fill.
func TestNextAugmentedMatchesApply(t *testing.T) {
	dir := t.TempDir()
	goodTree(t, dir, []string{"a", "b"}, 6)
	for _, ch := range []int{1, 3} {
		for _, tc := range []struct {
			name string
			a    Augment
		}{
			{"flip", Augment{Flip: true}},
			{"tone", Augment{Brightness: 0.3, Contrast: 0.5}},
			{"flip and tone", Augment{Flip: true, Brightness: 0.3, Contrast: 0.5}},
			{"rotation reflect", Augment{Rotation: 0.2}},
			{"zoom nearest", Augment{Zoom: 0.5, Fill: FillNearest}},
			{"everything constant", Augment{Flip: true, Rotation: 0.1, Zoom: 0.3, Translate: 0.3, Brightness: 0.2, Contrast: 0.4, Fill: FillConstant}},
		} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, ch), func(t *testing.T) {
				batches := func(fused, stream bool) []float32 {
					load := Load
					if stream {
						load = Open // decoded per batch, by parallel workers
					}
					set, err := load(dir, Options{Size: 9, Channels: ch, ValidationSize: 0})
					if err != nil {
						t.Fatal(err)
					}
					g, err := NewAugmenter(tc.a, 9, ch, 7)
					if err != nil {
						t.Fatal(err)
					}
					var out []float32
					var b pixels.Batch
					for range 3 {
						if fused {
							err = set.Train.NextAugmented(5, &b, g)
						} else if err = set.Train.NextBatch(5, &b); err == nil {
							err = g.Apply(&b)
						}
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, b.X...)
					}
					return out
				}
				fused, twoPass := batches(true, false), batches(false, false)
				if streamed := batches(true, true); !slices.Equal(streamed, fused) {
					t.Error("streaming gives other augmented batches than loading")
				}
				changed := false
				for i := range fused {
					if d := fused[i] - twoPass[i]; d > 1e-6 || d < -1e-6 {
						t.Fatalf("value %d: fused %g, fill then Apply %g", i, fused[i], twoPass[i])
					}
					if fused[i] < 0 || fused[i] > 1 {
						t.Fatalf("value %d: %g outside [0, 1]", i, fused[i])
					}
				}
				plain := batchesPlain(t, dir, ch)
				for i := range plain {
					changed = changed || plain[i] != fused[i]
				}
				if !changed {
					t.Error("the augmented batches equal the plain ones")
				}
			})
		}
	}
}

// batchesPlain is three plain batches of 5 from dir at 9×9×ch.
func batchesPlain(t *testing.T, dir string, ch int) []float32 {
	set, err := Load(dir, Options{Size: 9, Channels: ch, ValidationSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	var b pixels.Batch
	for range 3 {
		if err := set.Train.NextBatch(5, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.X...)
	}
	return out
}

// TestAugmentFill shifts an all-ones image by a quarter of its width with
// each fill mode: reflect and nearest keep it all ones, constant brings in
// zeros.
func TestAugmentFill(t *testing.T) {
	const size = 8
	for _, tc := range []struct {
		fill  FillMode
		zeros bool
	}{{"", false}, {FillReflect, false}, {FillNearest, false}, {FillConstant, true}} {
		b := &pixels.Batch{N: 4, X: make([]float32, 4*size*size)}
		for i := range b.X {
			b.X[i] = 1
		}
		g, err := NewAugmenter(Augment{Translate: 0.5, Fill: tc.fill}, size, 1, 5)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(b); err != nil {
			t.Fatal(err)
		}
		if got := slices.Min(b.X) < 0.5; got != tc.zeros {
			t.Errorf("fill %q: smallest value %g", tc.fill, slices.Min(b.X))
		}
	}
	if err := (Augment{Fill: "wrap"}).Validate(); err == nil {
		t.Error("fill mode wrap: no error")
	}
}

func TestReflect(t *testing.T) {
	got := make([]int, 0, 12)
	for i := -4; i < 8; i++ {
		got = append(got, reflect(i, 4))
	}
	if want := []int{3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("reflect over -4..7 in 4: %v, want %v", got, want)
	}
}

// BenchmarkAugment is the cost of one training batch of the tutorial's
// shape (32 images of 128×128×3, held in memory) filled plain, with flips
// only, and with the whole default-free set (every transform on), against
// Augmenter.Apply on a float32 batch that is already filled:
//
//	go test -run '^$' -bench Augment -benchtime 200x ./dataset/
func BenchmarkAugment(b *testing.B) {
	dir := b.TempDir()
	goodTree(b, dir, []string{"a", "b"}, 16)
	set, err := Load(dir, Options{Size: 128, ValidationSize: 0})
	if err != nil {
		b.Fatal(err)
	}
	all := Augment{Flip: true, Rotation: 0.05, Zoom: 0.1, Translate: 0.1, Brightness: 0.1, Contrast: 0.1}
	for _, tc := range []struct {
		name string
		a    Augment
	}{{"plain", Augment{}}, {"flip", Augment{Flip: true}}, {"default", DefaultAugment()}, {"all", all}} {
		b.Run(tc.name, func(b *testing.B) {
			var g *Augmenter
			if tc.a.Enabled() {
				if g, err = NewAugmenter(tc.a, 128, 3, 1); err != nil {
					b.Fatal(err)
				}
			}
			var batch pixels.Batch
			b.ReportAllocs()
			for b.Loop() {
				if err := set.Train.NextAugmented(32, &batch, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("apply-all", func(b *testing.B) {
		batch := testBatch(1, 32, 128, 3)
		g, err := NewAugmenter(all, 128, 3, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := g.Apply(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func ExampleAugmenter() {
	// Two 4×4 grey images; the augmenter flips each with probability 1/2.
	b := &pixels.Batch{N: 2, X: make([]float32, 2*16)}
	for i := range b.X {
		b.X[i] = float32(i%4) / 4 // columns 0, .25, .5, .75
	}
	g, err := NewAugmenter(Augment{Flip: true}, 4, 1, 1)
	if err != nil {
		panic(err)
	}
	if err := g.Apply(b); err != nil {
		panic(err)
	}
	fmt.Println(b.X[0:4], b.X[16:20])
	// Output: [0.75 0.5 0.25 0] [0 0.25 0.5 0.75]
}
