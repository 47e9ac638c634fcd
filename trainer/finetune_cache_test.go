package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// fineTuneSession builds a softmax head on the test MobileNetV2 that
// fine-tunes the backbone from spec (FineTuneVars), initialised with seed 1
// and the backbone's weights; it closes with the test.
func fineTuneSession(t testing.TB, spec string) *tfsession.Session {
	t.Helper()
	r := openTestBase(t, mnv2(backbones(t)))
	vars, err := backbone.FineTuneVars(r.base, r.backbone, spec)
	if err != nil {
		t.Fatal(err)
	}
	return baseSession(t, r, 1e-3, tfgraph.BuildOptions{Seed: 1, FineTune: &tfgraph.FineTune{Vars: vars}})
}

// randomBatches are n batches of size images of random pixels and labels,
// each image with its own path, as a data set's batches have.
func randomBatches(n, size int) []pixels.Batch {
	rng := rand.New(rand.NewPCG(4, 5))
	out := make([]pixels.Batch, n)
	for k := range out {
		b := pixels.Batch{N: size, X: make([]float32, size*96*96*3), Y: make([]float32, size*2), Paths: make([]string, size)}
		for i := range b.X {
			b.X[i] = rng.Float32()
		}
		for i := range size {
			b.Y[2*i+rng.IntN(2)] = 1
			b.Paths[i] = fmt.Sprintf("img%d_%d.png", k, i)
		}
		out[k] = b
	}
	return out
}

// allVariables reads every variable of s's model: the head's, the Adam
// state and the backbone's.
func allVariables(t *testing.T, s *tfsession.Session) map[string][]float32 {
	t.Helper()
	m := s.Model
	var fetches []tf.Output
	var names []string
	for _, v := range append(append([]*tfgraph.Variable(nil), m.Vars...), m.BaseVars...) {
		fetches, names = append(fetches, v.Read), append(names, v.Name)
	}
	res, err := s.Raw().Run(nil, fetches, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tfc.FreeAll(res)
	out := map[string][]float32{}
	for i, r := range res {
		v, err := tfc.Float32s(r)
		if err != nil {
			t.Fatal(err)
		}
		out[names[i]] = append([]float32(nil), v...)
	}
	return out
}

// TestFineTuneCutCache fine-tunes the test MobileNetV2 from a late layer
// for 9 steps (3 batches of 4 images, three times) with and without the
// frozen part's cut cached: the same losses and variables, within the
// rounding of one reassociated add, and the cached run reads the cache.
// From block_15_expand the cut is block 14's output; from
// block_15_expand_BN it is that and block 15's expansion convolution,
// which the batch norm trained above it reads, while block 15's residual
// add reads block 14's output too: two tensors.
func TestFineTuneCutCache(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		tensors int
	}{{"block_15_expand", 1}, {"block_15_expand_BN", 2}} {
		t.Run(tc.spec, func(t *testing.T) {
			plain := fineTuneSession(t, tc.spec)
			cached := fineTuneSession(t, tc.spec)
			cut, err := cached.Model.FrozenCut()
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range cut.Tensors {
				t.Logf("cut %s:%d, %v per image", o.Op.Name(), o.Index, cut.Shapes[i])
			}
			t.Logf("%d values per image; %d nodes skipped, reading %d variables", cut.Values, cut.Frozen, cut.Reads)
			if len(cut.Tensors) != tc.tensors || cut.Reads == 0 {
				t.Errorf("%d cut tensors skipping %d variable reads, want %d tensors and some reads", len(cut.Tensors), cut.Reads, tc.tensors)
			}
			if err := cached.CacheCut(cut, 1<<30); err != nil {
				t.Fatal(err)
			}
			v0 := allVariables(t, plain)
			batches := randomBatches(3, 4)
			worstLoss := 0.0
			for step := range 9 {
				b := &batches[step%len(batches)]
				lp, err := plain.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				lc, err := cached.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				worstLoss = max(worstLoss, math.Abs(float64(lp-lc))/math.Abs(float64(lp)))
			}
			// The cache is used: the first pass over the 12 images computes
			// their cut, the next two read it.
			hits, misses := cached.CacheStats()
			if hits != 24 || misses != 12 || cached.CachedFeatures() != 12 {
				t.Errorf("cache read %d and computed %d images' cuts, holds %d; want 24, 12 and 12", hits, misses, cached.CachedFeatures())
			}
			vp, vc := allVariables(t, plain), allVariables(t, cached)
			worst, worstName, trained := 0.0, "", 0
			for name, p := range vp {
				moved := testenv.MaxAbsDiff(p, v0[name])
				d := testenv.MaxAbsDiff(p, vc[name])
				if moved == 0 {
					if d != 0 {
						t.Errorf("%s did not train without the cache and differs by %g with it", name, d)
					}
					continue
				}
				trained++
				if d /= moved; !(d <= worst) {
					worst, worstName = d, name
				}
			}
			t.Logf("losses within %.3g of each other; %d variables trained, within %.3g of their movement (%s)", worstLoss, trained, worst, worstName)
			// Not bit for bit: the frozen part's output is the same (the
			// cut is fetched through Identities, cutFetchScope), but in
			// the step fed the cut Grappler does not know the fed tensor's
			// shape and leaves block 15's residual add (block 14's output
			// + the batch norm's x·scale + offset) as the graph has it,
			// while without the cache its arithmetic optimizer regroups it
			// as (block 14's output + x·scale) + offset: one rounding
			// apart, which the steps carry on. Measured (AVX512, oneDNN
			// kernels): losses within 4.1e-7 of each other (3.4 float32
			// ulps) and variables within 8.4e-4 of how far they moved over
			// the 9 steps (Adam magnifies a near-zero gradient's rounding
			// into a whole step of it). Bounds: 1e-5 and 1e-2, 25 and 12
			// times those; a wrong cut (another image's row, a stale
			// tensor) moves the losses by 1e-2 or more.
			if !(worstLoss <= 1e-5) {
				t.Errorf("losses differ by %.3g of their value with the cut cached", worstLoss)
			}
			if !(worst <= 1e-2) || trained == 0 {
				t.Errorf("%s differs by %.3g of its movement with the cut cached (%d variables trained)", worstName, worst, trained)
			}
		})
	}
}

