package trainer

import (
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/tfsession"
)

// colourFolder writes perClass random 128×128 colour PNGs in each of two
// classes.
func colourFolder(b *testing.B, perClass int) string {
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	for _, class := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, class), 0o755)
		for i := range perClass {
			img := image.NewRGBA(image.Rect(0, 0, 128, 128))
			for p := range img.Pix {
				img.Pix[p] = uint8(r.IntN(256))
			}
			f, err := os.Create(filepath.Join(dir, class, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				b.Fatal(err)
			}
			png.Encode(f, img)
			f.Close()
		}
	}
	return dir
}

// BenchmarkTutorialStep is the cost of augmentation on a steady-state
// training step of the tutorial's network (128×128×3, batches of 32), with
// flips (the --augment set) and with every transform on. The prefetching
// goroutine applies them while it fills the next batch during the step.
//
// On a shared machine, run after run, a step's time drifts by more than
// what augmentation costs, so each op is a block of blockSteps plain steps
// and then blockSteps augmented ones on the same session, and the metrics
// are the two sides' ms per step (wall and CPU) and their ratios:
//
//	go test -run '^$' -bench TutorialStep -benchtime 6x ./trainer/
func BenchmarkTutorialStep(b *testing.B) {
	const blockSteps = 5
	data := colourFolder(b, 48)
	for _, tc := range []struct {
		name string
		aug  dataset.Augment
	}{{"augment", dataset.DefaultAugment()},
		{"all", dataset.Augment{Flip: true, Rotation: 0.05, Zoom: 0.1, Translate: 0.1, Brightness: 0.1, Contrast: 0.1}}} {
		b.Run(tc.name, func(b *testing.B) {
			opt := Tutorial(data)
			opt.Validation, opt.Steps = 0, 1<<30
			opt.ModelDir = b.TempDir()
			if err := opt.normalize(); err != nil {
				b.Fatal(err)
			}
			r := &run{opt: opt, res: &Result{}}
			defer r.close()
			if err := r.load(); err != nil {
				b.Fatal(err)
			}
			if err := r.build(); err != nil {
				b.Fatal(err)
			}
			aug, err := dataset.NewAugmenter(tc.aug, opt.Size, opt.Channels, opt.Seed)
			if err != nil {
				b.Fatal(err)
			}
			// Two prefetchers on one split: only the one in use fills.
			plain := newPrefetcher(r.set.Train, opt.BatchSize)
			augmented := partPrefetcher(r.set.Train, opt.BatchSize, 0, 1, aug)
			defer plain.close()
			r.trainSrc = augmented // closed by r.close
			r.perEp = 1 << 30
			r.startLoop()
			var wall, cpu [2]time.Duration
			block := func(side int, src *prefetcher) {
				r.trainSrc = src
				w0, c0 := time.Now(), cpuTime(b)
				for range blockSteps {
					if err := r.step(); err != nil {
						b.Fatal(err)
					}
				}
				wall[side] += time.Since(w0)
				cpu[side] += cpuTime(b) - c0
			}
			block(0, plain) // warm up both
			block(1, augmented)
			wall, cpu = [2]time.Duration{}, [2]time.Duration{}
			b.ResetTimer()
			for range b.N {
				block(0, plain)
				block(1, augmented)
			}
			r.trainSrc = augmented
			steps := float64(b.N * blockSteps)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / steps }
			b.ReportMetric(ms(wall[0]), "plain-ms/step")
			b.ReportMetric(ms(wall[1]), "aug-ms/step")
			b.ReportMetric(wall[1].Seconds()/wall[0].Seconds(), "wall-ratio")
			b.ReportMetric(ms(cpu[0]), "plain-cpu-ms/step")
			b.ReportMetric(ms(cpu[1]), "aug-cpu-ms/step")
			b.ReportMetric(cpu[1].Seconds()/cpu[0].Seconds(), "cpu-ratio")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAugmentInGraph is the alternative: the same transforms with
// TensorFlow's image ops in the graph (ImageProjectiveTransformV3 with
// bilinear sampling and reflection, then contrast, brightness and
// clipping), run on a batch of 32 128×128×3 images on this machine's CPU.
// In the graph this time adds to every step; in Go it overlaps the step.
func BenchmarkAugmentInGraph(b *testing.B) {
	const n, size = 32, 128
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	x := op.Placeholder(s.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(n, size, size, 3)))
	tr := op.Placeholder(s.SubScope("transforms"), tf.Float, op.PlaceholderShape(tf.MakeShape(n, 8)))
	tone := op.Placeholder(s.SubScope("tone"), tf.Float, op.PlaceholderShape(tf.MakeShape(2, n, 1, 1, 1)))
	warped := op.ImageProjectiveTransformV3(s, x, tr, op.Const(s.SubScope("shape"), []int32{size, size}),
		op.Const(s.SubScope("fill"), float32(0)), "BILINEAR", op.ImageProjectiveTransformV3FillMode("REFLECT"))
	mean := op.Mean(s, warped, op.Const(s.SubScope("axes"), []int32{1, 2}), op.MeanKeepDims(true))
	contrast := op.Squeeze(s.SubScope("c"), op.Slice(s.SubScope("c"), tone, op.Const(s.SubScope("c0"), []int32{0, 0, 0, 0, 0}), op.Const(s.SubScope("c1"), []int32{1, n, 1, 1, 1})), op.SqueezeAxis([]int64{0}))
	bright := op.Squeeze(s.SubScope("b"), op.Slice(s.SubScope("b"), tone, op.Const(s.SubScope("b0"), []int32{1, 0, 0, 0, 0}), op.Const(s.SubScope("b1"), []int32{1, n, 1, 1, 1})), op.SqueezeAxis([]int64{0}))
	adj := op.AddV2(s.SubScope("adj"), op.Mul(s.SubScope("adj"), op.Sub(s, warped, mean), contrast), op.AddV2(s.SubScope("m"), mean, bright))
	out := op.ClipByValue(s, adj, op.Const(s.SubScope("lo"), float32(0)), op.Const(s.SubScope("hi"), float32(1)))
	if err := s.Err(); err != nil {
		b.Fatal(err)
	}
	opts, err := tfsession.SessionConfig{Device: tfsession.DeviceCPU}.Options()
	if err != nil {
		b.Fatal(err)
	}
	sess, err := tf.NewSession(g, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(3, 4))
	imgs := make([][][][]float32, n)
	for i := range imgs {
		imgs[i] = make([][][]float32, size)
		for y := range imgs[i] {
			imgs[i][y] = make([][]float32, size)
			for xx := range imgs[i][y] {
				imgs[i][y][xx] = []float32{r.Float32(), r.Float32(), r.Float32()}
			}
		}
	}
	xt, _ := tf.NewTensor(imgs)
	trs := make([][]float32, n)
	var tones [2][n][1][1][1]float32
	for i := range trs {
		a, z := (r.Float64()*2-1)*0.05*2*math.Pi, 1+(r.Float64()*2-1)*0.1
		c, sn := math.Cos(a)/z, math.Sin(a)/z
		trs[i] = []float32{float32(c), float32(-sn), float32(r.Float64() * 10), float32(sn), float32(c), float32(r.Float64() * 10), 0, 0}
		tones[0][i][0][0][0], tones[1][i][0][0][0] = float32(1+(r.Float64()*2-1)*0.1), float32((r.Float64()*2-1)*0.1)
	}
	trt, _ := tf.NewTensor(trs)
	tt, _ := tf.NewTensor(tones)
	feeds := map[tf.Output]*tf.Tensor{x: xt, tr: trt, tone: tt}
	for range 2 {
		if _, err := sess.Run(feeds, []tf.Output{out}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := sess.Run(feeds, []tf.Output{out}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
