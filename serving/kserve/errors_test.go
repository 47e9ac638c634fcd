package kserve_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/kserve"
	pb "github.com/tfcat/tfcat/serving/kserve/inferencepb"
)

// request is a JSON request with one input of the fake model's shape.
func request(n int, extra string) []byte {
	return inputJSON("FP32", []int64{int64(n), 8, 8, 3}, testmodel.Images(n, testmodel.FakeSize, 1), 0, extra)
}

// TestRESTErrors: each bad request gets v2's error form, {"error": ...},
// with the HTTP status of its TensorFlow Serving code and a message saying
// what is wrong, and the server keeps answering.
func TestRESTErrors(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{MaxInstances: 4}, kserve.Options{MaxBodyBytes: 1 << 20})
	in := func(datatype string, shape []int64, data any) []byte { return inputJSON(datatype, shape, data, 0, "") }
	bin := func(datatype string, shape []int64, size int, data []byte) []byte {
		return append(inputJSON(datatype, shape, nil, size, ""), data...)
	}
	headerOf := func(datatype string, shape []int64, size int) string {
		return strconv.Itoa(len(inputJSON(datatype, shape, nil, size, "")))
	}
	img := hostile.Gradient(8, 8, 1)
	one := []int64{1}
	var big bytes.Buffer
	big.WriteString(`{"inputs":[{"name":"images","datatype":"FP32","shape":[1,8,8,3],"data":[`)
	for big.Len() < 1<<20 {
		big.WriteString("0.5,")
	}
	big.WriteString("0]}]}")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(big.Bytes())
	zw.Close()

	cases := []struct {
		name         string
		method, path string
		body         []byte
		header       []string
		code         int
		msg          string
	}{
		{"unknown route", "GET", "/v2/repository/index", nil, nil, 404, "Malformed request: GET /v2/repository/index"},
		{"no model", "GET", "/v2/models", nil, nil, 404, "Malformed request"},
		{"no version", "GET", "/v2/models/pets/versions", nil, nil, 404, "Malformed request"},
		{"unknown verb", "POST", "/v2/models/pets/predict", nil, nil, 404, "Malformed request"},
		{"post to health", "POST", "/v2/health/live", nil, nil, 405, "use GET"},
		{"get infer", "GET", "/v2/models/pets/infer", nil, nil, 405, "use POST"},
		{"post metadata", "POST", "/v2/models/pets", nil, nil, 405, "use GET"},
		{"unknown model", "POST", "/v2/models/cats/infer", request(1, ""), nil, 404, "Servable not found for request: Latest(cats)"},
		{"unknown version", "POST", "/v2/models/pets/versions/2/infer", request(1, ""), nil, 404, "Servable not found for request: Specific(pets, 2)"},
		{"version 0", "POST", "/v2/models/pets/versions/0/infer", request(1, ""), nil, 404, "Specific(pets, 0)"},
		{"version 01", "GET", "/v2/models/pets/versions/01", nil, nil, 404, "Specific(pets, 01)"},
		{"negative version", "GET", "/v2/models/pets/versions/-1/ready", nil, nil, 404, "Specific(pets, -1)"},
		{"unknown label", "POST", "/v2/models/pets/versions/canary/infer", request(1, ""), nil, 404, "Unrecognized servable version label: canary"},

		{"not JSON", "POST", "/v2/models/pets/infer", []byte("{"), nil, 400, "the request's JSON: unexpected end of JSON input"},
		{"no inputs", "POST", "/v2/models/pets/infer", []byte(`{"inputs":[]}`), nil, 400, `the request has no inputs: the model's input is "images"`},
		{"two inputs", "POST", "/v2/models/pets/infer", []byte(`{"inputs":[{"name":"images"},{"name":"images"}]}`), nil, 400, "the request has 2 inputs"},
		{"unknown input", "POST", "/v2/models/pets/infer", []byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`), nil, 400,
			`unexpected inference input "x": the model's only input is "images"`},
		{"FP64", "POST", "/v2/models/pets/infer", in("FP64", []int64{1, 8, 8, 3}, make([]float64, testmodel.FakeSize)), nil, 400,
			`input images: datatype "FP64"; the model takes FP32 [N,8,8,3] (or BYTES [N] of encoded JPEG, PNG or BMP images)`},
		{"channels", "POST", "/v2/models/pets/infer", in("FP32", []int64{1, 8, 8, 1}, make([]float32, 64)), nil, 400, "FP32 of shape [1,8,8,1]; the model takes [N,8,8,3]"},
		{"rank", "POST", "/v2/models/pets/infer", in("FP32", []int64{8, 8, 3}, make([]float32, testmodel.FakeSize)), nil, 400, "FP32 of shape [8,8,3]"},
		{"empty batch", "POST", "/v2/models/pets/infer", in("FP32", []int64{0, 8, 8, 3}, []float32{}), nil, 400, "shape [0,8,8,3]"},
		{"too many images", "POST", "/v2/models/pets/infer", request(5, ""), nil, 400, "5 images in one request, more than the limit of 4"},
		{"huge batch", "POST", "/v2/models/pets/infer", in("FP32", []int64{1 << 40, 8, 8, 3}, []float32{}), nil, 400, "more than the limit of 4"},
		{"short data", "POST", "/v2/models/pets/infer", in("FP32", []int64{1, 8, 8, 3}, make([]float32, 10)), nil, 400, "10 FP32 values; its shape holds 192"},
		{"long data", "POST", "/v2/models/pets/infer", in("FP32", []int64{1, 8, 8, 3}, make([]float32, 200)), nil, 400, "more than the 192 FP32 values of its shape"},
		{"strings for FP32", "POST", "/v2/models/pets/infer", in("FP32", []int64{1, 8, 8, 3}, []string{"a"}), nil, 400, `FP32 data must be numbers (in arrays), found "a"`},
		{"out of range", "POST", "/v2/models/pets/infer",
			[]byte(`{"inputs":[{"name":"images","datatype":"FP32","shape":[1,8,8,3],"data":[1e39` + strings.Repeat(",0", testmodel.FakeSize-1) + `]}]}`), nil, 400, "1e39 is not a float32"},
		{"no data", "POST", "/v2/models/pets/infer", []byte(`{"inputs":[{"name":"images","datatype":"FP32","shape":[1,8,8,3]}]}`), nil, 400, "input images has no data"},
		{"not base64", "POST", "/v2/models/pets/infer", in("BYTES", one, []string{"not an image!"}), nil, 400, "element 0 is not base64"},
		{"numbers for BYTES", "POST", "/v2/models/pets/infer", in("BYTES", one, []int{1}), nil, 400, "BYTES data in JSON are strings"},
		{"BYTES count", "POST", "/v2/models/pets/infer", in("BYTES", []int64{2}, []string{b64(img)}), nil, 400, "1 BYTES elements; its shape holds 2"},
		{"BYTES matrix", "POST", "/v2/models/pets/infer", in("BYTES", []int64{1, 2}, []string{b64(img), b64(img)}), nil, 400, "BYTES of shape [1,2]"},
		{"empty image", "POST", "/v2/models/pets/infer", in("BYTES", one, []string{""}), nil, 400, "image 0 is empty"},
		{"corrupt image", "POST", "/v2/models/pets/infer", in("BYTES", one, []string{b64([]byte("not an image"))}), nil, 400, "instance 0: decoding"},
		{"png bomb", "POST", "/v2/models/pets/infer", in("BYTES", one, []string{b64(hostile.PNG(10000, 10000))}), nil, 400,
			"png of 10000x10000 is 100000000 pixels, the server's limit is 16777216"},
		{"binary jpeg bomb", "POST", "/v2/models/pets/infer", bin("BYTES", []int64{2}, len(rawBytes(img, hostile.JPEG(10000, 10000))), rawBytes(img, hostile.JPEG(10000, 10000))),
			[]string{"Inference-Header-Content-Length", headerOf("BYTES", []int64{2}, len(rawBytes(img, hostile.JPEG(10000, 10000))))}, 400,
			"instance 1: decoding the b64 image: image exceeds the pixel limit: jpeg of 10000x10000"},

		{"header length not a number", "POST", "/v2/models/pets/infer", request(1, ""), []string{"Inference-Header-Content-Length", "x"}, 400,
			`Inference-Header-Content-Length: "x" is not a length`},
		{"header length past the body", "POST", "/v2/models/pets/infer", request(1, ""), []string{"Inference-Header-Content-Length", "100000"}, 400,
			"is not a length within the body's"},
		{"binary size differs", "POST", "/v2/models/pets/infer", bin("FP32", []int64{1, 8, 8, 3}, 768, make([]byte, 700)),
			[]string{"Inference-Header-Content-Length", headerOf("FP32", []int64{1, 8, 8, 3}, 768)}, 400, "binary_data_size 768, and 700 bytes of binary data follow the JSON"},
		{"binary without size", "POST", "/v2/models/pets/infer", append(request(1, ""), 1, 2, 3),
			[]string{"Inference-Header-Content-Length", strconv.Itoa(len(request(1, "")))}, 400, "3 bytes of binary data follow the JSON, and no input has a binary_data_size"},
		{"binary FP32 size", "POST", "/v2/models/pets/infer", bin("FP32", []int64{1, 8, 8, 3}, 700, make([]byte, 700)),
			[]string{"Inference-Header-Content-Length", headerOf("FP32", []int64{1, 8, 8, 3}, 700)}, 400, "700 bytes of FP32 data for 192 values (768 bytes)"},
		{"binary BYTES cut in a length", "POST", "/v2/models/pets/infer", bin("BYTES", one, 6, []byte{9, 0, 0, 0, 1, 2}),
			[]string{"Inference-Header-Content-Length", headerOf("BYTES", one, 6)}, 400, "a BYTES element of 9 bytes with 2 left"},
		{"binary BYTES too many", "POST", "/v2/models/pets/infer", bin("BYTES", one, 10, rawBytes([]byte{1}, []byte{1})),
			[]string{"Inference-Header-Content-Length", headerOf("BYTES", one, 10)}, 400, "more BYTES elements than the shape's 1"},
		{"binary BYTES short", "POST", "/v2/models/pets/infer", bin("BYTES", one, 3, []byte{1, 0, 0}),
			[]string{"Inference-Header-Content-Length", headerOf("BYTES", one, 3)}, 400, "BYTES data end inside an element's length"},

		{"unknown output", "POST", "/v2/models/pets/infer", request(1, `,"outputs":[{"name":"logits"}]`), nil, 400,
			`unexpected inference output "logits": the model's outputs are "probabilities" and "classes"`},
		{"output twice", "POST", "/v2/models/pets/infer", request(1, `,"outputs":[{"name":"classes"},{"name":"classes"}]`), nil, 400, `the output "classes" is asked for twice`},
		{"classification", "POST", "/v2/models/pets/infer", request(1, `,"outputs":[{"name":"probabilities","parameters":{"classification":2}}]`), nil, 400,
			"tfcat has no classification extension"},
		{"shared memory", "POST", "/v2/models/pets/infer",
			[]byte(`{"inputs":[{"name":"images","datatype":"FP32","shape":[1,8,8,3],"parameters":{"shared_memory_region":"r"}}]}`), nil, 400, "tfcat has no shared memory extension"},
		{"binary_data_output not a boolean", "POST", "/v2/models/pets/infer", request(1, `,"parameters":{"binary_data_output":"yes"}`), nil, 400,
			`parameter "binary_data_output" must be a boolean, not "yes"`},
		{"negative timeout", "POST", "/v2/models/pets/infer", request(1, `,"parameters":{"timeout":-5}`), nil, 400, `parameter "timeout" must be a non-negative integer`},
		{"zero timeout", "POST", "/v2/models/pets/infer", request(1, `,"parameters":{"timeout":0}`), nil, 400, `parameter "timeout" must be positive`},

		{"body too large", "POST", "/v2/models/pets/infer", big.Bytes(), nil, 413, "the request body of " + strconv.Itoa(big.Len()) + " bytes exceeds the limit of 1048576"},
		{"gzip too large", "POST", "/v2/models/pets/infer", gz.Bytes(), []string{"Content-Encoding", "gzip"}, 413, "the request body exceeds the limit of 1048576 bytes"},
		{"not gzip", "POST", "/v2/models/pets/infer", request(1, ""), []string{"Content-Encoding", "gzip"}, 400, "the gzip request body: gzip: invalid header"},
		{"brotli", "POST", "/v2/models/pets/infer", request(1, ""), []string{"Content-Encoding", "br"}, 415,
			`Content-Encoding "br": the request body may be gzip, deflate or not encoded`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, h, b := s.do(t, tc.method, tc.path, tc.body, tc.header...)
			var e struct{ Error string }
			if err := json.Unmarshal(b, &e); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("HTTP %d %q: not v2's error form (%v, Content-Type %q)", code, b, err, h.Get("Content-Type"))
			}
			if code != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("got %d %q; want %d ...%s...", code, e.Error, tc.code, tc.msg)
			}
			if code == 405 && h.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	// Still answering; NaN in binary data goes through as REST lets it,
	// and comes back as REST writes it.
	x := testmodel.Images(1, testmodel.FakeSize, 1)
	x[0] = float32(math.NaN())
	code, _, b := s.do(t, "POST", "/v2/models/pets/infer", append(inputJSON("FP32", []int64{1, 8, 8, 3}, nil, 4*testmodel.FakeSize, ""), rawFloats(x)...),
		"Inference-Header-Content-Length", strconv.Itoa(len(inputJSON("FP32", []int64{1, 8, 8, 3}, nil, 4*testmodel.FakeSize, ""))))
	if code != 200 || !strings.Contains(string(b), `"data":[NaN,NaN,0.5]`) {
		t.Errorf("NaN image: %d %s", code, b)
	}
	if st := s.srv.Stats(); st.OverLimit != 2 {
		t.Errorf("stats %+v: want the 2 bombs counted as over the limit", st)
	}
}

