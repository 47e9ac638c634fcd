package trainer

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// BenchmarkTransferEpoch is one epoch of training a softmax head on the
// Keras MobileNetV2 of testdata/backbones.py (96×96, 64 images, batches of
// 16): "backbone" runs the frozen backbone at every step, as augmentation
// requires; "cached" trains on the features computed once (CacheFeatures),
// as Train does without augmentation. The cached run reports its speed-up
// over the other and fails below 5×.
//
//	go test ./trainer -run '^$' -bench TransferEpoch -benchtime 5x
func BenchmarkTransferEpoch(b *testing.B) {
	dir := backbones(b)
	data := b.TempDir()
	if err := testenv.WriteClassFolders(data, []string{"a", "b"}, 32, 96); err != nil {
		b.Fatal(err)
	}
	set, err := dataset.Load(data, dataset.Options{Size: 96, Channels: 3})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 16
	perEpoch := set.Train.Len() / batch
	var perStep time.Duration
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "backbone", true: "cached"}[cached]
		b.Run(name, func(b *testing.B) {
			s := trainingSession(b, &Base{Path: filepath.Join(dir, "mnv2"), Channels: "rgb", Scale: "-1,1"})
			var bt pixels.Batch
			epoch := func() {
				for range perEpoch {
					if err := set.Train.NextBatch(batch, &bt); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Step(&bt); err != nil {
						b.Fatal(err)
					}
				}
			}
			if cached {
				if err := s.CacheFeatures(DefaultFeatureCacheBytes); err != nil {
					b.Fatal(err)
				}
			}
			epoch() // warm up; fills the cache
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				epoch()
			}
			d := time.Since(t0) / time.Duration(b.N)
			if !cached {
				perStep = d
				return
			}
			if s.CachedFeatures() != set.Train.Len() {
				b.Errorf("%d images' features cached, want %d", s.CachedFeatures(), set.Train.Len())
			}
			if perStep > 0 {
				ratio := float64(perStep) / float64(d)
				b.ReportMetric(ratio, "x-faster")
				if ratio < 5 {
					b.Errorf("cached epochs only %.1fx faster", ratio)
				}
			}
		})
	}
}

// trainingSession builds a softmax head on the backbone b, for training,
// with the backbone's weights loaded; it closes with the benchmark.
func trainingSession(t testing.TB, b *Base) *tfsession.Session {
	t.Helper()
	return baseSession(t, openTestBase(t, b), 1e-3, tfgraph.BuildOptions{Seed: 1})
}
