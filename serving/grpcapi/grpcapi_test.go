package grpcapi_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	examplepb "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/grpctest"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output
	"github.com/tfcat/tfcat/tfsession"
)

// TestMain fails the package in one line when the Python reference
// environment (TestPythonClient's) is missing.
func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }

const side = 32 // the real test model takes 32×32 BGR images

var classes = []string{"cat", "dog", "bird"}

// server is a model served over gRPC (and REST, for comparisons) on
// loopback, as tfcat serve does.
type server struct {
	srv  *serving.Server
	conn *grpc.ClientConn
	rest string // the REST server's URL
}

func start(t testing.TB, m tfsession.Classifier, cfg serving.Config, opt grpcapi.Options) *server {
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
	gs := grpcapi.NewServer(serving.One(srv), opt)
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
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		hs.Close()
		srv.Close()
	})
	return &server{srv: srv, conn: conn, rest: hs.URL}
}

// invoke calls a method ("Predict", "ModelService/GetModelStatus") with a
// deadline of a minute.
func (s *server) invoke(method string, req, resp proto.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.invokeCtx(ctx, method, req, resp)
}

func (s *server) invokeCtx(ctx context.Context, method string, req, resp proto.Message) error {
	svc := grpcapi.PredictionServiceName
	if m, ok := strings.CutPrefix(method, "ModelService/"); ok {
		svc, method = grpcapi.ModelServiceName, m
	}
	return s.conn.Invoke(ctx, "/"+svc+"/"+method, req, resp)
}

func (s *server) predict(t testing.TB, req *pb.PredictRequest) *pb.PredictResponse {
	t.Helper()
	resp := &pb.PredictResponse{}
	if err := s.invoke("Predict", req, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func spec(name string) *pb.ModelSpec { return &pb.ModelSpec{Name: name} }

func floatTensor(x []float32, dims ...int64) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(dims...), FloatVal: x}
}

// contentTensor packs x into tensor_content, as tf.make_tensor_proto does.
func contentTensor(x []float32, dims ...int64) *tensorpb.TensorProto {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(dims...), TensorContent: b}
}

func stringTensor(imgs ...[]byte) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, TensorShape: shape(int64(len(imgs))), StringVal: imgs}
}

func shape(dims ...int64) *shapepb.TensorShapeProto {
	s := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return s
}

func examples(feats ...*examplepb.Feature) *pb.Input {
	ex := make([]*examplepb.Example, len(feats))
	for i, f := range feats {
		ex[i] = &examplepb.Example{Features: &examplepb.Features{Feature: map[string]*examplepb.Feature{}}}
		if f != nil {
			ex[i].Features.Feature[grpcapi.ImageFeature] = f
		}
	}
	return &pb.Input{Kind: &pb.Input_ExampleList{ExampleList: &pb.ExampleList{Examples: ex}}}
}

func bytesFeature(b []byte) *examplepb.Feature {
	return &examplepb.Feature{Kind: &examplepb.Feature_BytesList{BytesList: &examplepb.BytesList{Value: [][]byte{b}}}}
}

// restPredict asks the REST API for the probabilities of instances (JSON).
func restPredict(t testing.TB, url string, instances []string) [][]float32 {
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
	probs := make([][]float32, len(out.Predictions))
	for i, p := range out.Predictions {
		probs[i] = p.Probabilities
	}
	return probs
}

// rows splits n×k probabilities into rows.
func rows(p []float32, k int) [][]float32 {
	var r [][]float32
	for i := 0; i+k <= len(p); i += k {
		r = append(r, p[i:i+k])
	}
	return r
}

// sameRows fails unless got and want hold the same values exactly: the same
// batcher and model answer both.
func sameRows(t testing.TB, what string, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: row %d has %d values, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("%s: row %d: %v, want %v", what, i, got[i], want[i])
			}
		}
	}
}

// closeRows fails unless got and want agree within 1e-6.
func closeRows(t testing.TB, what string, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := testenv.MaxAbsDiff(got[i], want[i]); d > 1e-6 {
			t.Errorf("%s: row %d: %v, want %v (%.3g apart)", what, i, got[i], want[i], d)
		}
	}
}

