package tfsession

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
)

// TestNetworkVariants builds and trains networks beyond the tutorial's and
// checks their variables, the two paths, and that inference is
// deterministic while training sees dropout.
func TestNetworkVariants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		change    func(*network.Network)
		vars      []string // variables that must exist
		noVars    []string // and must not
		trainPath bool
	}{
		{"tutorial", func(*network.Network) {}, []string{"Variable", "Variable_1", "Variable_5"}, []string{"Variable_6", "conv1/bn/gamma"}, false},
		{"two fc layers", func(n *network.Network) { n.MoreFC = []int{3} }, []string{"Variable_7"}, []string{"Variable_8"}, false},
		{"dropout", func(n *network.Network) { n.Dropout = 0.5 }, []string{"Variable_3"}, []string{"conv1/bn/gamma"}, true},
		{"batch norm", func(n *network.Network) { n.BatchNorm = true },
			[]string{"Variable", "Variable_3", "conv1/bn/gamma", "conv1/bn/beta", "conv1/bn/moving_mean", "fc1/bn/moving_variance", "conv1/bn/gamma/Adam"},
			[]string{"Variable_4", "fc2/bn/gamma", "conv1/bn/moving_mean/Adam"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := small(2)
			tc.change(&net)
			m := mustBuild(t, net, tfgraph.BuildOptions{Seed: 5})
			for _, v := range tc.vars {
				if m.Var(v) == nil {
					t.Errorf("no variable %s", v)
				}
			}
			for _, v := range tc.noVars {
				if m.Var(v) != nil {
					t.Errorf("unexpected variable %s", v)
				}
			}
			if got := m.Graph.Operation("train/cost") != nil; got != tc.trainPath {
				t.Errorf("training path present: %v, want %v", got, tc.trainPath)
			}
			inf := mustBuild(t, net, tfgraph.BuildOptions{InferenceOnly: true})
			if inf.Graph.Operation("train/cost") != nil || inf.Train != nil {
				t.Error("the inference-only graph has a training path")
			}
			s := mustSession(t, m)
			if err := s.Init(); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			test := randomBatch(r, net, 64)
			l0, _, err := s.Evaluate(test)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := s.VariableValues()
			steps := 60
			if net.BatchNorm {
				steps = 400 // for the moving averages (momentum 0.99) to catch up
			}
			for range steps {
				if _, err := s.Step(randomBatch(r, net, 16)); err != nil {
					t.Fatal(err)
				}
			}
			after, _ := s.VariableValues()
			for name, v := range after {
				if s.Model.Var(name).Trainable && slices.Equal(v, before[name]) {
					t.Errorf("trainable %s did not change", name)
				}
			}
			if net.BatchNorm {
				for _, name := range []string{"conv1/bn/moving_mean", "fc1/bn/moving_variance"} {
					if slices.Equal(after[name], before[name]) {
						t.Errorf("%s did not move", name)
					}
				}
			}
			l1, acc, err := s.Evaluate(test)
			if err != nil {
				t.Fatal(err)
			}
			l2, _, _ := s.Evaluate(test)
			if l1 != l2 {
				t.Errorf("inference is not deterministic: loss %g then %g", l1, l2)
			}
			t.Logf("loss %.4f -> %.4f, accuracy %.3f", l0, l1, acc)
			if l1 >= l0 || acc < 0.9 {
				t.Errorf("did not learn: loss %.4f -> %.4f, accuracy %.3f", l0, l1, acc)
			}
			if net.Dropout > 0 {
				checkDropout(t, s, test)
			}
		})
	}
}

