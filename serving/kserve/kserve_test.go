package kserve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/grpctest"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/serving/kserve"
	pb "github.com/tfcat/tfcat/serving/kserve/inferencepb"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output
	"github.com/tfcat/tfcat/tfsession"
)

// TestMain fails the package in one line when the Python reference
// environment (TestPythonClients') is missing.
func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }

const side = 32 // the real test model takes 32×32 BGR images

var classes = []string{"cat", "dog", "bird"}

// server is models served as tfcat serve serves them: one HTTP server with
// the v2 routes beside the v1 REST API, and one gRPC server with
// GRPCInferenceService beside TensorFlow Serving's services.
type server struct {
	srv    *serving.Server // the one model's, when started by start
	url    string          // the HTTP server's
	grpc   string          // the gRPC server's address
	client pb.GRPCInferenceServiceClient
	conn   *grpc.ClientConn
}

func start(t testing.TB, m tfsession.Classifier, cfg serving.Config, opt kserve.Options) *server {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "pets"
	}
	if cfg.Classes == nil {
		cfg.Classes = classes
	}
	srv, err := serving.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s := serve(t, serving.One(srv), opt)
	s.srv = srv
	return s
}

// serve serves models over REST and gRPC on loopback.
func serve(t testing.TB, models serving.Models, opt kserve.Options) *server {
	t.Helper()
	v1, v2 := serving.NewHandler(models), kserve.NewHandler(models, opt)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kserve.IsPath(r.URL.Path) {
			v2.ServeHTTP(w, r)
			return
		}
		v1.ServeHTTP(w, r)
	}))

	gs := grpcapi.NewServer(models, grpcapi.Options{MaxRecvMsgSize: int(opt.MaxBodyBytes)})
	kserve.Register(gs, models, opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		hs.Close()
	})
	return &server{url: hs.URL, grpc: ln.Addr().String(), client: pb.NewGRPCInferenceServiceClient(conn), conn: conn}
}

// ctx is a context of a minute, for a call.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// do sends a request to the HTTP server and returns the status, the
// headers and the body.
func (s *server) do(t testing.TB, method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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
	return resp.StatusCode, resp.Header, b
}

// inferReply is a v2 REST inference reply, its binary outputs decoded.
type inferReply struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string          `json:"name"`
		Datatype   string          `json:"datatype"`
		Shape      []int64         `json:"shape"`
		Data       json.RawMessage `json:"data"`
		Parameters struct {
			BinaryDataSize *int `json:"binary_data_size"`
		} `json:"parameters"`
	} `json:"outputs"`
	probs   []float32 // the probabilities output, however it came
	classes []int64
	binary  []string // the outputs that came as binary data
}

// infer posts an inference request (JSON, then binary data when given) and
// decodes the reply, failing the test unless it is 200.
func (s *server) infer(t testing.TB, path string, header []byte, data []byte) inferReply {
	t.Helper()
	body, hdr := header, []string{"Content-Type", "application/json"}
	if data != nil {
		body = append(slices.Clone(header), data...)
		hdr = append(hdr, "Inference-Header-Content-Length", strconv.Itoa(len(header)))
	}
	code, h, b := s.do(t, http.MethodPost, path, body, hdr...)
	if code != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, code, b)
	}
	return decodeReply(t, h, b)
}

