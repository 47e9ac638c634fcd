package tfsession

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// small is a quick network for tests: 8x8x1 input, one conv layer, fc 4.
func small(classes int) network.Network {
	n := network.Tutorial(classes).WithInput(8, 8, 1)
	n.Conv = []network.ConvLayer{{Size: 3, Filters: 2}}
	n.FC = 4
	n.LearningRate = 1e-2
	return n
}

func mustBuild(t testing.TB, n network.Network, opt tfgraph.BuildOptions) *tfgraph.Model {
	t.Helper()
	m, err := tfgraph.Build(n, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustSession(t testing.TB, m *tfgraph.Model) *Session {
	t.Helper()
	s, err := NewSession(m, SessionConfig{IntraOpThreads: 1, InterOpThreads: 1, Device: DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSeedGivesSameWeights(t *testing.T) {
	read := func(seed int64) map[string][]float32 {
		m := mustBuild(t, small(2), tfgraph.BuildOptions{Seed: seed})
		s := mustSession(t, m)
		if err := s.Init(); err != nil {
			t.Fatal(err)
		}
		v, err := s.VariableValues()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b, c := read(7), read(7), read(8)
	for name := range a {
		if !slices.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two builds with seed 7", name)
		}
	}
	if slices.Equal(a["Variable"], c["Variable"]) {
		t.Error("seeds 7 and 8 gave the same weights")
	}
	for _, w := range a["Variable"] {
		if w < -0.1 || w > 0.1 { // truncated at two standard deviations of 0.05
			t.Fatalf("weight %g outside the truncated normal's range", w)
		}
	}
	for _, v := range a["Variable_1"] {
		if v != 0.05 {
			t.Fatalf("bias %g, want 0.05", v)
		}
	}
}

// randomBatch makes n examples whose class is visible in the image: class k
// brightens row block k.
func randomBatch(r *rand.Rand, n network.Network, size int) *Batch {
	img := n.Height * n.Width * n.Channels
	b := &Batch{X: make([]float32, size*img), Y: make([]float32, size*n.Classes), N: size}
	for i := range size {
		k := r.IntN(n.Classes)
		b.Y[i*n.Classes+k] = 1
		for p := range img {
			b.X[i*img+p] = r.Float32() * 0.3
			if (p/(n.Width*n.Channels))%n.Classes == k {
				b.X[i*img+p] += 0.7
			}
		}
	}
	return b
}

func TestTrainingLearns(t *testing.T) {
	net := small(2)
	m := mustBuild(t, net, tfgraph.BuildOptions{Seed: 3})
	s := mustSession(t, m)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	test := randomBatch(r, net, 64)
	loss0, _, err := s.Evaluate(test)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := s.Step(randomBatch(r, net, 16)); err != nil {
			t.Fatal(err)
		}
	}
	loss1, acc, err := s.Evaluate(test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.4f -> %.4f, accuracy %.3f", loss0, loss1, acc)
	if loss1 >= loss0/2 || acc < 0.95 {
		t.Fatalf("training did not learn: loss %.4f -> %.4f, accuracy %.3f", loss0, loss1, acc)
	}
	beta, err := s.VariableValues(network.Beta1PowerName, network.Beta2PowerName)
	if err != nil {
		t.Fatal(err)
	}
	// beta1_power is 0.9 multiplied in float32 101 times: at most 101
	// roundings of u = 2⁻²⁴ each, 6.0e-6 relative, under 1e-5.
	if want := float32(pow(0.9, 101)); !close32(beta[network.Beta1PowerName][0], want, 1e-5) {
		t.Errorf("beta1_power %g after 100 steps, want %g", beta[network.Beta1PowerName][0], want)
	}
}

func pow(b float64, n int) float64 {
	r := 1.0
	for range n {
		r *= b
	}
	return r
}

func close32(a, b float32, rel float64) bool {
	d := float64(a - b)
	if d < 0 {
		d = -d
	}
	m := max(float64(a), -float64(a), float64(b), -float64(b))
	return d <= rel*m
}

func TestBatchShapeErrors(t *testing.T) {
	net := small(2)
	s := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*Batch{{N: 0}, {X: make([]float32, 10), Y: make([]float32, 4), N: 2}, {X: make([]float32, 128), Y: make([]float32, 1), N: 2}} {
		if _, err := s.Step(b); err == nil {
			t.Errorf("batch with N=%d, %d values, %d labels: no error", b.N, len(b.X), len(b.Y))
		}
	}
	_ = fmt.Sprint
	_ = tf.Float
}

// batchTensors returns b's images and labels as the tensors a raw run feeds
// to net's x and y_true placeholders; the caller frees them.
func batchTensors(b *Batch, net network.Network) (x, y *tf.Tensor) {
	x, _ = tfc.NewFloat32(int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels))
	y, _ = tfc.NewFloat32(int64(b.N), int64(net.Classes))
	xs, _ := tfc.Float32s(x)
	ys, _ := tfc.Float32s(y)
	copy(xs, b.X)
	copy(ys, b.Y)
	return x, y
}

// TestModelGradients checks the gradient of the cost for every element of every
// variable of a small model against central differences.
func TestModelGradients(t *testing.T) {
	net := small(2)
	m := mustBuild(t, net, tfgraph.BuildOptions{Seed: 11})
	s := mustSession(t, m)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	b := randomBatch(rand.New(rand.NewPCG(3, 4)), net, 4)
	x, y := batchTensors(b, net)
	defer tfc.FreeAll([]*tf.Tensor{x, y})
	out, err := s.Raw().Run(map[tf.Output]*tf.Tensor{m.X: x, m.Labels: y}, m.Grads, nil)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := s.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	// Central differences: the float32 loss (≈ 0.7, rounded to ~6e-8, a few
	// ulps through the reductions) over 2h gives ~5e-5 of rounding; the
	// truncation error is h²/6 times the third derivative, and larger where
	// a step crosses a ReLU's kink, which the relative part allows. 5e-4 is
	// 10 times the rounding term. Measured: 3.7e-5 on every kernel family.
	const h = 2e-3
	worst := 0.0
	for i, v := range m.Trainable() {
		analytic := testenv.Flatten64(out[i].Value())
		w := vals[v.Name]
		for j := range w {
			orig := w[j]
			eval := func(x float32) float64 {
				w[j] = x
				if err := s.SetVariables(map[string][]float32{v.Name: w}); err != nil {
					t.Fatal(err)
				}
				l, _, err := s.Evaluate(b)
				if err != nil {
					t.Fatal(err)
				}
				return float64(l)
			}
			numeric := (eval(orig+h) - eval(orig-h)) / (2 * h)
			eval(orig)
			d := abs(numeric - analytic[j])
			worst = max(worst, d)
			if d > 5e-4+1e-2*abs(numeric) {
				t.Errorf("d cost / d %s[%d]: analytic %.6g, numeric %.6g", v.Name, j, analytic[j], numeric)
			}
		}
	}
	t.Logf("%d variables, largest absolute gradient difference %.2g", len(m.Trainable()), worst)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
