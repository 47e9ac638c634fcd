package tfsession

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/onednn"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// TestPrecisionBF16 trains the tutorial's network 30 steps in float32 and
// with TensorFlow's oneDNN bfloat16 rewrite from the same initial values on
// the same batches. Where the CPU has no bfloat16 unit (or oneDNN is off or
// capped below it) the bf16 session is refused with the reason instead.
//
// Bound: the rewrite rounds the inputs of each convolution and MatMul to
// bfloat16 (8 significant bits, u = 2⁻⁸) and accumulates in float32, so
// each of the 5 layers' outputs is off by at most 2u of its terms' absolute
// sum; a softmax cross-entropy moves by at most the logits' change. With
// the logits' terms of the order of the loss (≈ 0.7 here) that is
// 5·2u·0.7 ≈ 0.027 per step; Adam's drift over 30 steps stays inside it
// (measured below). Variables, slots and the checkpoint stay float32: Python
// restores the bf16-trained checkpoint and gives tfcat's float32
// probabilities to the same graph's few ulps.
func TestPrecisionBF16(t *testing.T) {
	cfg := SessionConfig{IntraOpThreads: 1, InterOpThreads: 1, Device: DeviceCPU, Precision: BF16}
	if !onednn.BF16() || !onednn.On() {
		_, err := cfg.Options()
		if err == nil || !strings.Contains(err.Error(), "precision bf16 needs") {
			t.Fatalf("bf16 session on a CPU without a bfloat16 unit (or oneDNN off): %v, want a refusal", err)
		}
		t.Logf("refused as expected here: %v", err)
		return
	}
	net := network.Tutorial(2)
	f32 := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}))
	bf, err := NewSession(mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	for _, s := range []*Session{f32, bf} {
		if err := s.Init(); err != nil {
			t.Fatal(err)
		}
	}
	const u = 0x1p-8
	r := rand.New(rand.NewPCG(5, 6))
	worst, differ := 0.0, false
	for i := range 30 {
		b := randomBatch(r, net, 32)
		lf, err := f32.Step(b)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := bf.Step(b)
		if err != nil {
			t.Fatal(err)
		}
		d := math.Abs(float64(lf - lb))
		worst = math.Max(worst, d)
		differ = differ || lf != lb
		if bound := 5 * 2 * u * math.Abs(float64(lf)); d > bound {
			t.Errorf("step %d: bf16 loss %.6g, f32 %.6g: %.3g apart, bound %.3g", i+1, lb, lf, d, bound)
		}
	}
	if !differ {
		t.Error("bf16 and f32 losses are equal at every step: the rewrite did not run")
	}
	t.Logf("30 steps: bf16 and f32 losses at most %.3g apart", worst)

	// The bf16-trained checkpoint is float32, read by Python's tutorial code.
	dir := t.TempDir()
	if _, err := bf.Save(SaveOptions{Dir: dir}, network.Info{Step: 30}); err != nil {
		t.Fatal(err)
	}
	probe := randomBatch(r, net, 8)
	im, err := ImportCheckpoint(filepath.Join(dir, "dogs-cats-model"), ImportOptions{Session: SessionConfig{Device: DeviceCPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	want, err := im.Predict(probe.X, probe.N)
	if err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "x.npy")
	if err := npy.WriteFile(x, []int{probe.N, net.Height, net.Width, net.Channels}, probe.X); err != nil {
		t.Fatal(err)
	}
	pred := filepath.Join(dir, "pred.npy")
	testenv.RunPython(t, "testdata/tutorial.py", "predict", dir, x, pred)
	if d := testenv.MaxAbsDiff(loadNPY(t, pred).Float32, want); d > testenv.SameGraphProb {
		t.Errorf("Python's y_pred from the bf16-trained checkpoint differs from tfcat's float32 by %g", d)
	}
	keys := testenv.RunPython(t, "testdata/tutorial.py", "keys", filepath.Join(dir, "dogs-cats-model"))
	if strings.Contains(keys, "bfloat16") || strings.Count(keys, "\n") != 32 {
		t.Errorf("checkpoint keys:\n%s\nwant the tutorial's 32 float32 variables", keys)
	}
}