// TestServicesMatchProto: the services answer every method of
// prediction_service.proto and model_service.proto, as registered by graft's
// descriptors, and only those.
func TestServicesMatchProto(t *testing.T) {
	gs := grpcapi.NewServer(serving.One(nil), grpcapi.Options{})
	info := gs.GetServiceInfo()
	for _, name := range []string{grpcapi.PredictionServiceName, grpcapi.ModelServiceName} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		var want, got []string
		for i := range sd.Methods().Len() {
			want = append(want, string(sd.Methods().Get(i).Name()))
		}
		for _, m := range info[name].Methods {
			if m.IsClientStream || m.IsServerStream {
				t.Errorf("%s/%s is a stream", name, m.Name)
			}
			got = append(got, m.Name)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: methods %v, want %v", name, got, want)
		}
		if meta := info[name].Metadata; meta != sd.ParentFile().Path() {
			t.Errorf("%s: metadata %v, want %s", name, meta, sd.ParentFile().Path())
		}
	}
}

// TestPredictMatchesREST: gRPC Predict of float tensors (float_val and
// tensor_content) and of encoded images gives REST's probabilities exactly,
// and the model's own; the reply names the version and signature.
func TestPredictMatchesREST(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{Version: 7}, grpcapi.Options{})
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
	rest := restPredict(t, s.rest, inst)
	sameRows(t, "REST against the model", rest, rows(direct, 3))

	for _, tc := range []struct {
		name string
		t    *tensorpb.TensorProto
	}{
		{"float_val", floatTensor(x, n, side, side, 3)},
		{"tensor_content", contentTensor(x, n, side, side, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.predict(t, &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: map[string]*tensorpb.TensorProto{"images": tc.t}})
			p := resp.Outputs["probabilities"]
			if p.GetDtype() != typespb.DataType_DT_FLOAT || fmt.Sprint(dims(p)) != "[3 3]" {
				t.Fatalf("probabilities: %v %v", p.GetDtype(), dims(p))
			}
			sameRows(t, "gRPC against REST", rows(p.FloatVal, 3), rest)
			c := resp.Outputs["classes"]
			if c.GetDtype() != typespb.DataType_DT_INT64 || fmt.Sprint(dims(c)) != "[3]" || len(c.Int64Val) != n {
				t.Fatalf("classes: %v", c)
			}
			for i, r := range rest {
				if best := argmax(r); c.Int64Val[i] != int64(best) {
					t.Errorf("classes[%d] = %d, want %d", i, c.Int64Val[i], best)
				}
			}
			if ms := resp.ModelSpec; ms.GetName() != "pets" || ms.GetVersion().GetValue() != 7 || ms.GetSignatureName() != "serving_default" {
				t.Errorf("model_spec %v", ms)
			}
		})
	}

	t.Run("output_filter", func(t *testing.T) {
		resp := s.predict(t, &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets", SignatureName: "serving_default",
			VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(7)}},
			Inputs: map[string]*tensorpb.TensorProto{"images": floatTensor(x, n, side, side, 3)}, OutputFilter: []string{"probabilities"}})
		if len(resp.Outputs) != 1 || resp.Outputs["probabilities"] == nil {
			t.Fatalf("outputs %v", keys(resp.Outputs))
		}
	})

	t.Run("encoded", func(t *testing.T) {
		imgs := [][]byte{testmodel.PNG(t, 40, 30, 1), hostile.Gradient(50, 50, 9)}
		resp := s.predict(t, &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: map[string]*tensorpb.TensorProto{"images": stringTensor(imgs...)}})
		var inst []string
		var xs []float32
		for _, img := range imgs {
			inst = append(inst, `{"b64":"`+b64(img)+`"}`)
			xi, err := dataset.PreprocessMode(img, side, 3, serving.DefaultMaxImagePixels, pixels.Stretch)
			if err != nil {
				t.Fatal(err)
			}
			xs = append(xs, xi...)
		}
		want, err := m.Predict(xs, len(imgs)) // one batch, as the server runs them
		if err != nil {
			t.Fatal(err)
		}
		got := rows(resp.Outputs["probabilities"].FloatVal, 3)
		sameRows(t, "gRPC against REST", got, restPredict(t, s.rest, inst))
		sameRows(t, "gRPC against the model", got, rows(want, 3))
	})
}

