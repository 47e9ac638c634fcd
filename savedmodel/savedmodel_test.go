package savedmodel

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/internal/testfault"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

var cpu = tfsession.SessionConfig{Device: tfsession.DeviceCPU, IntraOpThreads: 2, InterOpThreads: 1}

// small is the tutorial's network on 28×28 grey images.
func small(classes int) network.Network { return network.Tutorial(classes).WithInput(28, 28, 1) }

// saveCheckpoint saves a freshly initialised model of net with the given
// class names and returns its folder.
func saveCheckpoint(t testing.TB, net network.Network, classes []string) string {
	t.Helper()
	return testmodel.Checkpoint(t, net, testmodel.Options{Seed: 1, Session: cpu, Classes: classes, Step: 7})
}

// images returns n random images of the given size, values in [0, 1).
func images(n, h, w, c int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*h*w*c)
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// exportSource is the checkpoint tfcat's export reads: ckpt, or under
// TFCAT_TEST_FAULT=step a copy with one variable from the next training step
// (internal/testfault), which the comparisons with ckpt must catch.
func exportSource(t *testing.T, ckpt string, net network.Network) string {
	t.Helper()
	prefix, err := checkpoint.Resolve(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	x := images(2, net.Height, net.Width, net.Channels, 9)
	p, err := testfault.Checkpoint(prefix, t.TempDir(), x, 2)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkpointPredict is what tfcat predict returns for a checkpoint: its .meta
// imported, as predict.py does.
func checkpointPredict(t *testing.T, ckpt string, x []float32, n int) []float32 {
	t.Helper()
	prefix, err := checkpoint.Resolve(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	im, err := tfsession.ImportCheckpoint(prefix, tfsession.ImportOptions{Session: cpu})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	p, err := im.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExportLoadsInGo(t *testing.T) {
	ckpt := saveCheckpoint(t, small(3), []string{"cat", "dog", "bird"})
	out := filepath.Join(t.TempDir(), "export")
	info, err := Export(exportSource(t, ckpt, small(3)), out, ExportOptions{Session: cpu})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ModelFile, "variables/variables.index", "variables/variables.data-00000-of-00001", "assets/classes.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("export lacks %s: %v", f, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(out, "assets/classes.txt")); string(got) != "cat\ndog\nbird\n" {
		t.Errorf("classes.txt = %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("the export left %d entries beside it", len(entries)-1)
	}
	if !slices.Equal(info.Classes, []string{"cat", "dog", "bird"}) || info.Height != 28 || info.Width != 28 || info.Channels != 1 ||
		info.NumClasses != 3 || !info.Tfcat || info.Step != 7 || info.Network == nil || !slices.Equal(info.Tags, []string{Tag}) ||
		!slices.Equal(info.Signatures, []string{SignatureKey}) || len(info.Variables) != 10 {
		t.Errorf("info %+v", info)
	}

	// The graph is the inference graph only: no optimizer, labels or cost.
	sm, err := checkpoint.ReadSavedModel(out)
	if err != nil {
		t.Fatal(err)
	}
	meta := sm.MetaGraphs[0]
	for _, n := range meta.GraphDef.Node {
		if n.Op == "ApplyAdam" || n.Name == network.LabelsName || n.Name == network.CostName || strings.HasPrefix(n.Name, "Adam") {
			t.Errorf("the export holds %s (%s)", n.Name, n.Op)
		}
	}
	var ops []string
	for _, op := range meta.MetaInfoDef.StrippedOpList.Op {
		ops = append(ops, op.Name)
	}
	wantOps := []string{"AddV2", "ArgMax", "AssignVariableOp", "Const", "Conv2D", "Identity", "MatMul", "MaxPool", "Mul", "NoOp",
		"Placeholder", "PlaceholderWithDefault", "ReadVariableOp", "Relu", "Reshape", "RestoreV2", "SaveV2", "Softmax", "TruncatedNormal", "VarHandleOp"}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("stripped op list %v, want %v", ops, wantOps)
	}
	// Resource variables, which TF2's loader turns into tf.Variables.
	for _, b := range meta.CollectionDef["variables"].GetBytesList().GetValue() {
		vd := &varpb.VariableDef{}
		if err := proto.Unmarshal(b, vd); err != nil || !vd.IsResource {
			t.Errorf("variable %v is not a resource variable (%v)", vd, err)
		}
	}
	if meta.MetaInfoDef.TensorflowVersion != tfsession.RuntimeVersion() || meta.SaverDef.RestoreOpName != tfgraph.SaverRestoreOp {
		t.Errorf("meta info %v, saver %v", meta.MetaInfoDef.TensorflowVersion, meta.SaverDef)
	}

	m, err := Load(out, cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var _ tfsession.Classifier = m
	if h, w, c := m.InputSize(); h != 28 || w != 28 || c != 1 || m.NumClasses() != 3 {
		t.Errorf("loaded %dx%dx%d, %d classes", h, w, c, m.NumClasses())
	}
	if !slices.Equal(m.Classes(), []string{"cat", "dog", "bird"}) {
		t.Errorf("classes %v", m.Classes())
	}
	const n = 5
	x := images(n, 28, 28, 1, 1)
	got, err := m.Predict(testenv.FaultInput(x, 1), n)
	if err != nil {
		t.Fatal(err)
	}
	// The same forward graph from the checkpoint and from the SavedModel:
	// equal bits on every kernel family measured; a few ulps allowed.
	want := checkpointPredict(t, ckpt, x, n)
	if d := testenv.MaxAbsDiff(got, want); d > testenv.SameGraphProb {
		t.Errorf("the SavedModel's probabilities differ from the checkpoint's by %g", d)
	} else {
		t.Logf("Go SavedModel vs checkpoint: max |Δp| = %g", d)
	}
	vars, err := m.Variables()
	if err != nil || len(vars) != 10 {
		t.Errorf("variables: %d, %v", len(vars), err)
	}
	if _, err := m.Predict(x, n+1); err == nil {
		t.Error("predict with too few values succeeded")
	}
	m.Close()
	if _, err := m.Predict(x, 1); err == nil {
		t.Error("predict after close succeeded")
	}
}

func TestExportClassNames(t *testing.T) {
	ckpt := saveCheckpoint(t, small(2), nil)
	for _, tc := range []struct {
		name    string
		classes []string
		want    []string
		err     string
	}{
		{"numbered", nil, []string{"0", "1"}, ""},
		{"given", []string{"tshirt", "trouser"}, []string{"tshirt", "trouser"}, ""},
		{"count", []string{"a", "b", "c"}, nil, "3 class names given, but the model has 2"},
		{"newline", []string{"a\nb", "c"}, nil, "on one line"},
		{"blank", []string{" ", "c"}, nil, "non-blank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "m")
			info, err := Export(ckpt, out, ExportOptions{Classes: tc.classes, Session: cpu})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if entries, _ := os.ReadDir(parent); len(entries) != 0 {
					t.Errorf("a failed export left %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Classes, tc.want) {
				t.Errorf("classes %v, want %v", info.Classes, tc.want)
			}
		})
	}
}

func TestExportRefusesToOverwrite(t *testing.T) {
	ckpt := saveCheckpoint(t, small(2), []string{"a", "b"})
	parent := t.TempDir()

	// A folder that is not a SavedModel is never replaced.
	other := filepath.Join(parent, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("keep me"), 0o644)
	for _, force := range []bool{false, true} {
		if _, err := Export(ckpt, other, ExportOptions{Force: force, Session: cpu}); err == nil || !errors.Is(err, ErrExists) {
			t.Errorf("force=%v: err %v, want ErrExists", force, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(b) != "keep me" {
		t.Error("the folder was touched")
	}
	// A file is not a folder.
	file := filepath.Join(parent, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Export(ckpt, file, ExportOptions{Force: true, Session: cpu}); err == nil {
		t.Error("export over a file succeeded")
	}
	// An empty folder is used.
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Export(ckpt, empty, ExportOptions{Session: cpu}); err != nil {
		t.Fatal(err)
	}
	// An existing SavedModel needs Force, then is replaced.
	if _, err := Export(ckpt, empty, ExportOptions{Classes: []string{"x", "y"}, Session: cpu}); !errors.Is(err, ErrExists) {
		t.Errorf("second export: err %v, want ErrExists", err)
	}
	info, err := Export(ckpt, empty, ExportOptions{Classes: []string{"x", "y"}, Force: true, Session: cpu})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Classes, []string{"x", "y"}) {
		t.Errorf("forced export has classes %v", info.Classes)
	}
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"empty", "file", "other"}) {
		t.Errorf("the parent holds %v", names)
	}
}

func TestExportBadCheckpoints(t *testing.T) {
	ckpt := saveCheckpoint(t, small(2), nil)
	noMeta := t.TempDir()
	for _, f := range []string{"dogs-cats-model.index", "dogs-cats-model.data-00000-of-00001"} {
		b, _ := os.ReadFile(filepath.Join(ckpt, f))
		os.WriteFile(filepath.Join(noMeta, f), b, 0o644)
	}
	truncated := t.TempDir()
	for _, f := range []string{"dogs-cats-model.index", "dogs-cats-model.meta", "dogs-cats-model.data-00000-of-00001"} {
		b, _ := os.ReadFile(filepath.Join(ckpt, f))
		if strings.HasSuffix(f, "data-00000-of-00001") {
			b = b[:len(b)/2]
		}
		os.WriteFile(filepath.Join(truncated, f), b, 0o644)
	}
	for _, tc := range []struct{ name, path, err string }{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no checkpoint here"},
		{"no meta", filepath.Join(noMeta, "dogs-cats-model"), "needs the checkpoint's .meta"},
		{"truncated data", filepath.Join(truncated, "dogs-cats-model"), "restoring variables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := Export(tc.path, filepath.Join(parent, "out"), ExportOptions{Session: cpu})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("a failed export left %v", entries)
			}
		})
	}
}

func TestLoadRefusesUnknownOps(t *testing.T) {
	ckpt := saveCheckpoint(t, small(2), nil)
	out := filepath.Join(t.TempDir(), "m")
	if _, err := Export(ckpt, out, ExportOptions{Session: cpu}); err != nil {
		t.Fatal(err)
	}
	// Make the prediction depend on a node that writes a file.
	sm, err := checkpoint.ReadSavedModel(out)
	if err != nil {
		t.Fatal(err)
	}
	gd := sm.MetaGraphs[0].GraphDef
	gd.Node = append(gd.Node, &nodepb.NodeDef{Name: "evil", Op: "WriteFile", Input: []string{"class_names_asset", "class_names_asset"}})
	for _, n := range gd.Node {
		if n.Name == network.PredictionName {
			n.Input = append(n.Input, "^evil")
		}
	}
	b, _ := proto.Marshal(sm)
	os.WriteFile(filepath.Join(out, ModelFile), b, 0o644)
	if _, err := Load(out, cpu); err == nil || !strings.Contains(err.Error(), "WriteFile") {
		t.Errorf("load of a graph with WriteFile: %v", err)
	}

	// Not SavedModels at all.
	if IsSavedModel(ckpt) || !IsSavedModel(out) {
		t.Error("IsSavedModel is wrong")
	}
	if _, err := Load(ckpt, cpu); err == nil {
		t.Error("a checkpoint folder loads as a SavedModel")
	}
	os.WriteFile(filepath.Join(out, ModelFile), []byte("garbage"), 0o644)
	if _, err := Load(out, cpu); err == nil || !strings.Contains(err.Error(), "not a SavedModel") {
		t.Errorf("garbage saved_model.pb: %v", err)
	}
}

// TestPythonLoadsExport is the acceptance check: both of Python's loaders load
// the export, its serving_default signature returns what tfcat predicts, and
// saved_model_cli lists the signature.
func TestPythonLoadsExport(t *testing.T) {
	net := network.Tutorial(2) // the tutorial's own 128×128×3 network
	ckpt := saveCheckpoint(t, net, []string{"cats", "dogs"})
	out := filepath.Join(t.TempDir(), "export")
	if _, err := Export(exportSource(t, ckpt, net), out, ExportOptions{Session: cpu}); err != nil {
		t.Fatal(err)
	}
	const n = 6
	x := images(n, 128, 128, 3, 2)
	tmp := t.TempDir()
	xPath := filepath.Join(tmp, "x.npy")
	if err := npy.WriteFile(xPath, []int{n, 128, 128, 3}, x); err != nil {
		t.Fatal(err)
	}
	report := testenv.RunPython(t, "testdata/reference.py", "load", out, xPath, filepath.Join(tmp, "py_"))
	var r struct {
		Classes   []string          `json:"classes"`
		Variables []string          `json:"v2_variables"`
		V2Inputs  []string          `json:"v2_inputs"`
		V2Outputs []string          `json:"v2_outputs"`
		V1Tensors map[string]string `json:"v1_tensors"`
		V1Method  string            `json:"v1_method"`
		V1Assets  []string          `json:"v1_assets"`
	}
	if err := json.Unmarshal([]byte(lastLine(report)), &r); err != nil {
		t.Fatalf("python report %q: %v", report, err)
	}
	if !slices.Equal(r.Classes, []string{"cats", "dogs"}) || !slices.Equal(r.V2Inputs, []string{"images"}) ||
		!slices.Equal(r.V2Outputs, []string{"classes", "probabilities"}) || r.V1Method != PredictMethod ||
		r.V1Tensors["images"] != "x:0" || r.V1Tensors["probabilities"] != "y_pred:0" || r.V1Tensors["classes"] != "y_pred_cls:0" ||
		!slices.Equal(r.V1Assets, []string{"classes.txt"}) || len(r.Variables) != 10 || r.Variables[0] != "Variable:0" {
		t.Errorf("python report %+v", r)
	}

	want := checkpointPredict(t, ckpt, x, n) // tfcat predict on the checkpoint
	m, err := Load(out, cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	goSM, err := m.Predict(testenv.FaultInput(x, 3), n)
	if err != nil {
		t.Fatal(err)
	}
	// The same forward graph everywhere below (Go's and Python's loaders of
	// the SavedModel, tfcat's checkpoint): a few ulps allowed.
	if d := testenv.MaxAbsDiff(goSM, want); d > testenv.SameGraphProb {
		t.Errorf("Go SavedModel vs tfcat predict: max |Δp| = %g", d)
	}
	for _, loader := range []string{"v2", "v1"} {
		probs, err := npy.ReadFile(filepath.Join(tmp, "py_"+loader+"_probabilities.npy"))
		if err != nil {
			t.Fatal(err)
		}
		classes, err := npy.ReadFile(filepath.Join(tmp, "py_"+loader+"_classes.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if d := testenv.MaxAbsDiff(probs.Float32, goSM); d > testenv.SameGraphProb {
			t.Errorf("Python %s loader: probabilities differ from tfcat predict by %g", loader, d)
		} else {
			t.Logf("Python %s loader vs tfcat predict: max |Δp| = %g over %d probabilities", loader, d, len(want))
		}
		for i := range n {
			k := 0
			if want[2*i+1] > want[2*i] {
				k = 1
			}
			if classes.Int64 == nil || classes.Int64[i] != int64(k) {
				t.Errorf("Python %s loader: classes %v (%s), want argmax %d at %d", loader, classes.Int64, classes.Dtype, k, i)
				break
			}
		}
	}

	cli := filepath.Join(filepath.Dir(testenv.Python(t)), "saved_model_cli")
	cmd := exec.Command(cli, "show", "--dir", out, "--all")
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	show, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("saved_model_cli show: %v\n%s", err, show)
	}
	for _, want := range []string{
		"signature_def['serving_default']", "inputs['images'] tensor_info", "outputs['probabilities'] tensor_info",
		"outputs['classes'] tensor_info", "name: x:0", "name: y_pred:0", "name: y_pred_cls:0", "shape: (-1, 128, 128, 3)",
		"dtype: DT_INT64", "Method name is: tensorflow/serving/predict",
	} {
		if !strings.Contains(string(show), want) {
			t.Errorf("saved_model_cli show --all lacks %q:\n%s", want, show)
		}
	}
}

// TestExportPythonCheckpoint exports a checkpoint Python's tutorial code
// wrote (no tfcat record: the network is inferred, classes given).
func TestExportPythonCheckpoint(t *testing.T) {
	tmp := t.TempDir()
	const n, size = 3, 32
	x := images(n, size, size, 3, 3)
	xPath := filepath.Join(tmp, "x.npy")
	if err := npy.WriteFile(xPath, []int{n, size, size, 3}, x); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(tmp, "py")
	testenv.RunPython(t, "testdata/reference.py", "checkpoint", ckpt, xPath, "--size", "32", "--channels", "3", "--classes", "2")
	out := filepath.Join(tmp, "export")
	info, err := Export(ckpt, out, ExportOptions{Classes: []string{"dogs", "cats"}, Session: cpu})
	if err != nil {
		t.Fatal(err)
	}
	if info.Height != size || info.Channels != 3 || !slices.Equal(info.Classes, []string{"dogs", "cats"}) {
		t.Errorf("info %+v", info)
	}
	m, err := Load(out, cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := m.Predict(testenv.FaultInput(x, 3), n)
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFile(filepath.Join(ckpt, "probe_pred.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// Python's graph and tfcat's export of it: the same forward operations.
	if d := testenv.MaxAbsDiff(got, want.Float32); d > testenv.SameGraphProb {
		t.Errorf("export of Python's checkpoint differs from Python's y_pred by %g", d)
	} else {
		t.Logf("export of a Python checkpoint vs Python's y_pred: max |Δp| = %g", d)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
