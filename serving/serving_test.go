package serving

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/tfsession"
)

const side = 28 // the test model takes 28×28 grey images

// start serves m over real HTTP on loopback.
func start(t testing.TB, m tfsession.Classifier, cfg Config) (*Server, string) {
	t.Helper()
	srv, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return srv, hs.URL
}

// tensorJSON writes one image as a nested [h][w][c] list.
func tensorJSON(x []float32, h, w, c int) string { return string(AppendTensorJSON(nil, x, h, w, c)) }

func listJSON(items ...string) string { return "[" + strings.Join(items, ",") + "]" }

// pngImage encodes a w×h grey gradient.
func pngImage(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8(x*7+y*3) + seed})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64JSON(data []byte) string {
	return `{"b64":"` + base64.StdEncoding.EncodeToString(data) + `"}`
}

type reply struct {
	code    int
	ctype   string
	allow   string
	body    []byte
	decoded map[string]any
}

func do(t testing.TB, method, url, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{code: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), allow: resp.Header.Get("Allow"), body: b}
	if err := json.Unmarshal(b, &r.decoded); err != nil {
		t.Errorf("%s %s: the reply is not a JSON object: %v: %.200s", method, url, err, b)
	}
	return r
}

// want is what a correct reply holds for the images in x.
func want(t testing.TB, m tfsession.Classifier, x []float32, n int) ([][]float64, []float64) {
	t.Helper()
	p, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	k := m.NumClasses()
	probs := make([][]float64, n)
	classes := make([]float64, n)
	for i := range n {
		for _, v := range p[i*k : (i+1)*k] {
			probs[i] = append(probs[i], float64(v))
		}
		classes[i] = float64(metrics.ArgMax(p[i*k : (i+1)*k]))
	}
	return probs, classes
}

func asProbs(t testing.TB, v any) [][]float64 {
	t.Helper()
	rows, ok := v.([]any)
	if !ok {
		t.Fatalf("probabilities are %T, not a list", v)
	}
	out := make([][]float64, len(rows))
	for i, r := range rows {
		cols, ok := r.([]any)
		if !ok {
			t.Fatalf("probability row %d is %T", i, r)
		}
		for _, c := range cols {
			out[i] = append(out[i], c.(float64))
		}
	}
	return out
}

func asFloats(t testing.TB, v any) []float64 {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%T is not a list", v)
	}
	out := make([]float64, len(l))
	for i, e := range l {
		out[i] = e.(float64)
	}
	return out
}

func sameProbs(a, b [][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			// Shortest float32 formatting reads back exactly.
			if float32(a[i][j]) != float32(b[i][j]) {
				return false
			}
		}
	}
	return true
}

