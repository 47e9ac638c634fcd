package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// TestFineTuneBN fine-tunes the Keras MobileNetV2 from block_12_expand up
// with its batch norms in training mode and compares with Keras called
// with training=True on the same weights (the layers below not trainable):
// the backbone's gradients, the moving statistics after one step, and
// that the features predict computes after it are Keras's inference-mode
// ones with tfcat's updated variables.
func TestFineTuneBN(t *testing.T) {
	bbDir := backbones(t)
	r := openTestBase(t, mnv2(bbDir))
	const cut = "block_12_expand"
	vars, err := backbone.FineTuneVars(r.base, r.backbone, cut)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // node -> Keras name
	layerOf := map[string]string{}
	for _, v := range r.base.Variables {
		names[v.Node], layerOf[v.Node] = v.Name, v.Layer()
	}
	var tuned []string
	for _, v := range vars {
		if l := layerOf[v]; !slices.Contains(tuned, l) {
			tuned = append(tuned, l)
		}
	}
	s := baseSession(t, r, 0, tfgraph.BuildOptions{Seed: 3, FineTune: &tfgraph.FineTune{Vars: vars, BatchNorm: true}})
	m := s.Model
	// Blocks 12 to 16 (expand, depthwise, project) and Conv_1.
	if len(m.TuneBN) != 16 || m.TuneBN[0] != "block_12_expand_BN" || m.TuneBN[15] != "Conv_1_bn" {
		t.Fatalf("batch norms in training mode: %v; want the 16 from block_12_expand_BN to Conv_1_bn", m.TuneBN)
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
	relus := reluOutputs(t, s, b)
	var head []string
	for _, v := range m.Trainable() {
		head = append(head, v.Name)
	}
	before := baseValues(t, s)
	hv, err := s.VariableValues(head...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(b); err != nil {
		t.Fatal(err)
	}
	after := baseValues(t, s)
	feats, err := s.Features(b.X, n)
	if err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	write := func(file string, shape []int64, v []float32) {
		t.Helper()
		dims := make([]int, len(shape))
		for i, d := range shape {
			dims[i] = int(d)
		}
		if err := npy.WriteFile(filepath.Join(work, file), dims, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range m.Trainable() {
		file := "w.npy"
		if len(v.Shape) == 1 {
			file = "b.npy"
		}
		write(file, v.Shape, hv[v.Name])
	}
	write("x.npy", []int64{n, 96, 96, 3}, b.X)
	write("y.npy", []int64{n, 2}, b.Y)
	if err := os.Mkdir(filepath.Join(work, "after"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range m.BaseVars {
		node := strings.TrimPrefix(v.Name, tfgraph.BasePrefix+"/")
		write(filepath.Join("after", strings.ReplaceAll(names[node], "/", "__")+".npy"), []int64{int64(len(after[v.Name]))}, after[v.Name])
	}
	if err := os.Mkdir(filepath.Join(work, "relu"), 0o755); err != nil {
		t.Fatal(err)
	}
	for layer, v := range relus {
		write(filepath.Join("relu", layer+".npy"), v.shape, v.values)
	}
	out := filepath.Join(work, "out")
	testenv.RunPython(t, filepath.Join("testdata", "finetune_bn_reference.py"), filepath.Join(bbDir, "mnv2"),
		filepath.Join(work, "x.npy"), filepath.Join(work, "y.npy"), filepath.Join(work, "w.npy"), filepath.Join(work, "b.npy"),
		strings.Join(tuned, ","), fmt.Sprint(tfgraph.DefaultBNMomentum), filepath.Join(work, "after"), filepath.Join(work, "relu"), out)

	// The gradients go through the ReLU6s above the cut, whose inputs there
	// are batch-normalised: of order one, with ~10⁵ of them some within the
	// graphs' spread (~1e-5) of 0, where a ReLU6's gradient flips between
	// the two graphs (seen under TF_ENABLE_ONEDNN_OPTS=0: one element at
	// 9e-6 changed Conv_1's kernel gradient by 14%). Keras's ReLU6s above
	// the cut therefore pass gradients where tfcat's do (the reference's
	// relu directory); the number of elements where the activation patterns
	// differ is logged.
	flips := readNpy(t, filepath.Join(out, "relu_flips.npy"))
	if len(flips) != 1 || len(relus) == 0 {
		t.Fatalf("%d ReLU6 outputs from tfcat, flips %v from Python", len(relus), flips)
	}
	// Gradients: as TestFineTuneGradients, against Keras in training mode,
	// each relative to its largest value; a batch norm's beta relative to
	// its gamma's where that is larger. Beta's gradient, Σ dL/dy over
	// N·H·W, is zero where the layer's output reaches the cost only through
	// linear maps into batch norms in training mode, which subtract any
	// per-channel shift (block_16_project_BN, into Conv_1 and Conv_1_bn):
	// there both sides hold rounding noise of that sum, whose size gamma's
	// gradient (the same sum, each term times the normalised input, of
	// order one) gives.
	want := map[string][]float32{}
	for node := range got {
		want[names[node]] = readNpy(t, filepath.Join(out, "grads", strings.ReplaceAll(names[node], "/", "__")+".npy"))
	}
	worst, worstName := 0.0, ""
	for node, g := range got {
		name := names[node]
		w := want[name]
		if len(w) != len(g) {
			t.Fatalf("%s: %d values from Python, %d from tfcat", name, len(w), len(g))
		}
		scale := testenv.MaxAbs(w)
		if l, ok := strings.CutSuffix(name, "/beta"); ok {
			scale = max(scale, testenv.MaxAbs(want[l+"/gamma"]))
		}
		if d := testenv.MaxAbsDiff(g, w) / scale; math.IsNaN(d) || d > worst {
			worst, worstName = d, name
		}
	}
	// The bound, 1e-4 of each gradient's largest value, as in
	// TestFineTuneGradients. Measured here: 1.12e-5 (default kernels),
	// 1.06e-5 (ONEDNN_MAX_CPU_ISA=AVX2), 1.11e-5 (TF_ENABLE_ONEDNN_OPTS=0),
	// at a batch norm's gamma (a sum over 6x6 or 3x3 positions and the
	// batch): 9 times inside the bound.
	if !(worst <= 1e-4) {
		t.Errorf("gradients differ from Keras's (training=True) by %.3g of their largest value (%s)", worst, worstName)
	}

	// Moving statistics after one step: Keras's moving·m + batch·(1−m).
	// Their change from before the step is compared, relative to (1−m)
	// times the size of the layer's input (the largest batch variance's
	// root, or the largest batch mean where that is larger; batch = moving
	// + change/(1−m), from Python's): the batch statistics' spread between
	// the two graphs, as the features'. A batch mean can be zero up to
	// rounding (after a batch norm in training mode and a linear map), so
	// its own size is no scale. Plus the rounding of the update and of the
	// change: a float32 unit of the moving statistic on each side.
	mom := tfgraph.DefaultBNMomentum
	batchOf := func(name string, old []float32) []float32 {
		w := readNpy(t, filepath.Join(out, "moving", strings.ReplaceAll(name, "/", "__")+".npy"))
		b := make([]float32, len(w))
		for i := range w {
			b[i] = old[i] + (w[i]-old[i])/float32(1-mom)
		}
		return b
	}
	byName := map[string]*tfgraph.Variable{}
	for _, v := range m.BaseVars {
		byName[names[strings.TrimPrefix(v.Name, tfgraph.BasePrefix+"/")]] = v
	}
	worstMove, worstMoveName, moved, spread := 0.0, "", 0, 0.0
	for _, v := range m.BaseVars {
		node := strings.TrimPrefix(v.Name, tfgraph.BasePrefix+"/")
		name := names[node]
		d := testenv.MaxAbsDiff(before[v.Name], after[v.Name])
		if !strings.Contains(name, "/moving_") {
			continue
		}
		if !slices.Contains(m.TuneBN, layerOf[node]) {
			if d != 0 {
				t.Errorf("%s is below the cut and moved by %g", name, d)
			}
			continue
		}
		if d == 0 {
			t.Errorf("%s did not move", name)
			continue
		}
		moved++
		old := before[v.Name]
		batch := batchOf(name, old)
		mv := byName[layerOf[node]+"/moving_variance"]
		size := math.Sqrt(testenv.MaxAbs(batchOf(layerOf[node]+"/moving_variance", before[mv.Name])))
		if strings.HasSuffix(name, "/moving_variance") {
			size *= size
		} else {
			size = max(size, testenv.MaxAbs(batch))
		}
		dw, dg := make([]float32, len(old)), make([]float32, len(old))
		for i := range old {
			dw[i], dg[i] = float32(1-mom)*(batch[i]-old[i]), after[v.Name][i]-old[i]
		}
		scale := (1 - mom) * size
		e := testenv.MaxAbsDiff(dg, dw) / scale
		spread = max(spread, e)
		if b := bnSpread*testenv.SpreadHeadroom + 4*testenv.Unit*testenv.MaxAbs(old)/scale; e/b > worstMove {
			worstMove, worstMoveName = e/b, name
		}
	}
	if moved != 2*len(m.TuneBN) {
		t.Errorf("%d moving statistics moved; want %d", moved, 2*len(m.TuneBN))
	}
	if worstMove > 1 {
		t.Errorf("moving statistics moved unlike Keras's: %.3g times the bound (%s)", worstMove, worstMoveName)
	}

	// Predict after the step: Keras's training=False features with the
	// updated variables (as TestTransfer bounds them), and not the
	// training-mode ones.
	pred, train := readNpy(t, filepath.Join(out, "predict.npy")), readNpy(t, filepath.Join(out, "train.npy"))
	if len(pred) != len(feats) {
		t.Fatalf("%d features from Python, %d from tfcat", len(pred), len(feats))
	}
	scale := testenv.MaxAbs(pred)
	dF, dT := testenv.MaxAbsDiff(feats, pred)/scale, testenv.MaxAbsDiff(feats, train)/scale
	bound := transferFeatureSpread * testenv.SpreadHeadroom
	if dF > bound {
		t.Errorf("predict's features differ from Keras's inference-mode ones by %.3g of their largest value (bound %g)", dF, bound)
	}
	if dT <= bound {
		t.Errorf("predict's features are within %.3g of Keras's training-mode ones: the check cannot tell the modes apart", dT)
	}
	t.Logf("%d gradients: largest max|Δ|/max|g| %.3g (%s); %d moving statistics: %.3g of the bound (%s; spread %.3g); %g ReLU6 elements of %d layers on the other side of a kink in Keras; predict: %.3g (training mode: %.3g)",
		len(got), worst, worstName, moved, worstMove, worstMoveName, spread, flips[0], len(relus), dF, dT)
}

type tensorValues struct {
	shape  []int64
	values []float32
}

// reluOutputs returns the outputs of the ReLU6s on the training path's
// copy of the backbone for batch b (their activation pattern: the input is
// in (0, 6) where the output is), by Keras layer (the op's scope, as
// Keras 3 names it: "out_relu_1" for layer out_relu).
func reluOutputs(t *testing.T, s *tfsession.Session, b *pixels.Batch) map[string]tensorValues {
	t.Helper()
	var fetches []tf.Output
	var layers []string
	for _, o := range s.Model.Graph.Operations() {
		if o.Type() != "Relu6" || !strings.HasPrefix(o.Name(), "base_bn_train/") {
			continue
		}
		parts := strings.Split(o.Name(), "/")
		fetches, layers = append(fetches, o.Output(0)), append(layers, parts[len(parts)-2])
	}
	net := s.Model.Net
	x, err := tf.NewTensor(b.X)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Reshape([]int64{int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Raw().Run(map[tf.Output]*tf.Tensor{s.Model.X: x}, fetches, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tensorValues{}
	for i, r := range res {
		f, err := tfc.Float32s(r)
		if err != nil {
			t.Fatal(err)
		}
		out[layers[i]] = tensorValues{r.Shape(), slices.Clone(f)}
	}
	return out
}

// baseValues reads the backbone's variables (Session.VariableValues reads
// Model.Vars only).
func baseValues(t *testing.T, s *tfsession.Session) map[string][]float32 {
	t.Helper()
	vars := s.Model.BaseVars
	fetches := make([]tf.Output, len(vars))
	for i, v := range vars {
		fetches[i] = v.Read
	}
	out, err := s.Raw().Run(nil, fetches, nil)
	if err != nil {
		t.Fatal(err)
	}
	values := make(map[string][]float32, len(vars))
	for i, v := range vars {
		f, err := tfc.Float32s(out[i])
		if err != nil {
			t.Fatal(err)
		}
		values[v.Name] = slices.Clone(f)
	}
	return values
}

// bnSpread is the spread of the fine-tuned batch norms' batch statistics
// between tfcat's graph and Keras's, relative to the size of their input
// (TestFineTuneBN): measured 9.06e-6 under the default kernels and
// ONEDNN_MAX_CPU_ISA=AVX2, 9.2e-6 under TF_ENABLE_ONEDNN_OPTS=0, at a
// moving variance; of the order of the features' (transferFeatureSpread).
const bnSpread = 9.2e-6