// checkDropout runs the training and inference paths of s's network (one
// hidden layer, no batch normalisation) forward on b several times with the
// weights fixed — no training op runs — and checks dropout by what it is:
// the training path's hidden layer is the inference path's, with each unit
// either zeroed or scaled by 1/(1-rate); a fraction rate of the units is
// zeroed; the mask, and so the training cost, changes from run to run; the
// inference path gives the same values every run.
func checkDropout(t *testing.T, s *Session, b *Batch) {
	m, net := s.Model, s.Model.Net
	if len(net.Hidden()) != 1 || net.BatchNorm {
		t.Fatalf("checkDropout expects one hidden layer and no batch norm, has %v, %v", net.Hidden(), net.BatchNorm)
	}
	op := func(name string) tf.Output {
		o := m.Graph.Operation(name)
		if o == nil {
			t.Fatalf("no op %s: the training path has no dropout", name)
		}
		return o.Output(0)
	}
	// The inference path's hidden layer, the training path's after dropout
	// (what its output layer multiplies), and the training cost.
	fetches := []tf.Output{op("fc1/Relu"), op("train/fc1/dropout/Mul"), m.TrainCost, m.Logits}
	x, y := batchTensors(b, net)
	defer tfc.FreeAll([]*tf.Tensor{x, y})
	before, err := s.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	rate, keep := net.Dropout, float32(1-net.Dropout)
	var hidden, logits []float32
	var masks [][]bool
	var costs []float32
	kept, zeroed, mismatched := 0, 0, 0
	const runs = 80 // ≈ 5000 positive units: 5σ ≈ 0.035 at rate 0.5
	for r := range runs {
		out, err := s.Raw().Run(map[tf.Output]*tf.Tensor{m.X: x, m.Labels: y}, fetches, nil)
		if err != nil {
			t.Fatal(err)
		}
		inf, drop := flatten32(out[0].Value()), flatten32(out[1].Value())
		costs = append(costs, out[2].Value().(float32))
		lg := flatten32(out[3].Value())
		if r == 0 {
			hidden, logits = inf, lg
		} else if !slices.Equal(inf, hidden) || !slices.Equal(lg, logits) {
			t.Fatalf("inference path not deterministic: run %d differs from run 0", r)
		}
		// The two paths run the same MatMul of FlatSize terms; kernels
		// that sum in another order differ by at most FlatSize float32
		// roundings of the largest value.
		scale := float32(0)
		for _, v := range inf {
			scale = max(scale, v/keep)
		}
		tol := float32(net.FlatSize()) * 0x1p-23 * scale
		mask := make([]bool, len(drop))
		for i, d := range drop {
			switch {
			case inf[i] == 0:
				// ReLU's zeros say nothing about dropout.
				if d != 0 {
					mismatched++
				}
			case d == 0:
				zeroed++
			default:
				kept++
				mask[i] = true
				if float32(math.Abs(float64(d-inf[i]/keep))) > tol {
					mismatched++
				}
			}
		}
		masks = append(masks, mask)
	}
	if mismatched > 0 {
		t.Errorf("%d training-path units are neither 0 nor the inference path's value / %g", mismatched, keep)
	}
	// zeroed is Binomial(n, rate) over the n units ReLU left positive: allow
	// 5 standard deviations, sqrt(n·rate·(1-rate))/n as a fraction.
	n := kept + zeroed
	if n < 1000 {
		t.Fatalf("only %d positive hidden units over %d runs: too few to measure the dropout rate", n, runs)
	}
	frac, bound := float64(zeroed)/float64(n), 5*math.Sqrt(rate*(1-rate)/float64(n))
	t.Logf("dropout zeroed %d of %d units: %.4f, rate %g ± %.4f", zeroed, n, frac, rate, bound)
	if math.Abs(frac-rate) > bound {
		t.Errorf("dropout zeroed %.4f of %d units, want %g ± %.4f (5σ)", frac, n, rate, bound)
	}
	// With ~65 positive units a run, two independent masks agree with
	// probability ~2^-65: every consecutive pair must differ.
	sameMask, sameCost := 0, 0
	for r := 1; r < runs; r++ {
		if slices.Equal(masks[r], masks[r-1]) {
			sameMask++
		}
		if costs[r] == costs[r-1] {
			sameCost++
		}
	}
	if sameMask > 0 {
		t.Errorf("%d of %d consecutive runs drop the same units: the mask does not change", sameMask, runs-1)
	}
	if sameCost > 0 {
		t.Errorf("%d of %d consecutive runs give the same training cost (%g) with the weights fixed: the mask does not reach the cost", sameCost, runs-1, costs[0])
	}
	after, err := s.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range after {
		if !slices.Equal(v, before[name]) {
			t.Fatalf("%s changed during the forward runs", name)
		}
	}
}

func flatten32(v any) []float32 {
	switch v := v.(type) {
	case [][]float32:
		return slices.Concat(v...)
	case []float32:
		return v
	}
	panic("flatten32: unexpected type")
}

// TestBatchNormCheckpointRoundTrip saves a trained batch-norm network and
// resumes it: the network comes back from the .meta and the moving averages
// from the checkpoint, so the predictions are equal.
func TestBatchNormCheckpointRoundTrip(t *testing.T) {
	net := small(3)
	net.BatchNorm, net.Dropout, net.MoreFC, net.Resize = true, 0.25, []int{5}, pixels.Crop
	s := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 9}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		if _, err := s.Step(randomBatch(r, net, 8)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: dir}, network.Info{Step: 20})
	if err != nil {
		t.Fatal(err)
	}
	test := randomBatch(r, net, 10)
	want, err := s.Predict(test.X, test.N)
	if err != nil {
		t.Fatal(err)
	}
	re, mi, err := Resume(prefix, SessionConfig{Device: DeviceCPU}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if mi.Network == nil || mi.Network.Resize != pixels.Crop || !slices.Equal(mi.Network.MoreFC, []int{5}) || !mi.Network.BatchNorm || mi.Network.Dropout != 0.25 {
		t.Fatalf("recorded network %+v", mi.Network)
	}
	got, err := re.Predict(test.X, test.N)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("resumed predictions differ:\n%v\n%v", got, want)
	}
	im, err := ImportCheckpoint(prefix, ImportOptions{Session: SessionConfig{Device: DeviceCPU}})
	if err != nil {
		t.Fatalf("importing the checkpoint as predict.py would: %v", err)
	}
	defer im.Close()
	if got, err = im.Predict(test.X, test.N); err != nil || !slices.Equal(got, want) {
		t.Errorf("imported predictions %v (%v), want %v", got, err, want)
	}
}