func decodeReply(t testing.TB, h http.Header, b []byte) inferReply {
	t.Helper()
	js, rest := b, []byte(nil)
	if hl := h.Get("Inference-Header-Content-Length"); hl != "" {
		n, err := strconv.Atoi(hl)
		if err != nil || n > len(b) {
			t.Fatalf("Inference-Header-Content-Length %q of %d bytes", hl, len(b))
		}
		js, rest = b[:n], b[n:]
	}
	var r inferReply
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatalf("the reply %s: %v", js, err)
	}
	for _, o := range r.Outputs {
		var raw []byte
		if p := o.Parameters.BinaryDataSize; p != nil {
			if *p > len(rest) {
				t.Fatalf("output %s: %d binary bytes of %d", o.Name, *p, len(rest))
			}
			raw, rest = rest[:*p], rest[*p:]
			r.binary = append(r.binary, o.Name)
		}
		switch o.Name {
		case "probabilities":
			if o.Datatype != "FP32" {
				t.Fatalf("probabilities of datatype %s", o.Datatype)
			}
			if raw != nil {
				for i := 0; i+4 <= len(raw); i += 4 {
					r.probs = append(r.probs, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
				}
			} else if err := json.Unmarshal(o.Data, &r.probs); err != nil {
				t.Fatal(err)
			}
		case "classes":
			if o.Datatype != "INT64" {
				t.Fatalf("classes of datatype %s", o.Datatype)
			}
			if raw != nil {
				for i := 0; i+8 <= len(raw); i += 8 {
					r.classes = append(r.classes, int64(binary.LittleEndian.Uint64(raw[i:])))
				}
			} else if err := json.Unmarshal(o.Data, &r.classes); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the outputs", len(rest))
	}
	return r
}

// inputJSON is a request's JSON with one input; data is its JSON data, or
// nil for binary data of binarySize bytes.
func inputJSON(datatype string, shape []int64, data any, binarySize int, extra string) []byte {
	in := map[string]any{"name": "images", "datatype": datatype, "shape": shape}
	if data != nil {
		in["data"] = data
	} else {
		in["parameters"] = map[string]any{"binary_data_size": binarySize}
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return []byte(`{"id":"r1","inputs":[` + string(b) + `]` + extra + `}`)
}

// rawFloats is x in little-endian float32.
func rawFloats(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// rawBytes is elements in the binary BYTES form.
func rawBytes(elems ...[]byte) []byte {
	var b []byte
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// restPredict asks the v1 REST API for the probabilities of instances.
func restPredict(t testing.TB, url string, instances []string) []float32 {
	t.Helper()
	resp, err := http.Post(url+"/v1/models/pets:predict", "application/json",
		strings.NewReader(`{"instances": [`+strings.Join(instances, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Predictions []struct {
			Probabilities []float32 `json:"probabilities"`
		} `json:"predictions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("REST predict: HTTP %d, %v", resp.StatusCode, err)
	}
	var probs []float32
	for _, p := range out.Predictions {
		probs = append(probs, p.Probabilities...)
	}
	return probs
}

// same fails unless got and want hold the same values exactly: the same
// batcher and model answer both.
func same(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

// close fails unless got and want agree within 1e-6.
func closeTo(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if d := testenv.MaxAbsDiff(got, want); d > 1e-6 {
		t.Errorf("%s: %v, want %v (%.3g apart)", what, got, want, d)
	}
}

// argmaxes is the most probable class of each row of k.
func argmaxes(p []float32, k int) []int64 {
	var c []int64
	for i := 0; i+k <= len(p); i += k {
		best := 0
		for j, v := range p[i : i+k] {
			if v > p[i+best] {
				best = j
			}
		}
		c = append(c, int64(best))
	}
	return c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestServiceMatchesProto: the service registered is the generated one,
// named as the protocol names it, with the protocol's six unary methods.
func TestServiceMatchesProto(t *testing.T) {
	gs := grpc.NewServer()
	kserve.Register(gs, serving.One(nil), kserve.Options{})
	info := gs.GetServiceInfo()[kserve.ServiceName]
	var got []string
	for _, m := range info.Methods {
		if m.IsClientStream || m.IsServerStream {
			t.Errorf("%s is a stream", m.Name)
		}
		got = append(got, m.Name)
	}
	slices.Sort(got)
	want := []string{"ModelInfer", "ModelMetadata", "ModelReady", "ServerLive", "ServerMetadata", "ServerReady"}
	if !slices.Equal(got, want) {
		t.Errorf("methods %v, want %v", got, want)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(kserve.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	if pkg := d.ParentFile().Package(); pkg != "inference" {
		t.Errorf("package %s", pkg)
	}
	// The field numbers tritonclient's own descriptors use (checked
	// against them by TestPythonClients; here against a few by hand).
	fields := map[string]protoreflect.FieldNumber{
		"inference.ModelInferRequest.raw_input_contents":   7,
		"inference.ModelInferResponse.raw_output_contents": 6,
		"inference.InferTensorContents.fp32_contents":      6,
		"inference.InferTensorContents.bytes_contents":     8,
		"inference.InferParameter.uint64_param":            5,
	}
	for name, num := range fields {
		f, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.(protoreflect.FieldDescriptor).Number(); got != num {
			t.Errorf("%s = %d, want %d", name, got, num)
		}
	}
}

// TestInferMatchesREST: every form of v2 inference — REST with JSON or
// binary data, gRPC with raw or typed contents, float tensors or encoded
// images — gives the v1 REST API's probabilities exactly, and the model's
// own; the classes are their argmax; the reply names the model and version.
func TestInferMatchesREST(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{Version: 7}, kserve.Options{})
	const n = 3
	size := side * side * 3
	x := testmodel.Images(n, size, 1)
	direct, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	var inst []string
	for i := range n {
		inst = append(inst, string(serving.AppendTensorJSON(nil, x[i*size:(i+1)*size], side, side, 3)))
	}
	rest := restPredict(t, s.url, inst)
	same(t, "v1 REST against the model", rest, direct)

	imgs := [][]byte{testmodel.PNG(t, 40, 30, 1), hostile.Gradient(50, 50, 9)}
	var xs []float32
	var imgInst []string
	for _, img := range imgs {
		xi, err := dataset.PreprocessMode(img, side, 3, serving.DefaultMaxImagePixels, pixels.Stretch)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, xi...)
		imgInst = append(imgInst, `{"b64":"`+b64(img)+`"}`)
	}
	directImgs, err := m.Predict(xs, len(imgs))
	if err != nil {
		t.Fatal(err)
	}
	restImgs := restPredict(t, s.url, imgInst)
	same(t, "v1 REST images against the model", restImgs, directImgs)

	// A nested JSON tensor, as a client writes an array of N×H×W×C.
	nested := make([][][][]float32, n)
	for i := range nested {
		nested[i] = make([][][]float32, side)
		for y := range nested[i] {
			nested[i][y] = make([][]float32, side)
			for xx := range nested[i][y] {
				o := ((i*side+y)*side + xx) * 3
				nested[i][y][xx] = x[o : o+3]
			}
		}
	}
	tensorShape := []int64{n, side, side, 3}
	imgShape := []int64{int64(len(imgs))}
	for _, tc := range []struct {
		name   string
		path   string
		header []byte
		data   []byte
		want   []float32
		binary []string
	}{
		{"json flat", "/v2/models/pets/infer", inputJSON("FP32", tensorShape, x, 0, ""), nil, rest, nil},
		{"json nested", "/v2/models/pets/versions/7/infer", inputJSON("FP32", tensorShape, nested, 0, ""), nil, rest, nil},
		{"binary tensor", "/v2/models/pets/infer", inputJSON("FP32", tensorShape, nil, 4*len(x), ""), rawFloats(x), rest, nil},
		{"binary tensor, binary outputs", "/v2/models/pets/infer",
			inputJSON("FP32", tensorShape, nil, 4*len(x), `,"parameters":{"binary_data_output":true}`), rawFloats(x), rest, []string{"probabilities", "classes"}},
		{"json images", "/v2/models/pets/infer", inputJSON("BYTES", imgShape, []string{b64(imgs[0]), strings.TrimRight(b64(imgs[1]), "=")}, 0, ""), nil, restImgs, nil},
		{"json images [N,1]", "/v2/models/pets/infer", inputJSON("BYTES", []int64{2, 1}, [][]string{{b64(imgs[0])}, {b64(imgs[1])}}, 0, ""), nil, restImgs, nil},
		{"binary images, one binary output", "/v2/models/pets/infer",
			inputJSON("BYTES", imgShape, nil, len(rawBytes(imgs...)), `,"outputs":[{"name":"classes"},{"name":"probabilities","parameters":{"binary_data":true}}]`),
			rawBytes(imgs...), restImgs, []string{"probabilities"}},
	} {
		t.Run("REST "+tc.name, func(t *testing.T) {
			r := s.infer(t, tc.path, tc.header, tc.data)
			same(t, "v2 against v1", r.probs, tc.want)
			if !slices.Equal(r.classes, argmaxes(tc.want, 3)) {
				t.Errorf("classes %v, want %v", r.classes, argmaxes(tc.want, 3))
			}
			if r.ModelName != "pets" || r.ModelVersion != "7" || r.ID != "r1" {
				t.Errorf("model %q version %q id %q", r.ModelName, r.ModelVersion, r.ID)
			}
			if !slices.Equal(r.binary, tc.binary) {
				t.Errorf("binary outputs %v, want %v", r.binary, tc.binary)
			}
			for _, o := range r.Outputs {
				want := []int64{int64(len(tc.want) / 3), 3}
				if o.Name == "classes" {
					want = want[:1]
				}
				if !slices.Equal(o.Shape, want) {
					t.Errorf("%s: shape %v, want %v", o.Name, o.Shape, want)
				}
			}
		})
	}

	fp32 := func(raw bool, shape ...int64) *pb.ModelInferRequest {
		in := &pb.ModelInferRequest_InferInputTensor{Name: "images", Datatype: "FP32", Shape: shape}
		req := &pb.ModelInferRequest{ModelName: "pets", Id: "g1", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}}
		if raw {
			req.RawInputContents = [][]byte{rawFloats(x)}
		} else {
			in.Contents = &pb.InferTensorContents{Fp32Contents: x}
		}
		return req
	}
	encoded := func(raw bool, shape ...int64) *pb.ModelInferRequest {
		in := &pb.ModelInferRequest_InferInputTensor{Name: "images", Datatype: "BYTES", Shape: shape}
		req := &pb.ModelInferRequest{ModelName: "pets", ModelVersion: "7", Id: "g1", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}}
		if raw {
			req.RawInputContents = [][]byte{rawBytes(imgs...)}
		} else {
			in.Contents = &pb.InferTensorContents{BytesContents: imgs}
		}
		return req
	}
	for _, tc := range []struct {
		name string
		req  *pb.ModelInferRequest
		raw  bool
		want []float32
	}{
		{"raw tensor", fp32(true, tensorShape...), true, rest},
		{"typed tensor", fp32(false, tensorShape...), false, rest},
		{"raw images", encoded(true, 2), true, restImgs},
		{"typed images", encoded(false, 2, 1), false, restImgs},
	} {
		t.Run("gRPC "+tc.name, func(t *testing.T) {
			resp, err := s.client.ModelInfer(ctx(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ModelName != "pets" || resp.ModelVersion != "7" || resp.Id != "g1" || len(resp.Outputs) != 2 {
				t.Fatalf("reply %v", resp)
			}
			var probs []float32
			var cls []int64
			if tc.raw {
				if len(resp.RawOutputContents) != 2 {
					t.Fatalf("%d raw_output_contents", len(resp.RawOutputContents))
				}
				for i := 0; i+4 <= len(resp.RawOutputContents[0]); i += 4 {
					probs = append(probs, math.Float32frombits(binary.LittleEndian.Uint32(resp.RawOutputContents[0][i:])))
				}
				for i := 0; i+8 <= len(resp.RawOutputContents[1]); i += 8 {
					cls = append(cls, int64(binary.LittleEndian.Uint64(resp.RawOutputContents[1][i:])))
				}
			} else {
				if len(resp.RawOutputContents) != 0 {
					t.Fatalf("raw_output_contents for typed inputs")
				}
				probs, cls = resp.Outputs[0].GetContents().GetFp32Contents(), resp.Outputs[1].GetContents().GetInt64Contents()
			}
			o := resp.Outputs
			k := int64(len(tc.want) / 3)
			if o[0].Name != "probabilities" || o[0].Datatype != "FP32" || !slices.Equal(o[0].Shape, []int64{k, 3}) ||
				o[1].Name != "classes" || o[1].Datatype != "INT64" || !slices.Equal(o[1].Shape, []int64{k}) {
				t.Errorf("outputs %v", o)
			}
			same(t, "gRPC v2 against v1 REST", probs, tc.want)
			if !slices.Equal(cls, argmaxes(tc.want, 3)) {
				t.Errorf("classes %v", cls)
			}
		})
	}

	t.Run("gRPC one output", func(t *testing.T) {
		req := fp32(true, tensorShape...)
		req.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "classes"}}
		resp, err := s.client.ModelInfer(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "classes" || len(resp.RawOutputContents) != 1 || len(resp.RawOutputContents[0]) != 8*n {
			t.Errorf("reply %v", resp)
		}
	})
}

// TestHealthAndMetadata: liveness, readiness, server and model metadata
// over REST and gRPC.
func TestHealthAndMetadata(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{Version: 3}, kserve.Options{ServerVersion: "1.2.3"})
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/v2/health/live", 200, ""},
		{"HEAD", "/v2/health/live", 200, ""},
		{"GET", "/v2/health/ready", 200, ""},
		{"GET", "/v2/models/pets/ready", 200, ""},
		{"GET", "/v2/models/pets/versions/3/ready", 200, ""},
		{"GET", "/v2/models/pets/versions/4/ready", 404, `{"error":"Servable not found for request: Specific(pets, 4)"}`},
		{"GET", "/v2/models/cats/ready", 404, `{"error":"Servable not found for request: Latest(cats)"}`},
		{"GET", "/v2", 200, `{"name":"tfcat","version":"1.2.3","extensions":["binary_tensor_data"]}`},
		{"GET", "/v2/", 200, `{"name":"tfcat"`},
		{"GET", "/v2/models/pets", 200, `{"name":"pets","versions":["3"],"platform":"tensorflow",` +
			`"inputs":[{"name":"images","datatype":"FP32","shape":[-1,8,8,3]}],` +
			`"outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,3]},{"name":"classes","datatype":"INT64","shape":[-1]}]}`},
		{"GET", "/v2/models/pets/versions/3", 200, `{"name":"pets","versions":["3"]`},
		{"GET", "/v2/models/cats", 404, `{"error":"Servable not found for request: Latest(cats)"}`},
	} {
		code, h, b := s.do(t, tc.method, tc.path, nil)
		if code != tc.code || !strings.HasPrefix(string(b), tc.body) || (tc.body == "" && len(b) != 0) {
			t.Errorf("%s %s: %d %s; want %d %s", tc.method, tc.path, code, b, tc.code, tc.body)
		}
		if len(b) > 0 && h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, h.Get("Content-Type"))
		}
	}

	c := ctx(t)
	live, err := s.client.ServerLive(c, &pb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Errorf("ServerLive: %v, %v", live, err)
	}
	ready, err := s.client.ServerReady(c, &pb.ServerReadyRequest{})
	if err != nil || !ready.Ready {
		t.Errorf("ServerReady: %v, %v", ready, err)
	}
	for _, tc := range []struct {
		name, version string
		ready         bool
	}{{"pets", "", true}, {"pets", "3", true}, {"pets", "4", false}, {"pets", "03", false}, {"pets", "canary", false}, {"cats", "", false}} {
		r, err := s.client.ModelReady(c, &pb.ModelReadyRequest{Name: tc.name, Version: tc.version})
		if err != nil || r.Ready != tc.ready {
			t.Errorf("ModelReady(%s, %q): %v, %v; want ready %v", tc.name, tc.version, r, err, tc.ready)
		}
	}
	sm, err := s.client.ServerMetadata(c, &pb.ServerMetadataRequest{})
	if err != nil || sm.Name != "tfcat" || sm.Version != "1.2.3" || !slices.Equal(sm.Extensions, kserve.Extensions) {
		t.Errorf("ServerMetadata: %v, %v", sm, err)
	}
	md, err := s.client.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "pets"})
	if err != nil {
		t.Fatal(err)
	}
	type tm struct {
		Name, Datatype string
		Shape          []int64
	}
	var ins, outs []tm
	for _, i := range md.Inputs {
		ins = append(ins, tm{i.Name, i.Datatype, i.Shape})
	}
	for _, o := range md.Outputs {
		outs = append(outs, tm{o.Name, o.Datatype, o.Shape})
	}
	if md.Name != "pets" || !slices.Equal(md.Versions, []string{"3"}) || md.Platform != "tensorflow" ||
		!reflect.DeepEqual(ins, []tm{{"images", "FP32", []int64{-1, 8, 8, 3}}}) ||
		!reflect.DeepEqual(outs, []tm{{"probabilities", "FP32", []int64{-1, 3}}, {"classes", "INT64", []int64{-1}}}) {
		t.Errorf("ModelMetadata: %v", md)
	}
}

// versions is a Models of one model at several versions, with labels, and a
// version that failed to load.
type versions struct {
	name    string
	servers map[int64]*serving.Server
	labels  map[string]int64
	failed  int64

	mu       sync.Mutex
	acquired int // acquired and not released
}

func (v *versions) Acquire(spec serving.ModelSpec) (*serving.Server, int64, func(), error) {
	if spec.Name != v.name {
		return nil, 0, nil, serving.NotFound(spec)
	}
	n := spec.Version
	switch {
	case spec.Label != "":
		var ok bool
		if n, ok = v.labels[spec.Label]; !ok {
			return nil, 0, nil, serving.NotFound(spec)
		}
	case n == 0:
		for k := range v.servers {
			n = max(n, k)
		}
	}
	srv, ok := v.servers[n]
	if !ok {
		return nil, 0, nil, serving.NotFound(spec)
	}
	v.mu.Lock()
	v.acquired++
	v.mu.Unlock()
	return srv, n, func() {
		v.mu.Lock()
		v.acquired--
		v.mu.Unlock()
	}, nil
}

func (v *versions) Status(spec serving.ModelSpec) ([]serving.VersionStatus, error) {
	if spec.Name != v.name {
		return nil, serving.NotFound(spec)
	}
	var st []serving.VersionStatus
	for n := range v.servers {
		st = append(st, serving.VersionStatus{Version: n, State: serving.StateAvailable})
	}
	st = append(st, serving.VersionStatus{Version: v.failed, State: serving.StateEnd, Err: fmt.Errorf("broken")})
	slices.SortFunc(st, func(a, b serving.VersionStatus) int { return int(a.Version - b.Version) })
	return st, nil
}

func (v *versions) Names() []string { return []string{v.name} }

// TestVersions: a version number or label picks the version that answers
// (REST and gRPC); none, the latest; the metadata lists the available
// versions; every version acquired is released.
func TestVersions(t *testing.T) {
	v := &versions{name: "pets", servers: map[int64]*serving.Server{}, labels: map[string]int64{"stable": 1, "canary": 2}, failed: 3}
	for _, n := range []int64{1, 2} {
		srv, err := serving.New(testmodel.Fake{}, serving.Config{Name: "pets", Version: n})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		v.servers[n] = srv
	}
	s := serve(t, v, kserve.Options{})
	x := testmodel.Images(1, testmodel.FakeSize, 5)
	req := inputJSON("FP32", []int64{1, 8, 8, 3}, x, 0, "")
	for _, tc := range []struct{ path, version string }{
		{"/v2/models/pets/infer", "2"},
		{"/v2/models/pets/versions/1/infer", "1"},
		{"/v2/models/pets/versions/stable/infer", "1"},
		{"/v2/models/pets/versions/canary/infer", "2"},
	} {
		if r := s.infer(t, tc.path, req, nil); r.ModelVersion != tc.version {
			t.Errorf("%s: answered by version %s, want %s", tc.path, r.ModelVersion, tc.version)
		}
	}
	for _, tc := range []struct{ version, want string }{{"", "2"}, {"1", "1"}, {"stable", "1"}} {
		resp, err := s.client.ModelInfer(ctx(t), &pb.ModelInferRequest{ModelName: "pets", ModelVersion: tc.version,
			Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 8, 8, 3}, Contents: &pb.InferTensorContents{Fp32Contents: x}}}})
		if err != nil || resp.ModelVersion != tc.want {
			t.Errorf("version %q: %v, %v; want version %s", tc.version, resp.GetModelVersion(), err, tc.want)
		}
	}
	code, _, b := s.do(t, "GET", "/v2/models/pets", nil)
	if code != 200 || !strings.Contains(string(b), `"versions":["1","2"]`) {
		t.Errorf("metadata: %d %s", code, b)
	}
	code, _, b = s.do(t, "GET", "/v2/models/pets/versions/canary", nil)
	if code != 200 || !strings.Contains(string(b), `"versions":["2"]`) {
		t.Errorf("metadata of canary: %d %s", code, b)
	}
	code, _, b = s.do(t, "GET", "/v2/models/pets/versions/3/ready", nil)
	if code != 404 {
		t.Errorf("the failed version's readiness: %d %s", code, b)
	}
	code, _, b = s.do(t, "POST", "/v2/models/pets/versions/beta/infer", req)
	if code != 404 || !strings.Contains(string(b), "Unrecognized servable version label: beta") {
		t.Errorf("an unknown label: %d %s", code, b)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.acquired != 0 {
		t.Errorf("%d versions acquired and not released", v.acquired)
	}
}

// TestConcurrentBatching: v2 requests over REST and gRPC and v1 REST
// requests at once share batches, and each gets its own images' answer.
func TestConcurrentBatching(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{BatchWait: 100 * time.Millisecond}, kserve.Options{})
	size := side * side * 3
	const k = 9
	var wg sync.WaitGroup
	for i := range k {
		wg.Go(func() {
			x := testmodel.Images(1, size, uint64(100+i))
			want, err := m.Predict(x, 1)
			if err != nil {
				t.Error(err)
				return
			}
			var got []float32
			switch i % 3 {
			case 0:
				got = restPredict(t, s.url, []string{string(serving.AppendTensorJSON(nil, x, side, side, 3))})
			case 1:
				got = s.infer(t, "/v2/models/pets/infer", inputJSON("FP32", []int64{1, side, side, 3}, nil, 4*len(x), ""), rawFloats(x)).probs
			case 2:
				resp, err := s.client.ModelInfer(ctx(t), &pb.ModelInferRequest{ModelName: "pets",
					Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, side, side, 3}}},
					RawInputContents: [][]byte{rawFloats(x)}})
				if err != nil {
					t.Error(err)
					return
				}
				for j := 0; j+4 <= len(resp.RawOutputContents[0]); j += 4 {
					got = append(got, math.Float32frombits(binary.LittleEndian.Uint32(resp.RawOutputContents[0][j:])))
				}
			}
			closeTo(t, fmt.Sprintf("request %d", i), got, want)
		})
	}
	wg.Wait()
	if st := s.srv.Stats(); st.Images != k || st.Batches >= k {
		t.Errorf("stats %+v: want %d images in fewer than %d batches", st, k, k)
	}
}