// TestConcurrentBatching: gRPC and REST requests at once share batches and
// each gets its own images' answer (within the rounding a batch's kernels
// may differ by from a single image's).
func TestConcurrentBatching(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{BatchWait: 100 * time.Millisecond}, grpcapi.Options{})
	size := side * side * 3
	const k = 8
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := testmodel.Images(1, size, uint64(100+i))
			want, err := m.Predict(x, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				got := restPredict(t, s.rest, []string{string(serving.AppendTensorJSON(nil, x, side, side, 3))})
				closeRows(t, "REST", got, rows(want, 3))
				return
			}
			resp := &pb.PredictResponse{}
			if err := s.invoke("Predict", &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: map[string]*tensorpb.TensorProto{"images": floatTensor(x, 1, side, side, 3)}}, resp); err != nil {
				t.Error(err)
				return
			}
			closeRows(t, "gRPC", rows(resp.Outputs["probabilities"].FloatVal, 3), rows(want, 3))
		}()
	}
	wg.Wait()
	if st := s.srv.Stats(); st.Images != k || st.Batches >= k {
		t.Errorf("stats %+v: want %d images in fewer than %d batches", st, k, k)
	}
}

// TestClassify: Classify of examples carrying encoded images or float
// tensors names every class with Predict's probability.
func TestClassify(t *testing.T) {
	m := testmodel.Serving(t, side, 3)
	s := start(t, m, serving.Config{}, grpcapi.Options{})
	size := side * side * 3
	img := testmodel.PNG(t, 20, 20, 5)
	x := testmodel.Images(1, size, 3)
	xi, err := dataset.PreprocessMode(img, side, 3, serving.DefaultMaxImagePixels, pixels.Stretch)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(append(xi, x...), 2)
	if err != nil {
		t.Fatal(err)
	}
	floatEx := &examplepb.Example{Features: &examplepb.Features{Feature: map[string]*examplepb.Feature{
		grpcapi.TensorFeature: {Kind: &examplepb.Feature_FloatList{FloatList: &examplepb.FloatList{Value: x}}}}}}
	in := examples(bytesFeature(img))
	in.GetExampleList().Examples = append(in.GetExampleList().Examples, floatEx)
	resp := &pb.ClassificationResponse{}
	if err := s.invoke("Classify", &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: in}, resp); err != nil {
		t.Fatal(err)
	}
	var got []float32
	for _, c := range resp.GetResult().GetClassifications() {
		for j, cl := range c.Classes {
			if cl.Label != classes[j] {
				t.Errorf("class %d labelled %q, want %q", j, cl.Label, classes[j])
			}
			got = append(got, cl.Score)
		}
	}
	sameRows(t, "Classify against the model", rows(got, 3), rows(want, 3))
	if ms := resp.ModelSpec; ms.GetVersion().GetValue() != 1 || ms.GetSignatureName() != "serving_default" {
		t.Errorf("model_spec %v", ms)
	}

	// The context supplies the image to examples without one.
	ctxIn := &pb.Input{Kind: &pb.Input_ExampleListWithContext{ExampleListWithContext: &pb.ExampleListWithContext{
		Examples: []*examplepb.Example{{}}, Context: examples(bytesFeature(img)).GetExampleList().Examples[0]}}}
	mresp := &pb.MultiInferenceResponse{}
	if err := s.invoke("MultiInference", &pb.MultiInferenceRequest{Input: ctxIn,
		Tasks: []*pb.InferenceTask{{ModelSpec: spec("pets"), MethodName: "tensorflow/serving/classify"}}}, mresp); err != nil {
		t.Fatal(err)
	}
	if len(mresp.Results) != 1 {
		t.Fatalf("%d results", len(mresp.Results))
	}
	got = got[:0]
	for _, cl := range mresp.Results[0].GetClassificationResult().GetClassifications()[0].GetClasses() {
		got = append(got, cl.Score)
	}
	closeRows(t, "MultiInference against the model", rows(got, 3), rows(want[:3], 3))
}