// TestEncodedBodies: gzip and deflate bodies, as tritonclient.http sends them
// when asked, are answered as plain ones.
func TestEncodedBodies(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{}, kserve.Options{})
	body := request(2, "")
	want := s.infer(t, "/v2/models/pets/infer", body, nil).probs
	for _, enc := range []string{"gzip", "deflate"} {
		var b bytes.Buffer
		var w io.WriteCloser = gzip.NewWriter(&b)
		if enc == "deflate" {
			w = zlib.NewWriter(&b)
		}
		w.Write(body)
		w.Close()
		code, h, out := s.do(t, "POST", "/v2/models/pets/infer", b.Bytes(), "Content-Encoding", enc)
		if code != 200 {
			t.Fatalf("%s: %d %s", enc, code, out)
		}
		same(t, enc, decodeReply(t, h, out).probs, want)
	}
}

// TestGRPCErrors: each bad ModelInfer (and the other methods' bad requests)
// gets TensorFlow Serving's status code and a message saying what is wrong.
func TestGRPCErrors(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{MaxInstances: 4}, kserve.Options{MaxBodyBytes: 1 << 20})
	x := testmodel.Images(1, testmodel.FakeSize, 1)
	tensor := func(datatype string, shape ...int64) *pb.ModelInferRequest_InferInputTensor {
		return &pb.ModelInferRequest_InferInputTensor{Name: "images", Datatype: datatype, Shape: shape, Contents: &pb.InferTensorContents{Fp32Contents: x}}
	}
	infer := func(tensors ...*pb.ModelInferRequest_InferInputTensor) *pb.ModelInferRequest {
		return &pb.ModelInferRequest{ModelName: "pets", Inputs: tensors}
	}
	withRaw := func(r *pb.ModelInferRequest, raw ...[]byte) *pb.ModelInferRequest {
		r.RawInputContents = raw
		for _, in := range r.Inputs {
			in.Contents = nil
		}
		return r
	}
	imagesTensor := func(imgs ...[]byte) *pb.ModelInferRequest {
		return infer(&pb.ModelInferRequest_InferInputTensor{Name: "images", Datatype: "BYTES", Shape: []int64{int64(len(imgs))}, Contents: &pb.InferTensorContents{BytesContents: imgs}})
	}
	good := tensor("FP32", 1, 8, 8, 3)
	named := tensor("FP32", 1, 8, 8, 3)
	named.Name = "x"
	withParams := func(key string, p *pb.InferParameter) *pb.ModelInferRequest {
		r := infer(good)
		r.Parameters = map[string]*pb.InferParameter{key: p}
		return r
	}
	withOutputs := func(names ...string) *pb.ModelInferRequest {
		r := infer(good)
		for _, n := range names {
			r.Outputs = append(r.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: n})
		}
		return r
	}
	classification := withOutputs("probabilities")
	classification.Outputs[0].Parameters = map[string]*pb.InferParameter{"classification": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 2}}}
	both := infer(tensor("FP32", 1, 8, 8, 3))
	both.RawInputContents = [][]byte{rawFloats(x)}
	short := tensor("FP32", 1, 8, 8, 3)
	short.Contents.Fp32Contents = x[:10]
	big := withRaw(infer(tensor("FP32", 4, 8, 8, 3)), make([]byte, 1<<20))

	cases := []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"no model", &pb.ModelInferRequest{}, codes.InvalidArgument, "the request names no model"},
		{"unknown model", &pb.ModelInferRequest{ModelName: "cats"}, codes.NotFound, "Servable not found for request: Latest(cats)"},
		{"unknown version", &pb.ModelInferRequest{ModelName: "pets", ModelVersion: "2"}, codes.NotFound, "Specific(pets, 2)"},
		{"version 0", &pb.ModelInferRequest{ModelName: "pets", ModelVersion: "0"}, codes.NotFound, "Specific(pets, 0)"},
		{"unknown label", &pb.ModelInferRequest{ModelName: "pets", ModelVersion: "canary"}, codes.NotFound, "Unrecognized servable version label: canary"},
		{"no inputs", infer(), codes.InvalidArgument, `the request has no inputs: the model's input is "images"`},
		{"two inputs", infer(good, good), codes.InvalidArgument, "the request has 2 inputs"},
		{"unknown input", infer(named), codes.InvalidArgument, `unexpected inference input "x"`},
		{"FP16", infer(tensor("FP16", 1, 8, 8, 3)), codes.InvalidArgument, `datatype "FP16"; the model takes FP32 [N,8,8,3]`},
		{"channels", infer(tensor("FP32", 1, 8, 8, 1)), codes.InvalidArgument, "FP32 of shape [1,8,8,1]"},
		{"too many images", infer(tensor("FP32", 5, 8, 8, 3)), codes.InvalidArgument, "5 images in one request, more than the limit of 4"},
		{"short contents", infer(short), codes.InvalidArgument, "10 fp32_contents for shape [1,8,8,3] (192 values)"},
		{"contents and raw", both, codes.InvalidArgument, "input images has both contents and raw_input_contents"},
		{"raw count", withRaw(infer(tensor("FP32", 1, 8, 8, 3)), rawFloats(x), rawFloats(x)), codes.InvalidArgument, "2 raw_input_contents for 1 inputs"},
		{"raw size", withRaw(infer(tensor("FP32", 1, 8, 8, 3)), rawFloats(x[:5])), codes.InvalidArgument, "20 bytes of FP32 data for 192 values"},
		{"raw BYTES", withRaw(imagesTensor(nil), []byte{200, 0, 0, 0, 1}), codes.InvalidArgument, "a BYTES element of 200 bytes with 1 left"},
		{"BYTES count", reshaped(imagesTensor([]byte{1}, []byte{2}), 1), codes.InvalidArgument, "2 bytes_contents for shape [1]"},
		{"empty image", imagesTensor([]byte{}), codes.InvalidArgument, "image 0 is empty"},
		{"corrupt image", imagesTensor([]byte("not an image")), codes.InvalidArgument, "instance 0: decoding"},
		{"png bomb", imagesTensor(hostile.PNG(10000, 10000)), codes.InvalidArgument, "the server's limit is 16777216"},
		{"unknown output", withOutputs("logits"), codes.InvalidArgument, `unexpected inference output "logits"`},
		{"output twice", withOutputs("classes", "classes"), codes.InvalidArgument, `the output "classes" is asked for twice`},
		{"classification", classification, codes.InvalidArgument, "tfcat has no classification extension"},
		{"shared memory", withParams("shared_memory_region", &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: "r"}}),
			codes.InvalidArgument, "tfcat has no shared memory extension"},
		{"timeout string", withParams("timeout", &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: "1s"}}),
			codes.InvalidArgument, `parameter "timeout" must be an integer number of microseconds`},
		{"message too large", big, codes.ResourceExhausted, "larger than max"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.client.ModelInfer(ctx(t), tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("got %v: %q; want %v: ...%s...", status.Code(err), status.Convert(err).Message(), tc.code, tc.msg)
			}
		})
	}

	c := ctx(t)
	if _, err := s.client.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "cats"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelMetadata of an unknown model: %v", err)
	}
	if _, err := s.client.ModelReady(c, &pb.ModelReadyRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ModelReady of no model: %v", err)
	}
	// Triton's other methods are not served.
	err := s.conn.Invoke(c, "/inference.GRPCInferenceService/ModelConfig", &pb.ModelReadyRequest{Name: "pets"}, &pb.ModelReadyResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ModelConfig: %v", err)
	}
	// Still answering.
	if _, err := s.client.ModelInfer(c, infer(good)); err != nil {
		t.Errorf("a good request after the bad ones: %v", err)
	}
}