// TestFineTuneCacheNote: Train says in a Note whether a fine-tuning run
// caches its frozen part, and why not.
func TestFineTuneCacheNote(t *testing.T) {
	bbDir := backbones(t)
	data := t.TempDir()
	if err := testenv.WriteClassFolders(data, []string{"dark", "light"}, 6, 40); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, spec string
		change     func(*Options)
		want       string
	}{
		{"cached", "block_15_expand", func(*Options) {}, "feature cache: the frozen part below the fine-tuned layers runs once per image"},
		{"augment", "block_15_expand", func(o *Options) { o.Augment.Flip = true }, "off while fine-tuning: the whole backbone runs at every step: augmentation"},
		{"all", "all", func(*Options) {}, "off while fine-tuning: the whole backbone runs at every step: no backbone variable is frozen"},
		{"limit", "block_15_expand", func(o *Options) { o.Base.CacheBytes = 10000 }, "takes 2.0 KiB per image, 23.6 KiB for 12 training images, over the cache's 9.8 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var notes []string
			opt := Options{Data: data, Seed: 1, BatchSize: 5, Steps: 2, LearningRate: 1e-3, ModelDir: filepath.Join(t.TempDir(), "m"),
				Base: mnv2(bbDir), FineTune: tc.spec, Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU},
				OnEvent: func(e Event) error {
					if e.Kind == Note {
						notes = append(notes, e.Message)
					}
					return nil
				}}
			tc.change(&opt)
			if _, err := Train(context.Background(), opt); err != nil {
				t.Fatal(err)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], tc.want) {
				t.Errorf("notes %q, want one with %q", notes, tc.want)
			}
			t.Log(notes)
		})
	}
}