func TestPredict(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	_, url := start(t, m, Config{Name: "cats", Classes: []string{"a", "b", "c"}})
	const size = side * side
	x := testmodel.Images(3, size, 1)
	t0, t1, t2 := tensorJSON(x[:size], side, side, 1), tensorJSON(x[size:2*size], side, side, 1), tensorJSON(x[2*size:], side, side, 1)
	probs, classes := want(t, m, x, 3)

	img := pngImage(t, 40, 30, 0)
	pre, err := dataset.Preprocess(img, side, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgProbs, imgClasses := want(t, m, pre, 1)
	mixed := append(append([]float32{}, x[:size]...), pre...)
	mixedProbs, mixedClasses := want(t, m, mixed, 2)

	predict := url + "/v1/models/cats:predict"
	for _, tc := range []struct {
		name, url, body string
		columnar        bool
		outputs         []string
		probs           [][]float64
		classes         []float64
	}{
		{"row", predict, `{"instances": ` + listJSON(t0, t1, t2) + `}`, false, nil, probs, classes},
		{"row named", predict, `{"instances": [{"images": ` + t0 + `}, {"images": ` + t1 + `}, {"images": ` + t2 + `}]}`, false, nil, probs, classes},
		{"row with signature", predict, `{"signature_name": "serving_default", "instances": ` + listJSON(t0, t1, t2) + `}`, false, nil, probs, classes},
		{"versioned", url + "/v1/models/cats/versions/1:predict", `{"instances": ` + listJSON(t0, t1, t2) + `}`, false, nil, probs, classes},
		{"columnar", predict, `{"inputs": ` + listJSON(t0, t1, t2) + `}`, true, nil, probs, classes},
		{"columnar named", predict, `{"inputs": {"images": ` + listJSON(t0, t1, t2) + `}}`, true, nil, probs, classes},
		{"row b64", predict, `{"instances": [` + b64JSON(img) + `]}`, false, nil, imgProbs, imgClasses},
		{"row b64 named", predict, `{"instances": [{"images": ` + b64JSON(img) + `}]}`, false, nil, imgProbs, imgClasses},
		{"row mixed", predict, `{"instances": [` + t0 + `,` + b64JSON(img) + `]}`, false, nil, mixedProbs, mixedClasses},
		{"columnar b64", predict, `{"inputs": ` + b64JSON(img) + `}`, true, nil, imgProbs, imgClasses},
		{"columnar b64 named", predict, `{"inputs": {"images": [` + b64JSON(img) + `]}}`, true, nil, imgProbs, imgClasses},
		{"row classes only", predict, `{"instances": ` + listJSON(t0, t1, t2) + `, "output_filter": ["classes"]}`, false, []string{"classes"}, nil, classes},
		{"row probabilities only", predict, `{"instances": ` + listJSON(t0, t1, t2) + `, "output_filter": ["probabilities"]}`, false, []string{"probabilities"}, probs, nil},
		{"columnar probabilities only", predict, `{"inputs": ` + listJSON(t0, t1, t2) + `, "output_filter": ["probabilities"]}`, true, []string{"probabilities"}, probs, nil},
		{"unknown keys ignored", predict, `{"meta": {"a": [1, true, null]}, "instances": ` + listJSON(t0, t1, t2) + `}`, false, nil, probs, classes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodPost, tc.url, tc.body)
			if r.code != http.StatusOK || r.ctype != "application/json" {
				t.Fatalf("%d %s: %s", r.code, r.ctype, r.body)
			}
			var gotProbs [][]float64
			var gotClasses []float64
			switch {
			case tc.columnar && len(tc.outputs) == 1:
				gotProbs = asProbs(t, r.decoded["outputs"])
			case tc.columnar:
				out, ok := r.decoded["outputs"].(map[string]any)
				if !ok || len(out) != 2 {
					t.Fatalf("outputs: %s", r.body)
				}
				gotProbs, gotClasses = asProbs(t, out["probabilities"]), asFloats(t, out["classes"])
			case len(tc.outputs) == 1 && tc.outputs[0] == "classes":
				gotClasses = asFloats(t, r.decoded["predictions"])
			case len(tc.outputs) == 1:
				gotProbs = asProbs(t, r.decoded["predictions"])
			default:
				preds, ok := r.decoded["predictions"].([]any)
				if !ok {
					t.Fatalf("predictions: %s", r.body)
				}
				for _, p := range preds {
					obj, ok := p.(map[string]any)
					if !ok || len(obj) != 2 {
						t.Fatalf("prediction %v is not {probabilities, classes}", p)
					}
					gotProbs = append(gotProbs, asFloats(t, obj["probabilities"]))
					gotClasses = append(gotClasses, obj["classes"].(float64))
				}
			}
			if tc.probs != nil && !sameProbs(gotProbs, tc.probs) {
				t.Errorf("probabilities %v, want %v", gotProbs, tc.probs)
			}
			if tc.classes != nil && !slices.Equal(gotClasses, tc.classes) {
				t.Errorf("classes %v, want %v", gotClasses, tc.classes)
			}
		})
	}
}

