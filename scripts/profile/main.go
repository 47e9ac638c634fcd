// Command profile measures how close tfcat's training step comes to the machine's
// limit: the step time of the tutorial's network (random 128x128x3 batches of 32,
// as tfcat trains it, in this process's TensorFlow: run it with
// TF_ENABLE_ONEDNN_OPTS=1 or 0 to pick the kernels), the achieved GFLOP/s against
// a chain of 2048x2048 MatMuls in the same runtime, and the per-op profile of
// traced steps from TensorFlow's step stats (tfsession.Session.ProfileStep).
//
//	go run ./scripts/profile [-steps 20] [-traces 5] [-intra 0] [-inter 0] [-precision f32|bf16]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

func main() {
	steps := flag.Int("steps", 20, "timed training steps")
	traces := flag.Int("traces", 5, "traced steps averaged in the profile")
	intra := flag.Int("intra", 0, "intra-op threads (0: TensorFlow's choice)")
	inter := flag.Int("inter", 0, "inter-op threads (0: TensorFlow's choice)")
	top := flag.Int("top", 12, "op types listed")
	precision := flag.String("precision", "f32", "f32 or bf16 (oneDNN's bfloat16 rewrite, applied to the MatMul chain too)")
	flag.Parse()
	prec, err := tfsession.ResolvePrecision(*precision, tfsession.DeviceCPU, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile: -precision:", err)
		os.Exit(2)
	}
	if err := run(*steps, *traces, *top, tfsession.SessionConfig{Device: tfsession.DeviceCPU, IntraOpThreads: *intra, InterOpThreads: *inter, Precision: prec}); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(steps, traces, top int, cfg tfsession.SessionConfig) error {
	net := network.Tutorial(2)
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: 2})
	if err != nil {
		return err
	}
	s, err := tfsession.NewSession(m, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		return err
	}
	const batch = 32
	b := randomBatch(net, batch)
	for range 3 { // warm-up: the first steps allocate and choose kernels
		if _, err := s.Step(b); err != nil {
			return err
		}
	}
	times := make([]time.Duration, steps)
	for i := range times {
		t := time.Now()
		if _, err := s.Step(b); err != nil {
			return err
		}
		times[i] = time.Since(t)
	}
	slices.Sort(times)
	step := times[len(times)/2]
	flops := 3 * float64(net.FLOPs()) * batch // forward, and twice that backward
	achieved := flops / step.Seconds() / 1e9
	peak, err := matmulPeak(2048, cfg)
	if err != nil {
		return err
	}
	onednn, ok := os.LookupEnv("TF_ENABLE_ONEDNN_OPTS")
	if !ok {
		onednn = "unset"
	}
	fmt.Printf("TF_ENABLE_ONEDNN_OPTS=%s intra=%d inter=%d precision=%s\n", onednn, cfg.IntraOpThreads, cfg.InterOpThreads, cfg.Precision)
	fmt.Printf("training step: %.1f ms (median of %d, batch %d), %.1f GFLOP/s; MatMul peak %.1f GFLOP/s: %.0f%%\n",
		step.Seconds()*1e3, steps, batch, achieved, peak, 100*achieved/peak)
	var p tfsession.StepProfile
	for range traces {
		q, err := s.ProfileStep(b)
		if err != nil {
			return err
		}
		p.Merge(q)
	}
	p.Scale(traces)
	fmt.Printf("\nprofile of a traced step (mean of %d): wall %.1f ms, op time %.1f ms (ops run in parallel)\n\n",
		traces, p.Wall.Seconds()*1e3, p.OpTime.Seconds()*1e3)
	fmt.Println("| op type | nodes | ms per step | share of op time |")
	fmt.Println("|---|---|---|---|")
	var rest time.Duration
	for i, o := range p.Ops {
		if i >= top {
			rest += o.Time
			continue
		}
		fmt.Printf("| %s | %d | %.1f | %.1f%% |\n", o.Type, o.Count, o.Time.Seconds()*1e3, 100*o.Share)
	}
	if rest > 0 {
		fmt.Printf("| %d others | | %.1f | %.1f%% |\n", len(p.Ops)-top, rest.Seconds()*1e3, 100*float64(rest)/float64(p.OpTime))
	}
	return nil
}

// randomBatch is n images of uniform noise in [0, 1) with alternating labels.
func randomBatch(net network.Network, n int) *pixels.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	b := &pixels.Batch{N: n, X: make([]float32, n*net.Height*net.Width*net.Channels), Y: make([]float32, n*net.Classes), Labels: make([]int, n)}
	for i := range b.X {
		b.X[i] = r.Float32()
	}
	for i := range n {
		b.Labels[i] = i % net.Classes
		b.Y[i*net.Classes+i%net.Classes] = 1
	}
	return b
}

// matmulPeak is the GFLOP/s of four chained n x n float32 MatMuls, best of 5.
// With cfg.Precision bf16 the session's rewrite runs them in bfloat16 (casts
// included, O(n²) against the MatMuls' O(n³)): the bf16 peak.
func matmulPeak(n int64, cfg tfsession.SessionConfig) (float64, error) {
	s := op.NewScope()
	a := op.Placeholder(s.SubScope("a"), tf.Float, op.PlaceholderShape(tf.MakeShape(n, n)))
	w := op.Placeholder(s.SubScope("b"), tf.Float, op.PlaceholderShape(tf.MakeShape(n, n)))
	c := a
	for i := range 4 {
		l := s.SubScope(fmt.Sprint("layer", i))
		c = op.Mul(l, op.MatMul(l, c, w), op.Const(l, float32(1)/float32(n)))
	}
	g, err := s.Finalize()
	if err != nil {
		return 0, fmt.Errorf("building the MatMul chain: %w", err)
	}
	opts, err := cfg.Options()
	if err != nil {
		return 0, err
	}
	sess, err := tf.NewSession(g, opts)
	if err != nil {
		return 0, fmt.Errorf("opening the MatMul session: %w", err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(3, 4))
	mat := func() (*tf.Tensor, error) {
		v := make([][]float32, n)
		for i := range v {
			v[i] = make([]float32, n)
			for j := range v[i] {
				v[i][j] = r.Float32()
			}
		}
		return tf.NewTensor(v)
	}
	ta, err := mat()
	if err != nil {
		return 0, err
	}
	tb, err := mat()
	if err != nil {
		return 0, err
	}
	feeds := map[tf.Output]*tf.Tensor{a: ta, w: tb}
	best := time.Duration(1<<63 - 1)
	for i := range 6 {
		t := time.Now()
		if _, err := sess.Run(feeds, []tf.Output{c}, nil); err != nil {
			return 0, fmt.Errorf("running the MatMul chain: %w", err)
		}
		if d := time.Since(t); i > 0 && d < best { // the first run warms up
			best = d
		}
	}
	return 4 * 2 * float64(n*n*n) / best.Seconds() / 1e9, nil
}
