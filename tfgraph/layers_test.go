package tfgraph

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/dataset"
)

func TestTutorialNetworkRecordUnchanged(t *testing.T) {
	b, err := json.Marshal(Tutorial(2))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"Height":128,"Width":128,"Channels":3,"Classes":2,"Conv":[{"Size":3,"Filters":32},{"Size":3,"Filters":32},{"Size":3,"Filters":64}],"FC":128,"LearningRate":0.0001,"Beta1":0.9,"Beta2":0.999,"Epsilon":1e-8,"WeightStddev":0.05,"BiasInit":0.05}`
	if string(b) != want {
		t.Errorf("the tutorial's network records as\n%s\nwant\n%s", b, want)
	}
	if !Tutorial(2).IsTutorial() {
		t.Error("Tutorial(2).IsTutorial() is false")
	}
}

func TestNetworkValidateLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Network)
		want   string // "" for valid
	}{
		{"dropout and batch norm", func(n *Network) { n.Dropout, n.BatchNorm, n.MoreFC = 0.5, true, []int{8} }, ""},
		{"negative dropout", func(n *Network) { n.Dropout = -0.1 }, "dropout -0.1"},
		{"dropout of one", func(n *Network) { n.Dropout = 1 }, "dropout 1"},
		{"empty fc layer", func(n *Network) { n.MoreFC = []int{4, 0} }, "fully connected layer 3 has 0 units"},
		{"no conv", func(n *Network) { n.Conv = nil }, "no conv layers"},
		{"resize mode", func(n *Network) { n.Resize = "squash" }, `resize mode "squash"`},
		{"pad", func(n *Network) { n.Resize = dataset.Pad }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := small(2)
			tc.change(&n)
			err := n.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNetworkVariants builds and trains networks beyond the tutorial's and
// checks their variables, the two paths, and that inference is
// deterministic while training sees dropout.
func TestNetworkVariants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		change    func(*Network)
		vars      []string // variables that must exist
		noVars    []string // and must not
		trainPath bool
	}{
		{"tutorial", func(*Network) {}, []string{"Variable", "Variable_1", "Variable_5"}, []string{"Variable_6", "conv1/bn/gamma"}, false},
		{"two fc layers", func(n *Network) { n.MoreFC = []int{3} }, []string{"Variable_7"}, []string{"Variable_8"}, false},
		{"dropout", func(n *Network) { n.Dropout = 0.5 }, []string{"Variable_3"}, []string{"conv1/bn/gamma"}, true},
		{"batch norm", func(n *Network) { n.BatchNorm = true },
			[]string{"Variable", "Variable_3", "conv1/bn/gamma", "conv1/bn/beta", "conv1/bn/moving_mean", "fc1/bn/moving_variance", "conv1/bn/gamma/Adam"},
			[]string{"Variable_4", "fc2/bn/gamma", "conv1/bn/moving_mean/Adam"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := small(2)
			tc.change(&net)
			m := mustBuild(t, net, BuildOptions{Seed: 5})
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
			inf := mustBuild(t, net, BuildOptions{InferenceOnly: true})
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
				// The training path drops units: its loss on one batch
				// varies from step to step even at a learning rate of ~0.
				a, _ := s.Step(test)
				b, _ := s.Step(test)
				if a == b {
					t.Errorf("training loss %g twice: no dropout in training", a)
				}
			}
		})
	}
}

// TestBatchNormCheckpointRoundTrip saves a trained batch-norm network and
// resumes it: the network comes back from the .meta and the moving averages
// from the checkpoint, so the predictions are equal.
func TestBatchNormCheckpointRoundTrip(t *testing.T) {
	net := small(3)
	net.BatchNorm, net.Dropout, net.MoreFC, net.Resize = true, 0.25, []int{5}, dataset.Crop
	s := mustSession(t, mustBuild(t, net, BuildOptions{Seed: 9}))
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
	prefix, err := s.Save(SaveOptions{Dir: dir}, Info{Step: 20})
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
	if mi.Network == nil || mi.Network.Resize != dataset.Crop || !slices.Equal(mi.Network.MoreFC, []int{5}) || !mi.Network.BatchNorm || mi.Network.Dropout != 0.25 {
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