// TestMetadataAndStatus: GetModelMetadata packs the serving_default
// SignatureDef as TensorFlow Serving does; GetModelStatus lists the version.
func TestMetadataAndStatus(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{Version: 3}, grpcapi.Options{})
	resp := &pb.GetModelMetadataResponse{}
	if err := s.invoke("GetModelMetadata", &pb.GetModelMetadataRequest{ModelSpec: spec("pets"), MetadataField: []string{"signature_def"}}, resp); err != nil {
		t.Fatal(err)
	}
	if resp.ModelSpec.GetName() != "pets" || resp.ModelSpec.GetVersion().GetValue() != 3 {
		t.Errorf("model_spec %v", resp.ModelSpec)
	}
	a := resp.Metadata["signature_def"]
	if a.GetTypeUrl() != "type.googleapis.com/tensorflow.serving.SignatureDefMap" {
		t.Fatalf("metadata %v", resp.Metadata)
	}
	sigs := &pb.SignatureDefMap{}
	if err := a.UnmarshalTo(sigs); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(sigs.SignatureDef["serving_default"], s.srv.Signature()) || len(sigs.SignatureDef) != 1 {
		t.Errorf("signatures %v", sigs)
	}
	in := sigs.SignatureDef["serving_default"].Inputs["images"]
	if in.GetDtype() != typespb.DataType_DT_FLOAT || fmt.Sprint(shapeDims(in.GetTensorShape())) != "[-1 8 8 3]" {
		t.Errorf("input %v", in)
	}

	st := &pb.GetModelStatusResponse{}
	if err := s.invoke("ModelService/GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: spec("pets")}, st); err != nil {
		t.Fatal(err)
	}
	if len(st.ModelVersionStatus) != 1 || st.ModelVersionStatus[0].Version != 3 ||
		st.ModelVersionStatus[0].State != pb.ModelVersionStatus_AVAILABLE || st.ModelVersionStatus[0].Status.GetErrorCode() != 0 {
		t.Errorf("status %v", st)
	}
}

// reloadable is a Models that records the configs it is given.
type reloadable struct {
	serving.Models
	got []*configpb.ModelServerConfig
	err error
}

func (r *reloadable) Reload(cfg *configpb.ModelServerConfig) error {
	r.got = append(r.got, cfg)
	return r.err
}

// TestReloadConfig: HandleReloadConfigRequest reaches the Models' Reload,
// with its error as the RPC's.
func TestReloadConfig(t *testing.T) {
	srv, err := serving.New(testmodel.Fake{}, serving.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := &reloadable{Models: serving.One(srv)}
	gs := grpc.NewServer()
	grpcapi.Register(gs, r)
	conn, stop := grpctest.Serve(t, gs)
	defer stop()
	s := &server{conn: conn}
	cfg := &configpb.ModelServerConfig{Config: &configpb.ModelServerConfig_ModelConfigList{ModelConfigList: &configpb.ModelConfigList{
		Config: []*configpb.ModelConfig{{Name: "pets", BasePath: "/models/pets"}}}}}
	resp := &pb.ReloadConfigResponse{}
	if err := s.invoke("ModelService/HandleReloadConfigRequest", &pb.ReloadConfigRequest{Config: cfg}, resp); err != nil {
		t.Fatal(err)
	}
	if len(r.got) != 1 || !proto.Equal(r.got[0], cfg) || resp.Status.GetErrorCode() != 0 {
		t.Errorf("reload got %v, answered %v", r.got, resp)
	}
	r.err = fmt.Errorf("model config: %w", os.ErrNotExist)
	err = s.invoke("ModelService/HandleReloadConfigRequest", &pb.ReloadConfigRequest{Config: cfg}, resp)
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "model config: file does not exist") {
		t.Errorf("a failed reload: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func dims(t *tensorpb.TensorProto) []int64 { return shapeDims(t.GetTensorShape()) }

func shapeDims(s *shapepb.TensorShapeProto) []int64 {
	var d []int64
	for _, x := range s.GetDim() {
		d = append(d, x.GetSize())
	}
	return d
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

func keys[V any](m map[string]V) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}
