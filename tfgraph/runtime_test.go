package tfgraph

import (
	"math"
	"math/rand/v2"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/internal/testenv"
)

// TestWrappersRunWithFeed: a graph made with graft's op wrappers runs in a
// Session with a fed placeholder and computes x·W + b.
func TestWrappersRunWithFeed(t *testing.T) {
	s := op.NewScope()
	x := op.Placeholder(s.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 2)))
	w := op.Const(s.SubScope("w"), [][]float32{{1, 2, 3}, {4, 5, 6}})
	b := op.Const(s.SubScope("b"), []float32{0.5, -1, 2})
	y := op.Add(s, op.MatMul(s, x, w), b)
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, _ := tf.NewTensor([][]float32{{1, 0}, {2, -1}})
	out, err := sess.Run(map[tf.Output]*tf.Tensor{x: in}, []tf.Output{y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := out[0].Value().([][]float32)
	want := [][]float32{{1.5, 1, 5}, {-1.5, -2, 2}}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("y = %v, want %v", got, want)
			}
		}
	}
}

// TestGradientsMatchFiniteDifferences checks Graph.AddGradients through one of
// every op the tutorial's network uses — Conv2D (SAME), Add, MaxPool (SAME),
// Relu, Reshape, MatMul, SoftmaxCrossEntropyWithLogits, Mean — against central
// differences. It runs in float32, as the model does: in float64 one of TF's C++
// gradient functions builds a float constant and fails to build.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	s := op.NewScope()
	ph := func(name string, dims ...int64) tf.Output {
		return op.Placeholder(s.SubScope(name), tf.Float, op.PlaceholderShape(tf.MakeShape(dims...)))
	}
	x, w1, b1 := ph("x", 2, 5, 5, 2), ph("w1", 3, 3, 2, 3), ph("b1", 3)
	w2, b2, labels := ph("w2", 27, 4), ph("b2", 4), ph("labels", 2, 4)
	c := s.SubScope("conv")
	h := op.Relu(c, op.MaxPool(c, op.Add(c, op.Conv2D(c, x, w1, []int64{1, 1, 1, 1}, "SAME"), b1), []int64{1, 2, 2, 1}, []int64{1, 2, 2, 1}, "SAME"))
	f := s.SubScope("fc")
	logits := op.Add(f, op.MatMul(f, op.Reshape(f, h, op.Const(f, []int32{-1, 27})), w2), b2)
	l := s.SubScope("loss")
	ce, _ := op.SoftmaxCrossEntropyWithLogits(l, logits, labels)
	loss := op.Mean(l, ce, op.Const(l, []int32{0}))
	params := []tf.Output{x, w1, b1, w2, b2}
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	grads, err := g.AddGradients("", []tf.Output{loss}, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	r := rand.New(rand.NewPCG(5, 6))
	sizes := []int{2 * 5 * 5 * 2, 3 * 3 * 2 * 3, 3, 27 * 4, 4}
	shapes := [][]int64{{2, 5, 5, 2}, {3, 3, 2, 3}, {3}, {27, 4}, {4}}
	vals := make([][]float64, len(params))
	for i, n := range sizes {
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			vals[i][j] = r.NormFloat64() * 0.5
		}
	}
	lab := []float64{0, 1, 0, 0, 0.2, 0.3, 0.5, 0}
	feed := func() map[tf.Output]*tf.Tensor {
		m := map[tf.Output]*tf.Tensor{}
		for i, p := range params {
			m[p] = tensor32(t, vals[i], shapes[i])
		}
		m[labels] = tensor32(t, lab, []int64{2, 4})
		return m
	}
	eval := func() float64 {
		out, err := sess.Run(feed(), []tf.Output{loss}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return float64(out[0].Value().(float32))
	}
	out, err := sess.Run(feed(), grads, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"x", "w1", "b1", "w2", "b2"}
	// h balances float32 rounding in the loss (~1e-7/h = 5e-5) against the
	// O(h²) truncation error; the tolerance allows for both (5e-4 is 10 times
	// the rounding term; measured 1.3e-4 on every kernel family).
	const h2 = 2e-3
	worst := 0.0
	for i := range params {
		analytic := testenv.Flatten64(out[i].Value())
		if len(analytic) != len(vals[i]) {
			t.Fatalf("gradient of %s has %d values, want %d", names[i], len(analytic), len(vals[i]))
		}
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + h2
			up := eval()
			vals[i][j] = orig - h2
			down := eval()
			vals[i][j] = orig
			numeric := (up - down) / (2 * h2)
			d := math.Abs(numeric - analytic[j])
			worst = math.Max(worst, d)
			if d > 5e-4+1e-2*math.Abs(numeric) {
				t.Errorf("d loss / d %s[%d]: analytic %.8g, numeric %.8g", names[i], j, analytic[j], numeric)
			}
		}
	}
	t.Logf("largest absolute difference between analytic and numeric gradients: %.2g", worst)
}

func tensor32(t *testing.T, v []float64, shape []int64) *tf.Tensor {
	t.Helper()
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	tt, err := tf.NewTensor(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Reshape(shape); err != nil {
		t.Fatal(err)
	}
	return tt
}
