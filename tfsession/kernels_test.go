package tfsession

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// kernelChildEnv makes the test binary run TestOneDNNKeepsResults's child:
// TensorFlow picks its kernels when the library loads, so each kernel set
// needs a process of its own.
const kernelChildEnv = "TFGRAPH_KERNEL_CHILD"

// The largest differences between oneDNN's and Eigen's runs measured across
// kernel families (see TestOneDNNKeepsResults).
const (
	kernelLossSpread = 5.6e-5
	kernelProbSpread = 1.2e-7
)

// kernelRun is what a child reports: the loss of each training step and the
// probabilities of the prediction images.
type kernelRun struct {
	Losses []float32
	Probs  []float32
}

// TestOneDNNKeepsResults checks that tfcat's default speed settings, oneDNN's
// kernels (internal/onednn) and the rewritten gradients (fusable,
// biasGradients), leave the results as TensorFlow's default kernels give them
// on the tutorial's gradients: the tutorial's network at 128x128x3 trained 30
// steps, and the probabilities of 256 images from the same checkpoint.
// (scripts/bench.sh checks 1,000 photos the same way.)
//
// Bounds: a spread. oneDNN and Eigen block the convolutions' reductions
// differently, and Adam turns the rounding of near-zero gradients into
// full-size steps, so 30 steps drift apart. Measured across kernel families
// (oneDNN capped at each, against Eigen): losses 3.7e-5 (native,
// AVX512_CORE), 5.6e-5 (AVX2); probabilities from one checkpoint 1.2e-7 on
// every family. Bounds: those × testenv.SpreadHeadroom.
func TestOneDNNKeepsResults(t *testing.T) {
	if dir := os.Getenv(kernelChildEnv); dir != "" {
		kernelChild(t, dir)
		return
	}
	dir := t.TempDir()
	runs := map[string]kernelRun{}
	for _, kernels := range []string{"0", "1"} { // the default kernels first: they write the checkpoint
		cmd := exec.Command(os.Args[0], "-test.run=^TestOneDNNKeepsResults$", "-test.count=1")
		cmd.Env = append(os.Environ(), kernelChildEnv+"="+dir, "TF_ENABLE_ONEDNN_OPTS="+kernels, "TF_CPP_MIN_LOG_LEVEL=2")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child with TF_ENABLE_ONEDNN_OPTS=%s: %v\n%s", kernels, err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "run-"+kernels+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var r kernelRun
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		runs[kernels] = r
	}
	plain, fast := runs["0"], runs["1"]
	if len(plain.Losses) != 30 || len(fast.Losses) != 30 || len(plain.Probs) != 512 || len(fast.Probs) != 512 {
		t.Fatalf("children reported %d and %d losses, %d and %d probabilities", len(plain.Losses), len(fast.Losses), len(plain.Probs), len(fast.Probs))
	}
	var dl, dp float64
	for i := range plain.Losses {
		dl = max(dl, math.Abs(float64(plain.Losses[i]-fast.Losses[i])))
	}
	for i := range plain.Probs {
		dp = max(dp, math.Abs(float64(plain.Probs[i]-fast.Probs[i])))
	}
	t.Logf("oneDNN against the default kernels: losses within %.2g over 30 steps (%.7f, %.7f at the end), probabilities within %.2g",
		dl, plain.Losses[29], fast.Losses[29], dp)
	if bound := kernelLossSpread * testenv.SpreadHeadroom; dl > bound {
		t.Errorf("losses differ by %.3g, more than %.3g", dl, bound)
	}
	if bound := kernelProbSpread * testenv.SpreadHeadroom; dp > bound {
		t.Errorf("probabilities differ by %.3g, more than %.3g", dp, bound)
	}
	if plain.Losses[29] >= plain.Losses[0] {
		t.Errorf("the loss did not fall (%v to %v): the check would compare nothing", plain.Losses[0], plain.Losses[29])
	}
}

// kernelChild trains the tutorial's network 30 steps with the kernels its
// environment chose, then predicts 256 images with the checkpoint the
// default kernels' child saved, and writes both to dir.
func kernelChild(t *testing.T, dir string) {
	kernels := os.Getenv("TF_ENABLE_ONEDNN_OPTS")
	net := network.Tutorial(2)
	// The default kernels run the tutorial's gradients as the C API builds
	// them; oneDNN's child runs tfcat's default graph.
	m := mustBuild(t, net, tfgraph.BuildOptions{Seed: 2, UnfusedGradients: kernels == "0"})
	s, err := NewSession(m, SessionConfig{Device: DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	batches := []*Batch{randomBatch(r, net, 32), randomBatch(r, net, 32), randomBatch(r, net, 32)}
	var out kernelRun
	for i := range 30 {
		loss, err := s.Step(batches[i%len(batches)])
		if err != nil {
			t.Fatal(err)
		}
		out.Losses = append(out.Losses, loss)
	}
	ckpt := filepath.Join(dir, "ckpt")
	if kernels == "0" {
		if _, err := s.Save(SaveOptions{Dir: ckpt, Name: DefaultCheckpointName, MaxToKeep: 1}, network.Info{Classes: []string{"a", "b"}, Step: 30}); err != nil {
			t.Fatal(err)
		}
	}
	p, _, err := Resume(filepath.Join(ckpt, DefaultCheckpointName), SessionConfig{Device: DeviceCPU}, net.LearningRate)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 8 {
		b := randomBatch(r, net, 32)
		probs, err := p.Predict(b.X, b.N)
		if err != nil {
			t.Fatal(err)
		}
		out.Probs = append(out.Probs, probs...)
	}
	b, err := json.Marshal(out)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "run-"+kernels+".json"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}