// reshaped is r with its input's shape set to shape.
func reshaped(r *pb.ModelInferRequest, shape ...int64) *pb.ModelInferRequest {
	r.Inputs[0].Shape = shape
	return r
}

// TestLimitCodes: the v1 REST API's limits through v2, over REST and gRPC:
// a request needing more memory than the whole budget, the server's deadline
// or the request's "timeout" passing while predicting, a request waiting
// for a slot past its deadline, REST bodies waiting for memory, a closed
// version.
func TestLimitCodes(t *testing.T) {
	bomb := func() ([]byte, *pb.ModelInferRequest) {
		b := hostile.PNG(10000, 10000)
		return inputJSON("BYTES", []int64{1}, []string{b64(b)}, 0, ""),
			&pb.ModelInferRequest{ModelName: "pets", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "BYTES", Shape: []int64{1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{b}}}}}
	}
	tensor := func(extra string) ([]byte, *pb.ModelInferRequest) {
		x := testmodel.Images(1, testmodel.FakeSize, 1)
		return request(1, extra), &pb.ModelInferRequest{ModelName: "pets", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{1, 8, 8, 3}, Contents: &pb.InferTensorContents{Fp32Contents: x}}}}
	}
	check := func(t *testing.T, s *server, body []byte, req *pb.ModelInferRequest, code int, grpcCode codes.Code, msg string) {
		t.Helper()
		got, _, b := s.do(t, "POST", "/v2/models/pets/infer", body)
		if got != code || !strings.Contains(string(b), msg) {
			t.Errorf("REST: %d %s; want %d ...%s...", got, b, code, msg)
		}
		_, err := s.client.ModelInfer(ctx(t), req)
		if status.Code(err) != grpcCode || !strings.Contains(status.Convert(err).Message(), msg) {
			t.Errorf("gRPC: %v; want %v ...%s...", err, grpcCode, msg)
		}
	}
	t.Run("budget", func(t *testing.T) {
		s := start(t, testmodel.Fake{}, serving.Config{MaxImagePixels: 1 << 30, DecodeMemory: 8 << 20}, kserve.Options{})
		body, req := bomb()
		check(t, s, body, req, 413, codes.ResourceExhausted, "bytes of decode memory needed, and it has 8388608 in all")
	})
	t.Run("server deadline", func(t *testing.T) {
		s := start(t, testmodel.Fake{Delay: 300 * time.Millisecond}, serving.Config{RequestTimeout: 50 * time.Millisecond}, kserve.Options{})
		body, req := tensor("")
		check(t, s, body, req, 504, codes.DeadlineExceeded, "the request's deadline of 50ms passed")
	})
	t.Run("timeout parameter", func(t *testing.T) {
		s := start(t, testmodel.Fake{Delay: 300 * time.Millisecond}, serving.Config{}, kserve.Options{})
		body, req := tensor(`,"parameters":{"timeout":50000}`)
		req.Parameters = map[string]*pb.InferParameter{"timeout": {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: 50000}}}
		check(t, s, body, req, 504, codes.DeadlineExceeded, "the request's deadline passed")
	})
	t.Run("busy", func(t *testing.T) {
		// One request holds the only slot; the next waits until its
		// "timeout", then is turned away as REST turns it away.
		entered := make(chan struct{}, 1)
		s := start(t, testmodel.Fake{Delay: 600 * time.Millisecond, Entered: entered}, serving.Config{MaxConcurrentRequests: 1}, kserve.Options{})
		first := func() chan error {
			done := make(chan error)
			go func() {
				_, err := s.client.ModelInfer(context.Background(), func() *pb.ModelInferRequest { _, r := tensor(""); return r }())
				done <- err
			}()
			<-entered
			return done
		}
		body, req := tensor(`,"parameters":{"timeout":100000}`)
		done := first()
		code, _, b := s.do(t, "POST", "/v2/models/pets/infer", body)
		if code != 503 || !strings.Contains(string(b), "resource exhausted") {
			t.Errorf("REST: %d %s", code, b)
		}
		if err := <-done; err != nil {
			t.Errorf("first request: %v", err)
		}
		req.Parameters = map[string]*pb.InferParameter{"timeout": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 100000}}}
		done = first()
		if _, err := s.client.ModelInfer(ctx(t), req); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("gRPC: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("first request: %v", err)
		}
		if st := s.srv.Stats(); st.Busy != 2 {
			t.Errorf("stats %+v: want two requests turned away busy", st)
		}
	})
	t.Run("body memory", func(t *testing.T) {
		s := start(t, testmodel.Fake{}, serving.Config{}, kserve.Options{BodyMemory: 10000, RequestTimeout: 100 * time.Millisecond})
		// Larger than all the memory bodies may hold: 413 at once.
		code, _, b := s.do(t, "POST", "/v2/models/pets/infer", make([]byte, 20000))
		if code != 413 || !strings.Contains(string(b), "the request body needs 20001 bytes of the 10000 that request bodies may hold at once") {
			t.Errorf("a body over the memory: %d %s", code, b)
		}
		// A body arriving slowly holds its memory; the next waits for it,
		// then gets 503.
		pr, pw := io.Pipe()
		req, err := http.NewRequest("POST", s.url+"/v2/models/pets/infer", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 6000
		slow := make(chan int)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				slow <- 0
				return
			}
			resp.Body.Close()
			slow <- resp.StatusCode
		}()
		pw.Write([]byte("{"))
		time.Sleep(50 * time.Millisecond) // the slow body has taken its memory
		code, _, b = s.do(t, "POST", "/v2/models/pets/infer", make([]byte, 6000))
		if code != 503 || !strings.Contains(string(b), "waited for 6001 bytes of memory for the request body") {
			t.Errorf("a body waiting for memory: %d %s", code, b)
		}
		pw.CloseWithError(io.ErrUnexpectedEOF)
		<-slow
		// Its memory is back.
		if r := s.infer(t, "/v2/models/pets/infer", request(1, ""), nil); len(r.probs) != 3 {
			t.Errorf("after: %v", r.probs)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s := start(t, testmodel.Fake{}, serving.Config{}, kserve.Options{})
		s.srv.Close()
		body, req := tensor("")
		check(t, s, body, req, 503, codes.Unavailable, "shutting down")
	})
}