func TestNaNAndInfinity(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	_, url := start(t, m, Config{})
	x := make([]float32, side*side)
	body := strings.Replace(tensorJSON(x, side, side, 1), "0", "NaN", 1)
	body = strings.Replace(body, "0", "Infinity", 1)
	body = strings.Replace(body, "0", "-Infinity", 1)
	r, err := parseRequest([]byte(`{"instances": [`+body+`]}`), side, side, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(r.x[0])) || !math.IsInf(float64(r.x[1]), 1) || !math.IsInf(float64(r.x[2]), -1) {
		t.Errorf("parsed %v", r.x[:3])
	}
	if r := do(t, "POST", url+"/v1/models/default:predict", `{"instances": [`+body+`]}`); r.code != 200 {
		t.Errorf("%d: %s", r.code, r.body)
	}
	if got := string(encodePredictions(true, []string{"probabilities"}, []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}, 1, 3)); got != `{"outputs":[[NaN,Infinity,-Infinity]]}` {
		t.Errorf("encoded %s", got)
	}
}

func TestErrors(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	_, url := start(t, m, Config{Name: "cats", MaxBodyBytes: 64 << 10, MaxInstances: 4})
	const size = side * side
	one := tensorJSON(testmodel.Images(1, size, 3), side, side, 1)
	predict := url + "/v1/models/cats:predict"
	short := tensorJSON(testmodel.Images(1, size, 3), side-1, side, 1)
	deep := regexp.MustCompile(`\[([-0-9.e]+)\]`).ReplaceAllString(one, "[[$1]]")
	flat := strings.ReplaceAll(strings.ReplaceAll(one, "[", ""), "]", "")
	for _, tc := range []struct {
		name, method, url, body string
		code                    int
		msg                     string
	}{
		{"malformed JSON", "POST", predict, `{"instances": [`, 400, "JSON Parse error"},
		{"not an object", "POST", predict, `[1, 2]`, 400, "must be a JSON object"},
		{"trailing garbage", "POST", predict, `{"instances": [` + one + `]} x`, 400, "after the request object"},
		{"empty body", "POST", predict, ``, 400, "JSON Parse error"},
		{"both formats", "POST", predict, `{"instances": [` + one + `], "inputs": [` + one + `]}`, 400, "both"},
		{"neither format", "POST", predict, `{"signature_name": "serving_default"}`, 400, "missing"},
		{"no instances", "POST", predict, `{"instances": []}`, 400, "no instances"},
		{"instances not a list", "POST", predict, `{"instances": 3}`, 400, "list of instances"},
		{"too few rows", "POST", predict, `{"instances": [` + short + `]}`, 400, "27 elements at depth 1, want 28"},
		{"too deep", "POST", predict, `{"instances": [` + deep + `]}`, 400, "instance 0"},
		{"flat", "POST", predict, `{"instances": [` + flat + `]}`, 400, "instance 0"},
		{"rank 4 columnar as instance", "POST", predict, `{"inputs": [[` + one + `]]}`, 400, "instance 0"},
		{"string values", "POST", predict, `{"instances": [[[["a"]]]]}`, 400, "expected a number"},
		{"unknown input", "POST", predict, `{"inputs": {"pixels": [` + one + `]}}`, 400, "unknown input"},
		{"unknown instance key", "POST", predict, `{"instances": [{"pixels": ` + one + `}]}`, 400, "unknown key"},
		{"two instance keys", "POST", predict, `{"instances": [{"b64": "AAAA", "x": 1}]}`, 400, "one key"},
		{"bad base64", "POST", predict, `{"instances": [{"b64": "!!!"}]}`, 400, "not base64"},
		{"not an image", "POST", predict, `{"instances": [{"b64": "` + base64.StdEncoding.EncodeToString([]byte("hello world")) + `"}]}`, 400, "decoding the b64 image"},
		{"too many instances", "POST", predict, `{"instances": [{"b64":"AA"},{"b64":"AA"},{"b64":"AA"},{"b64":"AA"},{"b64":"AA"}]}`, 400, "more than 4 instances"},
		{"duplicate key", "POST", predict, `{"instances": [` + one + `], "instances": [` + one + `]}`, 400, "twice"},
		{"unknown signature", "POST", predict, `{"signature_name": "other", "instances": [` + one + `]}`, 400, "not found in signature def"},
		{"unknown output", "POST", predict, `{"instances": [` + one + `], "output_filter": ["logits"]}`, 400, "alias not found"},
		{"oversized body", "POST", predict, `{"instances": [` + strings.Repeat(one+",", 20) + one + `]}`, 413, "exceeds the limit"},
		{"unknown model", "POST", url + "/v1/models/dogs:predict", `{"instances": [` + one + `]}`, 404, "Servable not found for request: Latest(dogs)"},
		{"unknown version", "POST", url + "/v1/models/cats/versions/2:predict", `{"instances": [` + one + `]}`, 404, "Specific(cats, 2)"},
		{"unknown label", "GET", url + "/v1/models/cats/labels/stable", ``, 404, "label"},
		{"unknown model status", "GET", url + "/v1/models/dogs", ``, 404, "Latest(dogs)"},
		{"unknown model metadata", "GET", url + "/v1/models/dogs/metadata", ``, 404, "Latest(dogs)"},
		{"GET predict", "GET", predict, ``, 405, "use POST"},
		{"POST status", "POST", url + "/v1/models/cats", `{}`, 405, "use GET"},
		{"DELETE metadata", "DELETE", url + "/v1/models/cats/metadata", ``, 405, "use GET"},
		{"classify", "POST", url + "/v1/models/cats:classify", `{"examples": []}`, 400, "use :predict"},
		{"unknown verb", "POST", url + "/v1/models/cats:explain", `{}`, 400, "Malformed request"},
		{"malformed path", "GET", url + "/v1/models/", ``, 400, "Malformed request"},
		{"outside the API", "GET", url + "/index.html", ``, 404, "Malformed request"},
		{"empty image", "POST", url + "/v1/models/cats:classify-image", ``, 400, "empty"},
		{"garbage image", "POST", url + "/v1/models/cats:classify-image", `GIF89a garbage`, 400, "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, tc.url, tc.body)
			if r.code != tc.code {
				t.Errorf("status %d, want %d: %s", r.code, tc.code, r.body)
			}
			if r.ctype != "application/json" {
				t.Errorf("Content-Type %q", r.ctype)
			}
			msg, _ := r.decoded["error"].(string)
			if !strings.Contains(msg, tc.msg) || len(r.decoded) != 1 {
				t.Errorf("reply %s, want an error containing %q", r.body, tc.msg)
			}
			if tc.code == 405 && r.allow == "" {
				t.Error("405 without Allow")
			}
		})
	}

	// A body without Content-Length is cut off at the limit too.
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(`{"instances": [` + one)
		for range 50 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			chunk = []byte("," + one)
		}
		pw.Write([]byte("]}"))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, predict, pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	// The server still answers.
	if r := do(t, "POST", predict, `{"instances": [`+one+`]}`); r.code != 200 {
		t.Errorf("after the errors: %d %s", r.code, r.body)
	}
}

