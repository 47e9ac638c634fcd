package grpcapi_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/tfsession"
)

// TestPythonClient: TensorFlow Serving's official Python client
// (tensorflow-serving-api, unmodified) calls Predict (a float tensor, encoded
// images, an output_filter), Classify, GetModelMetadata and GetModelStatus
// against the Go server. The probabilities equal the model's own for the
// same tensor, and tfcat predict's (its preprocessing of the same files) for
// the images, within 1e-6.
func TestPythonClient(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	srv, err := serving.New(m, serving.Config{Name: "pets", Version: 5, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gs := grpcapi.NewServer(serving.One(srv), grpcapi.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	defer gs.Stop()

	dir := t.TempDir()
	const n = 2
	size := side * side * 3
	x := testmodel.Images(n, size, 11)
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	tensorPath := filepath.Join(dir, "x.f32")
	files := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "b.jpg")}
	for path, data := range map[string][]byte{tensorPath: raw, files[0]: testmodel.PNG(t, 45, 37, 2), files[1]: hostile.Gradient(64, 48, 7)} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"testdata/tfs_client.py", ln.Addr().String(), "pets", tensorPath}
	for _, d := range []int{n, side, side, 3} {
		args = append(args, strconv.Itoa(d))
	}
	out := testenv.RunPython(t, append(args, files...)...)

	type info struct {
		Dtype string
		Shape []int64
	}
	var got struct {
		Predict       predictReply
		PredictImages predictReply `json:"predict_images"`
		Filtered      []string
		Classify      struct {
			Version int64
			Results [][]struct {
				Label string
				Score float32
			}
		}
		Metadata struct {
			Name            string
			Version         int64
			Signatures      []string
			Method          string
			Inputs, Outputs map[string]info
		}
		Status []struct {
			Version   int64
			State     string
			ErrorCode int `json:"error_code"`
		}
		Missing struct{ Code, Details string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("the client's output: %v\n%s", err, out)
	}
	// The tensor: the model's own probabilities.
	want, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	closeRows(t, "Predict of the tensor", got.Predict.Probabilities, rows(want, 3))
	checkReply(t, "Predict of the tensor", got.Predict, want)

	// The images: tfcat predict's preprocessing of the files, then the model.
	var xs []float32
	for _, f := range files {
		xi, err := dataset.PreprocessFileMode(f, side, 3, tfsession.ResizeModeOf(m))
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, xi...)
	}
	wantImages, err := m.Predict(xs, len(files))
	if err != nil {
		t.Fatal(err)
	}
	closeRows(t, "Predict of the images", got.PredictImages.Probabilities, rows(wantImages, 3))
	checkReply(t, "Predict of the images", got.PredictImages, wantImages)
	if fmt.Sprint(got.Filtered) != "[classes]" {
		t.Errorf("output_filter [classes] answered %v", got.Filtered)
	}

	var scores [][]float32
	for _, r := range got.Classify.Results {
		var row []float32
		for j, c := range r {
			if c.Label != classes[j] {
				t.Errorf("Classify: class %d labelled %q, want %q", j, c.Label, classes[j])
			}
			row = append(row, c.Score)
		}
		scores = append(scores, row)
	}
	closeRows(t, "Classify", scores, rows(wantImages, 3))
	if got.Classify.Version != 5 {
		t.Errorf("Classify answered version %d", got.Classify.Version)
	}

	md := got.Metadata
	wantInputs := map[string]info{"images": {"float32", []int64{-1, side, side, 3}}}
	wantOutputs := map[string]info{"probabilities": {"float32", []int64{-1, 3}}, "classes": {"int64", []int64{-1}}}
	if md.Name != "pets" || md.Version != 5 || fmt.Sprint(md.Signatures) != "[serving_default]" || md.Method != "tensorflow/serving/predict" ||
		!reflect.DeepEqual(md.Inputs, wantInputs) || !reflect.DeepEqual(md.Outputs, wantOutputs) {
		t.Errorf("metadata %+v", md)
	}
	if len(got.Status) != 1 || got.Status[0].Version != 5 || got.Status[0].State != "AVAILABLE" || got.Status[0].ErrorCode != 0 {
		t.Errorf("status %+v", got.Status)
	}
	if got.Missing.Code != "NOT_FOUND" || got.Missing.Details != "Servable not found for request: Latest(pets-missing)" {
		t.Errorf("an unknown model: %+v", got.Missing)
	}
}

// predictReply is a Predict reply as the Python client decodes it.
type predictReply struct {
	Probabilities [][]float32
	Classes       []int64
	Name          string
	Version       int64
	Signature     string
}

// checkReply checks a Predict reply's classes and model spec.
func checkReply(t *testing.T, what string, r predictReply, probs []float32) {
	t.Helper()
	for i, row := range rows(probs, 3) {
		if i >= len(r.Classes) || r.Classes[i] != int64(argmax(row)) {
			t.Errorf("%s: classes %v, want the argmax of %v", what, r.Classes, rows(probs, 3))
			break
		}
	}
	if r.Name != "pets" || r.Version != 5 || r.Signature != "serving_default" {
		t.Errorf("%s: model_spec %s, %d, %s", what, r.Name, r.Version, r.Signature)
	}
}
