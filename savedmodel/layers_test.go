package savedmodel

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfsession"
)

// trainedCheckpoint trains net for a few steps on random batches, so that
// batch normalisation's moving averages are no longer their initial values,
// and saves it.
func trainedCheckpoint(t *testing.T, net network.Network, classes []string) string {
	t.Helper()
	s := testmodel.Session(t, net, testmodel.Options{Seed: 4, Session: cpu})
	r := rand.New(rand.NewPCG(5, 6))
	const n = 8
	b := &pixels.Batch{N: n, X: images(n, net.Height, net.Width, net.Channels, 9), Y: make([]float32, n*net.Classes)}
	for step := range 30 {
		clear(b.Y)
		for i := range n {
			b.Y[i*net.Classes+r.IntN(net.Classes)] = 1
		}
		b.X = images(n, net.Height, net.Width, net.Channels, uint64(step))
		if _, err := s.Step(b); err != nil {
			t.Fatal(err)
		}
	}
	moving, err := s.VariableValues("conv1/bn/moving_mean")
	if err != nil {
		t.Fatal(err)
	}
	if moving["conv1/bn/moving_mean"][0] == 0 {
		t.Fatal("the moving mean did not move")
	}
	dir := filepath.Join(t.TempDir(), "ckpt")
	if _, err := s.Save(tfsession.SaveOptions{Dir: dir}, network.Info{Classes: classes, Step: 30}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPythonLoadsExportWithDropoutAndBatchNorm: a network with dropout and
// batch normalisation exports a SavedModel without dropout and with the
// moving averages, which Python's tf.saved_model.load runs to the
// probabilities tfcat computes from the checkpoint.
func TestPythonLoadsExportWithDropoutAndBatchNorm(t *testing.T) {
	net := network.Tutorial(3).WithInput(20, 20, 3)
	net.Conv = []network.ConvLayer{{Size: 3, Filters: 8}, {Size: 3, Filters: 16}}
	net.FC, net.MoreFC, net.Dropout, net.BatchNorm, net.Resize = 16, []int{8}, 0.5, true, pixels.Pad
	net.LearningRate = 1e-2
	ckpt := trainedCheckpoint(t, net, []string{"a", "b", "c"})
	out := filepath.Join(t.TempDir(), "export")
	if _, err := Export(exportSource(t, ckpt, net), out, ExportOptions{Session: cpu}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	x := images(n, 20, 20, 3, 77)
	want := checkpointPredict(t, ckpt, x, n)

	m, err := Load(out, cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.ResizeMode() != pixels.Pad {
		t.Errorf("the SavedModel's resize mode is %q, want pad", m.ResizeMode())
	}
	got, err := m.Predict(testenv.FaultInput(x, 3), n)
	if err != nil {
		t.Fatal(err)
	}
	// The same forward graph (dropout and batch norm in inference form) from
	// the checkpoint, the SavedModel and Python's loaders: a few ulps allowed.
	if d := testenv.MaxAbsDiff(got, want); d > testenv.SameGraphProb {
		t.Errorf("Go SavedModel vs the checkpoint: max |Δp| = %g", d)
	}
	again, _ := m.Predict(x, n)
	if d := testenv.MaxAbsDiff(again, got); d != 0 {
		t.Errorf("the SavedModel's predictions vary (dropout at inference?): %g", d)
	}

	tmp := t.TempDir()
	xPath := filepath.Join(tmp, "x.npy")
	if err := npy.WriteFile(xPath, []int{n, 20, 20, 3}, x); err != nil {
		t.Fatal(err)
	}
	testenv.RunPython(t, "testdata/reference.py", "load", out, xPath, filepath.Join(tmp, "py_"))
	for _, loader := range []string{"v2", "v1"} {
		probs, err := npy.ReadFile(filepath.Join(tmp, "py_"+loader+"_probabilities.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if d := testenv.MaxAbsDiff(probs.Float32, got); d > testenv.SameGraphProb {
			t.Errorf("Python %s loader: probabilities differ from tfcat's by %g", loader, d)
		} else {
			t.Logf("Python %s loader vs tfcat: max |Δp| = %g over %d probabilities", loader, d, len(want))
		}
	}
}
