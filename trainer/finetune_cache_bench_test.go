package trainer

import (
	"testing"
	"time"
)

// BenchmarkFineTuneCutCache is an epoch of fine-tuning the Keras
// MobileNetV2 of testdata/backbones.py from block_15_expand (96×96, 64
// random images, batches of 16): "backbone" runs the whole backbone at
// every step, as augmentation requires; "cut" feeds the frozen part's
// output, computed in a warm-up epoch (CacheCut), as Train does without
// augmentation. The cut run reports its speed-up over the other and fails
// below 2×. Measured here (2 cores shared with other jobs, AVX512, oneDNN;
// 5 runs): 23–37 ms a step through the backbone, 5.3–10.7 ms on the cut,
// 3.2–5.2× faster.
//
//	go test ./trainer -run '^$' -bench FineTuneCutCache -benchtime 5x
func BenchmarkFineTuneCutCache(b *testing.B) {
	const batch, images = 16, 64
	batches := randomBatches(images/batch, batch)
	var perEpoch time.Duration
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "backbone", true: "cut"}[cached]
		b.Run(name, func(b *testing.B) {
			s := fineTuneSession(b, "block_15_expand")
			if cached {
				cut, err := s.Model.FrozenCut()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.CacheCut(cut, DefaultFeatureCacheBytes); err != nil {
					b.Fatal(err)
				}
			}
			epoch := func() {
				for i := range batches {
					if _, err := s.Step(&batches[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			epoch() // warm up; fills the cache
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				epoch()
			}
			d := time.Since(t0) / time.Duration(b.N)
			b.ReportMetric(float64(d.Microseconds())/float64(len(batches))/1e3, "ms/step")
			if !cached {
				perEpoch = d
				return
			}
			if s.CachedFeatures() != images {
				b.Errorf("%d images' cuts cached, want %d", s.CachedFeatures(), images)
			}
			if perEpoch > 0 {
				ratio := float64(perEpoch) / float64(d)
				b.ReportMetric(ratio, "x-faster")
				if ratio < 2 {
					b.Errorf("epochs on the cached cut only %.1fx faster", ratio)
				}
			}
		})
	}
}
