package kserve_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/kserve"
	"github.com/tfcat/tfcat/tfsession"
)

// TestPythonClients: Triton's official Python clients, tritonclient.http and
// tritonclient.grpc (unmodified, in their default forms: binary tensor data
// over REST, raw contents over gRPC; over REST also JSON data), call
// is_server_live, is_server_ready, is_model_ready, get_server_metadata,
// get_model_metadata and infer against the Go server. The probabilities of a
// float tensor equal the model's own for it and the v1 REST API's; those of
// encoded image files equal tfcat predict's (its preprocessing of the same
// files, then the model) and the v1 REST API's for the same images — all
// within 1e-6.
func TestPythonClients(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{Name: "pets", Version: 5}, kserve.Options{ServerVersion: "9.9.9"})

	dir := t.TempDir()
	const n = 2
	size := side * side * 3
	x := testmodel.Images(n, size, 11)
	tensorPath := filepath.Join(dir, "x.f32")
	files := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "b.jpg")}
	blobs := [][]byte{testmodel.PNG(t, 45, 37, 2), hostile.Gradient(64, 48, 7)}
	for path, data := range map[string][]byte{tensorPath: rawFloats(x), files[0]: blobs[0], files[1]: blobs[1]} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"testdata/triton_client.py", strings.TrimPrefix(s.url, "http://"), s.grpc, "pets", "5", tensorPath}
	for _, d := range []int{n, side, side, 3} {
		args = append(args, strconv.Itoa(d))
	}
	out := testenv.RunPython(t, append(args, files...)...)

	type reply struct {
		Probabilities [][]float32
		Classes       []int64
		Version       string
		ID            string
	}
	type tensor struct {
		Name, Datatype string
		Shape          []int64
	}
	type meta struct {
		Name            string
		Versions        []string
		Platform        string
		Inputs, Outputs []tensor
	}
	type results struct {
		Live, Ready     bool
		ModelReady      bool `json:"model_ready"`
		VersionReady    bool `json:"version_ready"`
		MissingReady    bool `json:"missing_ready"`
		Metadata        meta
		VersionMetadata meta `json:"version_metadata"`
		Server          struct {
			Name, Version string
			Extensions    []string
		}
		Tensor, Images reply
		TensorJSON     *reply `json:"tensor_json"`
		Missing        struct{ Status, Message string }
	}
	var got struct{ HTTP, GRPC results }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("the clients' output: %v\n%s", err, out)
	}

	// The tensor: the model's own probabilities, and v1 REST's.
	want, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	var inst []string
	for i := range n {
		inst = append(inst, string(serving.AppendTensorJSON(nil, x[i*size:(i+1)*size], side, side, 3)))
	}
	rest := restPredict(t, s.url, inst)
	// The images: tfcat predict's preprocessing of the files, then the
	// model; and v1 REST's for the same bytes.
	var xs []float32
	inst = inst[:0]
	for i, f := range files {
		xi, err := dataset.PreprocessFileMode(f, side, 3, tfsession.ResizeModeOf(m))
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, xi...)
		inst = append(inst, `{"b64":"`+b64(blobs[i])+`"}`)
	}
	wantImages, err := m.Predict(xs, len(files))
	if err != nil {
		t.Fatal(err)
	}
	restImages := restPredict(t, s.url, inst)

	wantMeta := meta{Name: "pets", Versions: []string{"5"}, Platform: "tensorflow",
		Inputs:  []tensor{{"images", "FP32", []int64{-1, side, side, 3}}},
		Outputs: []tensor{{"probabilities", "FP32", []int64{-1, 3}}, {"classes", "INT64", []int64{-1}}}}
	for _, c := range []struct {
		name    string
		r       results
		missing string
	}{{"http", got.HTTP, "404"}, {"grpc", got.GRPC, "StatusCode.NOT_FOUND"}} {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			if !r.Live || !r.Ready || !r.ModelReady || !r.VersionReady || r.MissingReady {
				t.Errorf("live %v, ready %v, model ready %v, version ready %v, missing model ready %v", r.Live, r.Ready, r.ModelReady, r.VersionReady, r.MissingReady)
			}
			if !reflect.DeepEqual(r.Metadata, wantMeta) || !reflect.DeepEqual(r.VersionMetadata, wantMeta) {
				t.Errorf("metadata %+v, of version 5 %+v; want %+v", r.Metadata, r.VersionMetadata, wantMeta)
			}
			if r.Server.Name != "tfcat" || r.Server.Version != "9.9.9" || !slices.Equal(r.Server.Extensions, kserve.Extensions) {
				t.Errorf("server metadata %+v", r.Server)
			}
			check := func(what string, got reply, id string, want, rest []float32) {
				t.Helper()
				flat := slices.Concat(got.Probabilities...)
				closeTo(t, what+" against the model", flat, want)
				closeTo(t, what+" against v1 REST", flat, rest)
				if len(got.Probabilities) != len(want)/3 || !slices.Equal(got.Classes, argmaxes(want, 3)) {
					t.Errorf("%s: %d rows, classes %v; want %d, %v", what, len(got.Probabilities), got.Classes, len(want)/3, argmaxes(want, 3))
				}
				if got.Version != "5" || got.ID != id {
					t.Errorf("%s: version %q, id %q", what, got.Version, got.ID)
				}
			}
			check("the tensor", r.Tensor, "t1", want, rest)
			check("the images", r.Images, "i1", wantImages, restImages)
			if c.name == "http" {
				if r.TensorJSON == nil {
					t.Fatal("no JSON-data reply")
				}
				check("the tensor in JSON", *r.TensorJSON, "", want, rest)
			}
			if r.Missing.Status != c.missing || !strings.Contains(r.Missing.Message, "Servable not found for request: Latest(pets-missing)") {
				t.Errorf("an unknown model: %+v", r.Missing)
			}
		})
	}
}
