package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
)

// TestFineTuneGradients compares the backbone's gradients, through its
// inlined functions, with Python's tf.GradientTape on the same SavedModel,
// head and batch.
func TestFineTuneGradients(t *testing.T) {
	bbDir := backbones(t)
	r := &run{opt: Options{Base: mnv2(bbDir)}}
	if err := r.openBase(); err != nil {
		t.Fatal(err)
	}
	vars, err := tfgraph.FineTuneVars(r.base, r.backbone, "all")
	if err != nil {
		t.Fatal(err)
	}
	net := tfgraph.Tutorial(2).WithInput(96, 96, 3)
	net.Conv, net.FC, net.Base = nil, 0, r.base
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: 3, Base: r.backbone, FineTune: &tfgraph.FineTune{Vars: vars}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tfgraph.NewSession(m, tfgraph.SessionConfig{Device: tfgraph.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	if err := s.InitBase(); err != nil {
		t.Fatal(err)
	}
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
	if !(worst <= 1e-4) {
		t.Errorf("gradients differ from Python's by %.3g of their largest value (%s)", worst, worstName)
	}
}