func TestStatusAndMetadata(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	srv, url := start(t, m, Config{Name: "cats", Version: 7})
	for _, path := range []string{"/v1/models/cats", "/v1/models/cats/versions/7"} {
		r := do(t, "GET", url+path, "")
		want := `{"model_version_status":[{"version":"7","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}`
		if r.code != 200 || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("GET %s: %d %s", path, r.code, r.body)
		}
	}
	r := do(t, "GET", url+"/v1/models/cats/versions/7/metadata", "")
	if r.code != 200 {
		t.Fatalf("metadata: %d %s", r.code, r.body)
	}
	var md struct {
		ModelSpec struct{ Name, Version string } `json:"model_spec"`
		Metadata  struct {
			SignatureDef struct {
				SignatureDef map[string]struct {
					Inputs, Outputs map[string]struct {
						Dtype       string `json:"dtype"`
						Name        string `json:"name"`
						TensorShape struct {
							Dim []struct {
								Size string `json:"size"`
							} `json:"dim"`
							UnknownRank bool `json:"unknown_rank"`
						} `json:"tensor_shape"`
					}
					MethodName string `json:"method_name"`
				} `json:"signature_def"`
			} `json:"signature_def"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(r.body, &md); err != nil {
		t.Fatal(err)
	}
	sig, ok := md.Metadata.SignatureDef.SignatureDef["serving_default"]
	if md.ModelSpec.Name != "cats" || md.ModelSpec.Version != "7" || !ok || sig.MethodName != "tensorflow/serving/predict" {
		t.Fatalf("metadata %s", r.body)
	}
	in := sig.Inputs["images"]
	var dims []string
	for _, d := range in.TensorShape.Dim {
		dims = append(dims, d.Size)
	}
	if in.Name != "x:0" || in.Dtype != "DT_FLOAT" || !slices.Equal(dims, []string{"-1", "28", "28", "1"}) {
		t.Errorf("input %+v", in)
	}
	if p, c := sig.Outputs["probabilities"], sig.Outputs["classes"]; p.Name != "y_pred:0" || p.Dtype != "DT_FLOAT" || c.Name != "y_pred_cls:0" || c.Dtype != "DT_INT64" {
		t.Errorf("outputs %+v", sig.Outputs)
	}

	srv.Close()
	if r := do(t, "GET", url+"/v1/models/cats", ""); !strings.Contains(string(r.body), "UNLOADING") {
		t.Errorf("status after Close: %s", r.body)
	}
	if r := do(t, "POST", url+"/v1/models/cats:predict", `{"instances": [`+tensorJSON(make([]float32, side*side), side, side, 1)+`]}`); r.code != 503 {
		t.Errorf("predict after Close: %d %s", r.code, r.body)
	}
}

func TestClassifyImage(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	_, url := start(t, m, Config{Classes: []string{"cat", "dog", "bird"}})
	img := pngImage(t, 64, 64, 9)
	pre, err := dataset.Preprocess(img, side, 1)
	if err != nil {
		t.Fatal(err)
	}
	probs, classes := want(t, m, pre, 1)
	r := do(t, "POST", url+"/v1/models/default:classify-image", string(img))
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	var res imageResult
	json.Unmarshal(r.body, &res)
	names := []string{"cat", "dog", "bird"}
	if res.Index != int(classes[0]) || res.Class != names[res.Index] {
		t.Errorf("reply %+v, want class %v", res, classes[0])
	}
	for i, n := range names {
		if float64(res.Probabilities[n]) != float64(float32(probs[0][i])) {
			t.Errorf("p(%s) = %v, want %v", n, res.Probabilities[n], probs[0][i])
		}
	}
}

// fakeModel answers, for each image, probabilities (v, 1-v) where v is the
// image's first value, so that a reply shows which image it came from.
type fakeModel struct {
	delay  time.Duration
	calls  atomic.Int64
	fail   error
	panics bool
	// entered, when set, receives a value as Predict starts; Predict then
	// waits for release to close.
	entered chan struct{}
	release chan struct{}
}

func (f *fakeModel) InputSize() (int, int, int) { return 2, 2, 1 }
func (f *fakeModel) NumClasses() int            { return 2 }
func (f *fakeModel) Close() error               { return nil }
func (f *fakeModel) Predict(x []float32, n int) ([]float32, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	time.Sleep(f.delay)
	if f.panics {
		panic("boom")
	}
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]float32, 0, 2*n)
	for i := range n {
		v := x[i*4]
		out = append(out, v, 1-v)
	}
	return out, nil
}

func fakeInstance(v float32) string {
	s := strconv.FormatFloat(float64(v), 'g', -1, 32)
	return fmt.Sprintf("[[[%s],[0]],[[0],[0]]]", s)
}

// hammer sends clients concurrent one-image requests, each with its own
// value, and checks every reply is its own.
func hammer(t *testing.T, url string, clients int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := float32(i) / float32(clients)
			body := `{"instances": [` + fakeInstance(v) + `,` + fakeInstance(v/2) + `]}`
			resp, err := http.Post(url+"/v1/models/default:predict", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out struct {
				Predictions []struct {
					Probabilities []float32 `json:"probabilities"`
				} `json:"predictions"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
				t.Errorf("client %d: %d %v", i, resp.StatusCode, err)
				return
			}
			if len(out.Predictions) != 2 || out.Predictions[0].Probabilities[0] != v || out.Predictions[1].Probabilities[0] != v/2 {
				t.Errorf("client %d got %+v, want %v and %v", i, out.Predictions, v, v/2)
			}
		}()
	}
	wg.Wait()
}

