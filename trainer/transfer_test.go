package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfgraph"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output, as off tfcat's
)

var (
	backbonesOnce sync.Once
	backbonesDir  string
)

// backbones writes (once per test binary) the SavedModels of
// testdata/backbones.py: a Keras MobileNetV2 and the bad backbones.
func backbones(t testing.TB) string {
	t.Helper()
	backbonesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tfcat-backbones-")
		if err != nil {
			t.Fatal(err)
		}
		testenv.RunPython(t, filepath.Join("testdata", "backbones.py"), dir)
		backbonesDir = dir
	})
	if backbonesDir == "" {
		t.Fatal("the backbones were not written")
	}
	return backbonesDir
}

func TestMain(m *testing.M) {
	code := testenv.RequirePython(m).Run()
	if backbonesDir != "" {
		os.RemoveAll(backbonesDir)
	}
	os.Exit(code)
}

// mnv2 is the Keras MobileNetV2's preprocessing: RGB, [-1, 1].
func mnv2(dir string) *Base {
	return &Base{Path: filepath.Join(dir, "mnv2"), Channels: "rgb", Scale: "-1,1"}
}

// TestTransfer trains a head on a Keras MobileNetV2 and checks it against
// Python: the backbone's features, the exported model's probabilities; and
// that predict, eval, export and serve take the result like any model.
func TestTransfer(t *testing.T) {
	bbDir := backbones(t)
	data := t.TempDir()
	if err := testenv.WriteClassFolders(data, []string{"dark", "light"}, 12, 40); err != nil {
		t.Fatal(err)
	}
	modelDir := filepath.Join(t.TempDir(), "m")
	var losses []float32
	opt := Options{Data: data, Validation: 0.25, Seed: 1, BatchSize: 6, Epochs: 6, LearningRate: 1e-2,
		ModelDir: modelDir, Base: mnv2(bbDir), Session: tfgraph.SessionConfig{Device: tfgraph.DeviceCPU},
		OnEvent: func(e Event) error {
			if e.Kind == Step {
				losses = append(losses, e.Loss)
			}
			return nil
		}}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(losses); n < 6 || !(losses[n-1] < losses[0]/2) {
		t.Errorf("the head did not learn: losses %v", losses)
	}

	// The checkpoint needs nothing from the backbone's folder.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(filepath.Join(bbDir, "mnv2"), moved); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(moved, filepath.Join(bbDir, "mnv2"))

	ckpt, err := model.Open(res.Checkpoint, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	if h, w, c := ckpt.InputSize(); h != 96 || w != 96 || c != 3 {
		t.Fatalf("input size %dx%dx%d, want the backbone's 96x96x3", h, w, c)
	}
	ev, err := ckpt.Evaluate(data, model.EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy < 0.9 {
		t.Errorf("accuracy on the training folder %.2f", ev.Accuracy)
	}

	exp := filepath.Join(t.TempDir(), "export")
	if _, err := savedmodel.Export(res.Checkpoint, exp, savedmodel.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	sm, err := model.Open(exp, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()

	files, _ := filepath.Glob(filepath.Join(data, "*", "*.png"))
	files = files[:8]
	x := make([]float32, 0, len(files)*96*96*3)
	for _, f := range files {
		img, err := dataset.PreprocessFile(f, 96, 3)
		if err != nil {
			t.Fatal(err)
		}
		x = append(x, img...)
	}
	pc, err := ckpt.Predict(x, len(files))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := sm.Predict(x, len(files))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(pc, ps); d > 1e-6 {
		t.Errorf("checkpoint and export differ by %g", d)
	}

	// tfcat's features, from the backbone as the trainer loads it.
	if err := os.Rename(moved, filepath.Join(bbDir, "mnv2")); err != nil {
		t.Fatal(err)
	}
	feats := backboneFeatures(t, mnv2(bbDir), x, len(files))

	work := t.TempDir()
	if err := npy.WriteFile(filepath.Join(work, "x.npy"), []int{len(files), 96, 96, 3}, x); err != nil {
		t.Fatal(err)
	}
	testenv.RunPython(t, filepath.Join("testdata", "transfer_reference.py"), filepath.Join(bbDir, "mnv2"), exp, filepath.Join(work, "x.npy"), work)
	pyFeats := readNpy(t, filepath.Join(work, "features.npy"))
	pyProbs := readNpy(t, filepath.Join(work, "probabilities.npy"))
	if len(pyFeats) != len(feats) || len(feats) == 0 {
		t.Fatalf("%d features from Python, %d from tfcat", len(pyFeats), len(feats))
	}
	if d := maxDiff(feats, pyFeats); d > 1e-5 {
		t.Errorf("features differ from Python's by %g", d)
	}
	if d := maxDiff(ps, pyProbs); d > 1e-6 {
		t.Errorf("the export's probabilities differ from Python's by %g", d)
	}
	t.Logf("features: max |tfcat − Python| %g over %d values; probabilities: %g", maxDiff(feats, pyFeats), len(feats), maxDiff(ps, pyProbs))

	// serve: a b64 image through the exported model.
	srv, err := serving.New(sm, serving.Config{})
	if err != nil {
		t.Fatal(err)
	}
	png, _ := os.ReadFile(files[0])
	body, _ := json.Marshal(map[string]any{"instances": []any{map[string]any{"b64": png}}})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/models/"+serving.DefaultName+":predict", bytes.NewReader(body)))
	var out struct{ Predictions []map[string]any }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Predictions) != 1 {
		t.Fatalf("serve: %d %s", rec.Code, rec.Body.String())
	}
}

// backboneFeatures is the features tfcat's graph computes for x with the
// backbone as Train loads it.
func backboneFeatures(t *testing.T, b *Base, x []float32, n int) []float32 {
	t.Helper()
	r := &run{opt: Options{Base: b}}
	if err := r.openBase(); err != nil {
		t.Fatal(err)
	}
	net := tfgraph.Tutorial(2).WithInput(96, 96, 3)
	net.Conv, net.FC, net.Base = nil, 0, r.base
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Base: r.backbone, InferenceOnly: true})
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
	f, err := s.Features(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readNpy(t *testing.T, path string) []float32 {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := a.Float64s()
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestBadBackbones refuses each SavedModel that cannot serve as a backbone
// with one line naming it and what is wrong.
func TestBadBackbones(t *testing.T) {
	dir := backbones(t)
	empty := t.TempDir()
	for _, c := range []struct {
		name string
		path string
		opt  savedmodel.BackboneOptions
		want string
	}{
		{"not a SavedModel", empty, savedmodel.BackboneOptions{}, "not a SavedModel"},
		{"no serving signature", filepath.Join(dir, "nosig"), savedmodel.BackboneOptions{}, "no serving signature"},
		{"rank 3 input", filepath.Join(dir, "rank3"), savedmodel.BackboneOptions{}, "[batch, height, width, channels]"},
		{"int input", filepath.Join(dir, "int"), savedmodel.BackboneOptions{}, "tfcat feeds float32 images"},
		{"two channels", filepath.Join(dir, "channels2"), savedmodel.BackboneOptions{}, "has 2 channels"},
		{"output not features", filepath.Join(dir, "rank4out"), savedmodel.BackboneOptions{}, "features are [batch, features]"},
		{"size does not fit", filepath.Join(dir, "mnv2"), savedmodel.BackboneOptions{Size: 64}, "takes 96x96 images, not the 64x64"},
		{"several outputs", filepath.Join(dir, "two"), savedmodel.BackboneOptions{}, "choose the features"},
		{"unknown output", filepath.Join(dir, "two"), savedmodel.BackboneOptions{Output: "c"}, `no output "c"`},
		{"WriteFile", filepath.Join(dir, "writefile"), savedmodel.BackboneOptions{}, "WriteFile"},
		{"any size, none given", filepath.Join(dir, "anysize"), savedmodel.BackboneOptions{}, "takes images of any size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := savedmodel.OpenBackbone(c.path, c.opt)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, c.path) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, c.path, c.want)
			}
		})
	}
	// The file-writing backbone passes only when trusted, and fails Train
	// as an untrusted graph.
	wf := filepath.Join(dir, "writefile")
	if _, err := savedmodel.OpenBackbone(wf, savedmodel.BackboneOptions{Trust: true}); err != nil {
		t.Errorf("trusted: %v", err)
	}
	_, err := Train(context.Background(), Options{Data: t.TempDir(), Base: &Base{Path: wf}})
	if !errors.Is(err, tfgraph.ErrUntrustedGraph) {
		t.Errorf("Train on a WriteFile backbone: %v, want ErrUntrustedGraph", err)
	}
	if _, err := savedmodel.OpenBackbone(filepath.Join(dir, "two"), savedmodel.BackboneOptions{Output: "b"}); err != nil {
		t.Errorf("output b of two: %v", err)
	}
	if bb, err := savedmodel.OpenBackbone(filepath.Join(dir, "anysize"), savedmodel.BackboneOptions{Size: 40}); err != nil || bb.Height != 40 || bb.Features != 3 {
		t.Errorf("any size at 40: %+v, %v", bb, err)
	}
}