// TestReportsServed: the handlers report the version that answered to the
// request's serving.Served, for the metrics' version label, over REST and
// gRPC.
func TestReportsServed(t *testing.T) {
	srv, err := serving.New(testmodel.Fake{}, serving.Config{Name: "pets", Version: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	models := serving.One(srv)
	h := kserve.NewHandler(models, kserve.Options{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v2/models/pets"},
		{"GET", "/v2/models/pets/ready"},
		{"POST", "/v2/models/pets/infer"},
	} {
		c, served := serving.WithServed(context.Background())
		var body io.Reader
		if tc.method == "POST" {
			body = bytes.NewReader(request(1, ""))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, body).WithContext(c))
		if name, v, ok := served.Get(); rec.Code != 200 || !ok || name != "pets" || v != 4 {
			t.Errorf("%s %s: %d; reported %q %d %v", tc.method, tc.path, rec.Code, name, v, ok)
		}
	}
	var mu sync.Mutex
	var reported []string
	record := grpc.UnaryInterceptor(func(c context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		c, served := serving.WithServed(c)
		resp, err := h(c, req)
		name, v, _ := served.Get()
		mu.Lock()
		reported = append(reported, fmt.Sprintf("%s %s %d", info.FullMethod, name, v))
		mu.Unlock()
		return resp, err
	})
	gs := grpc.NewServer(record)
	kserve.Register(gs, models, kserve.Options{})
	conn, stop := grpctest.Serve(t, gs)
	defer stop()
	client := pb.NewGRPCInferenceServiceClient(conn)
	c := ctx(t)
	if _, err := client.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "pets"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ModelInfer(c, &pb.ModelInferRequest{ModelName: "pets", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "images", Datatype: "FP32", Shape: []int64{1, 8, 8, 3}, Contents: &pb.InferTensorContents{Fp32Contents: testmodel.Images(1, testmodel.FakeSize, 1)}}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/inference.GRPCInferenceService/ModelMetadata pets 4", "/inference.GRPCInferenceService/ModelInfer pets 4"}
	if !slices.Equal(reported, want) {
		t.Errorf("reported %q, want %q", reported, want)
	}
}