func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBatch int
		wait     time.Duration
	}{
		{"batched", 8, 20 * time.Millisecond},
		{"no wait", 8, -1},
		{"batch of one image", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeModel{delay: 5 * time.Millisecond}
			srv, url := start(t, f, Config{MaxBatch: tc.maxBatch, BatchWait: tc.wait})
			hammer(t, url, 24)
			st := srv.Stats()
			if st.Images != 48 || st.Batches != f.calls.Load() {
				t.Errorf("stats %+v after %d calls", st, f.calls.Load())
			}
			limit := int64(max(tc.maxBatch, 2)) // a request is never split
			if st.Largest > limit {
				t.Errorf("a batch of %d images; the limit is %d", st.Largest, limit)
			}
			if tc.maxBatch > 2 && tc.wait > 0 && st.Batches >= 24 {
				t.Errorf("%d batches for 24 concurrent requests: nothing was batched", st.Batches)
			}
			t.Logf("%+v", st)
		})
	}
}

func TestModelFailures(t *testing.T) {
	for _, f := range []*fakeModel{{fail: errors.New("out of memory")}, {panics: true}} {
		_, url := start(t, f, Config{})
		r := do(t, "POST", url+"/v1/models/default:predict", `{"instances": [`+fakeInstance(0.5)+`]}`)
		if r.code != 500 || !strings.Contains(string(r.body), "error") {
			t.Errorf("failing model: %d %s", r.code, r.body)
		}
		// Still up.
		if r := do(t, "GET", url+"/v1/models/default", ""); r.code != 200 {
			t.Errorf("after a failure: %d", r.code)
		}
	}
}

