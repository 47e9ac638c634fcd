package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// TestFineTuneGradients compares the backbone's gradients, through its
// inlined functions, with Python's tf.GradientTape on the same SavedModel,
// head and batch.
func TestFineTuneGradients(t *testing.T) {
	bbDir := backbones(t)
	r := openTestBase(t, mnv2(bbDir))
	vars, err := backbone.FineTuneVars(r.base, r.backbone, "all")
	if err != nil {
		t.Fatal(err)
	}
	s := baseSession(t, r, 0, tfgraph.BuildOptions{Seed: 3, FineTune: &tfgraph.FineTune{Vars: vars}})
	m := s.Model
	const n = 4
	rng := rand.New(rand.NewPCG(1, 2))
	b := &pixels.Batch{N: n, X: make([]float32, n*96*96*3), Y: make([]float32, n*2)}
	for i := range b.X {
		b.X[i] = rng.Float32()
	}
	for i := range n {
		b.Y[2*i+i%2] = 1
	}
	got, err := s.FineTuneGradients(b)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	var head []string
	for _, v := range m.Trainable() {
		head = append(head, v.Name)
	}
	hv, err := s.VariableValues(head...)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.Trainable() {
		file := "w.npy"
		if len(v.Shape) == 1 {
			file = "b.npy"
		}
		shape := make([]int, len(v.Shape))
		for i, d := range v.Shape {
			shape[i] = int(d)
		}
		if err := npy.WriteFile(filepath.Join(work, file), shape, hv[v.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := npy.WriteFile(filepath.Join(work, "x.npy"), []int{n, 96, 96, 3}, b.X); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(filepath.Join(work, "y.npy"), []int{n, 2}, b.Y); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "grads")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.RunPython(t, filepath.Join("testdata", "finetune_reference.py"), filepath.Join(bbDir, "mnv2"),
		filepath.Join(work, "x.npy"), filepath.Join(work, "y.npy"), filepath.Join(work, "w.npy"), filepath.Join(work, "b.npy"), out)
	names := map[string]string{}
	for _, v := range r.base.Variables {
		names[v.Node] = v.Name
	}
	worst, worstName := 0.0, ""
	for node, g := range got {
		name := names[node]
		want := readNpy(t, filepath.Join(out, strings.ReplaceAll(name, "/", "__")+".npy"))
		if len(want) != len(g) {
			t.Fatalf("%s: %d values from Python, %d from tfcat", name, len(want), len(g))
		}
		scale := testenv.MaxAbs(want)
		d := testenv.MaxAbsDiff(g, want) / scale
		if math.IsNaN(d) || d > worst {
			worst, worstName = d, name
		}
	}
	t.Logf("%d gradients; largest max|Δ|/max|g| %.3g (%s)", len(got), worst, worstName)
	// The bound, 1e-4 of each gradient's largest value: the same
	// backward pass as two graphs (tfcat's inlined one, Python's tape over
	// the functions) fused differently. Measured here: 6.54e-6 (native
	// AVX512_CORE and TF_ENABLE_ONEDNN_OPTS=0), 6.68e-6 (AVX2), all at
	// block_16_depthwise_BN/gamma, whose gradient sums over 6x6 positions
	// and the batch of a 3x3 depthwise convolution's output: 15 times
	// inside the bound.
	if !(worst <= 1e-4) {
		t.Errorf("gradients differ from Python's by %.3g of their largest value (%s)", worst, worstName)
	}
}

// TestFineTuneResume trains a head on the frozen backbone, then resumes
// that checkpoint fine-tuning from a layer for 20 steps: the layers from it
// up change, the ones below do not (read back from the checkpoints).
func TestFineTuneResume(t *testing.T) {
	bbDir := backbones(t)
	data := t.TempDir()
	if err := testenv.WriteClassFolders(data, []string{"dark", "light"}, 12, 40); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	opt := Options{Data: data, Seed: 1, BatchSize: 6, Epochs: 2, LearningRate: 1e-2, ModelDir: dir, Base: mnv2(bbDir),
		Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU}}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	before := checkpointVars(t, res.Checkpoint)

	const layer = "block_15_expand"
	opt.Resume, opt.Epochs, opt.Steps, opt.FineTune = true, 0, res.Step+20, layer
	opt.Base = nil // the backbone comes from the checkpoint
	res2, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Step != res.Step+20 {
		t.Fatalf("resumed at step %d, ended at %d; want 20 more", res.Step, res2.Step)
	}
	after := checkpointVars(t, res2.Checkpoint)

	r := openTestBase(t, mnv2(bbDir))
	tuned, err := backbone.FineTuneVars(r.base, r.backbone, layer)
	if err != nil {
		t.Fatal(err)
	}
	isTuned := map[string]bool{}
	for _, v := range tuned {
		isTuned[tfgraph.BasePrefix+"/"+v] = true
	}
	// From block_15_expand up: blocks 15 and 16 (expand, depthwise and
	// project convolutions with their batch norms' gamma and beta: 9
	// variables each) and Conv_1 with its batch norm (3).
	names := map[string]string{}
	for _, v := range r.base.Variables {
		names[v.Node] = v.Name
	}
	for _, v := range tuned {
		if n := names[v]; !strings.HasPrefix(n, "block_15_") && !strings.HasPrefix(n, "block_16_") && !strings.HasPrefix(n, "Conv_1") {
			t.Errorf("%s (%s) is fine-tuned from %s", n, v, layer)
		}
	}
	if len(tuned) != 21 {
		t.Errorf("%d variables fine-tuned from %s, want 21", len(tuned), layer)
	}
	var changed, same int
	for name, b := range before {
		if !strings.HasPrefix(name, tfgraph.BasePrefix+"/") {
			continue
		}
		d := testenv.MaxAbsDiff(b, after[name])
		switch {
		case isTuned[name] && d == 0:
			t.Errorf("%s is fine-tuned and did not change", name)
		case !isTuned[name] && d != 0:
			t.Errorf("%s is below the cut and changed by %g", name, d)
		case isTuned[name]:
			changed++
		default:
			same++
		}
	}
	if changed != len(tuned) || changed == 0 || same == 0 {
		t.Errorf("%d variables changed and %d did not; %d fine-tuned", changed, same, len(tuned))
	}
	t.Logf("from %s: %d backbone variables changed, %d did not", layer, changed, same)
}

// checkpointVars reads every variable of the checkpoint at prefix.
func checkpointVars(t *testing.T, prefix string) map[string][]float32 {
	t.Helper()
	m, err := model.Open(prefix, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.Variables()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