// A request cancelled while the model runs its batch is answered 499 at once,
// without waiting for the model: here the model runs until the test lets it
// finish, which it does only once the request is answered (or, if the
// server waits for the model, after 30 s, failing the test rather than
// hanging it).
func TestCancelledRequestDoesNotBlock(t *testing.T) {
	f := &fakeModel{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := New(f, Config{MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/models/default:predict", strings.NewReader(`{"instances": [`+fakeInstance(0.5)+`]}`))
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeHTTP(w, req) }()
	<-f.entered // the model is running the request's batch
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(f.release)
		<-done
		t.Fatalf("the cancelled request was answered only once the model finished: %d %s", w.Code, w.Body)
	}
	close(f.release)
	if w.Code != 499 || !strings.Contains(w.Body.String(), "the request was cancelled") {
		t.Errorf("cancelled request answered %d %s, want 499", w.Code, w.Body)
	}
}

func TestNewChecksConfig(t *testing.T) {
	f := &fakeModel{}
	for _, cfg := range []Config{
		{Name: "a/b"}, {Name: "a:b"}, {Version: -1}, {MaxBatch: -1}, {MaxBodyBytes: -5}, {Classes: []string{"one"}},
	} {
		if _, err := New(f, cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New accepted no model")
	}
}

// TestConcurrentRealModel mixes good and bad requests against the real
// model from many goroutines: every reply has the right status.
func TestConcurrentRealModel(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	srv, url := start(t, m, Config{MaxBatch: 8})
	img := pngImage(t, 50, 50, 3)
	good := `{"instances": [` + b64JSON(img) + `,` + tensorJSON(testmodel.Images(1, side*side, 4), side, side, 1) + `]}`
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				body, code := good, 200
				if (i+j)%3 == 0 {
					body, code = `{"instances": [[[[1]]]]}`, 400
				}
				resp, err := http.Post(url+"/v1/models/default:predict", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != code {
					t.Errorf("status %d, want %d", resp.StatusCode, code)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%+v", srv.Stats())
}
