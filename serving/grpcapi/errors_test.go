package grpcapi_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	examplepb "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

func predictReq(t *tensorpb.TensorProto) *pb.PredictRequest {
	return &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: map[string]*tensorpb.TensorProto{"images": t}}
}

func fakeImages(n int) *tensorpb.TensorProto {
	return floatTensor(testmodel.Images(n, testmodel.FakeSize, 1), int64(n), 8, 8, 3)
}

func versioned(v int64) *pb.ModelSpec {
	return &pb.ModelSpec{Name: "pets", VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(v)}}
}

// TestErrors: each bad request gets TensorFlow Serving's status code and a
// message saying what is wrong, and the server keeps answering.
func TestErrors(t *testing.T) {
	s := start(t, testmodel.Fake{}, serving.Config{MaxInstances: 4}, grpcapi.Options{MaxRecvMsgSize: 1 << 20})
	withInputs := func(in map[string]*tensorpb.TensorProto) *pb.PredictRequest {
		return &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: in}
	}
	filtered := func(names ...string) *pb.PredictRequest {
		r := predictReq(fakeImages(1))
		r.OutputFilter = names
		return r
	}
	short := fakeImages(1)
	short.FloatVal = short.FloatVal[:10]
	content := contentTensor(testmodel.Images(1, testmodel.FakeSize, 1), 1, 8, 8, 3)
	content.TensorContent = content.TensorContent[:100]
	bigImages := contentTensor(make([]float32, 2<<20/4), 2<<20/4/testmodel.FakeSize+1, 8, 8, 3)
	noImage := examples(nil)
	noImage.GetExampleList().Examples[0].Features.Feature["image"] = bytesFeature(hostile.Gradient(8, 8, 1))
	twoValues := examples(&examplepb.Feature{Kind: &examplepb.Feature_BytesList{BytesList: &examplepb.BytesList{Value: [][]byte{{1}, {2}}}}})
	task := func(name, method string) *pb.InferenceTask {
		return &pb.InferenceTask{ModelSpec: spec(name), MethodName: method}
	}
	img := examples(bytesFeature(hostile.Gradient(8, 8, 1)))
	cases := []struct {
		name   string
		method string
		req    proto.Message
		code   codes.Code
		msg    string
	}{
		{"no model spec", "Predict", &pb.PredictRequest{}, codes.InvalidArgument, "Missing ModelSpec"},
		{"no model name", "Predict", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{}}, codes.InvalidArgument, "Missing model name"},
		{"unknown model", "Predict", &pb.PredictRequest{ModelSpec: spec("cats")}, codes.NotFound, "Servable not found for request: Latest(cats)"},
		{"unknown version", "Predict", &pb.PredictRequest{ModelSpec: versioned(2)}, codes.NotFound, "Servable not found for request: Specific(pets, 2)"},
		{"version 0", "Predict", &pb.PredictRequest{ModelSpec: versioned(0)}, codes.NotFound, "Specific(pets, 0)"},
		{"unknown label", "Predict", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: &pb.ModelSpec_VersionLabel{VersionLabel: "canary"}}},
			codes.NotFound, "Unrecognized servable version label: canary"},
		{"unknown signature", "Predict", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets", SignatureName: "predict"}},
			codes.FailedPrecondition, `Serving signature key "predict" not found.`},
		{"no inputs", "Predict", withInputs(nil), codes.InvalidArgument, `the request has no inputs: the signature's input is "images"`},
		{"unknown input", "Predict", withInputs(map[string]*tensorpb.TensorProto{"x": fakeImages(1)}), codes.InvalidArgument,
			"input tensor alias not found in signature: x. Inputs expected to be in the set {images}."},
		{"two inputs", "Predict", withInputs(map[string]*tensorpb.TensorProto{"images": fakeImages(1), "y": fakeImages(1)}), codes.InvalidArgument,
			"input size does not match signature: 2!=1"},
		{"double", "Predict", predictReq(&tensorpb.TensorProto{Dtype: typespb.DataType_DT_DOUBLE, TensorShape: shape(1, 8, 8, 3), DoubleVal: make([]float64, testmodel.FakeSize)}),
			codes.InvalidArgument, "input images: dtype DT_DOUBLE; the signature takes DT_FLOAT [N,8,8,3]"},
		{"channels", "Predict", predictReq(floatTensor(make([]float32, 64), 1, 8, 8, 1)), codes.InvalidArgument, "shape [1,8,8,1]; the model takes [N,8,8,3]"},
		{"rank", "Predict", predictReq(floatTensor(make([]float32, testmodel.FakeSize), 8, 8, 3)), codes.InvalidArgument, "shape [8,8,3]"},
		{"empty batch", "Predict", predictReq(floatTensor(nil, 0, 8, 8, 3)), codes.InvalidArgument, "shape [0,8,8,3]"},
		{"huge batch", "Predict", predictReq(floatTensor(nil, 1<<40, 8, 8, 3)), codes.InvalidArgument, "holds too many values"},
		{"short float_val", "Predict", predictReq(short), codes.InvalidArgument, "10 float_val values for shape [1,8,8,3]: send all 192"},
		{"short tensor_content", "Predict", predictReq(content), codes.InvalidArgument, "100 bytes of tensor_content"},
		{"unknown output", "Predict", filtered("logits"), codes.InvalidArgument, "output tensor alias not found in signature: logits"},
		{"duplicate output", "Predict", filtered("classes", "classes"), codes.InvalidArgument, "duplicate output tensor alias: classes"},
		{"too many images", "Predict", predictReq(fakeImages(5)), codes.InvalidArgument, "5 images in one request, more than the limit of 4"},
		{"message too large", "Predict", predictReq(bigImages), codes.ResourceExhausted, "larger than max"},
		{"empty image", "Predict", predictReq(stringTensor([]byte{})), codes.InvalidArgument, "image 0 is empty"},
		{"corrupt image", "Predict", predictReq(stringTensor([]byte("not an image"))), codes.InvalidArgument, "instance 0: decoding"},
		{"string matrix", "Predict", predictReq(&tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, TensorShape: shape(1, 1), StringVal: [][]byte{{1}}}),
			codes.InvalidArgument, "DT_STRING of shape [1,1]"},
		{"png bomb", "Predict", predictReq(stringTensor(hostile.PNG(10000, 10000))), codes.InvalidArgument,
			"png of 10000x10000 is 100000000 pixels, the server's limit is 16777216"},
		{"jpeg bomb", "Predict", predictReq(stringTensor(hostile.Gradient(8, 8, 1), hostile.JPEG(10000, 10000))), codes.InvalidArgument,
			"instance 1: decoding the b64 image: image exceeds the pixel limit: jpeg of 10000x10000"},

		{"classify: no image", "Classify", &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: noImage}, codes.InvalidArgument,
			`example 0: no feature "image/encoded" (an encoded JPEG, PNG or BMP image) or "images" (192 float values`},
		{"classify: two images", "Classify", &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: twoValues}, codes.InvalidArgument,
			`feature "image/encoded" must be a bytes_list of one encoded image`},
		{"classify: empty", "Classify", &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: &pb.Input{}}, codes.InvalidArgument, "Input is empty."},
		{"classify: signature", "Classify", &pb.ClassificationRequest{ModelSpec: &pb.ModelSpec{Name: "pets", SignatureName: "cls"}, Input: img},
			codes.InvalidArgument, "No signature was found with the name: cls"},
		{"classify: unknown model", "Classify", &pb.ClassificationRequest{ModelSpec: spec("cats"), Input: img}, codes.NotFound, "Latest(cats)"},
		{"classify: bomb", "Classify", &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: examples(bytesFeature(hostile.PNG(10000, 10000)))},
			codes.InvalidArgument, "the server's limit is 16777216"},
		{"regress", "Regress", &pb.RegressionRequest{ModelSpec: spec("pets"), Input: img}, codes.InvalidArgument,
			"Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict"},
		{"regress: unknown model", "Regress", &pb.RegressionRequest{ModelSpec: spec("cats"), Input: img}, codes.NotFound, "Latest(cats)"},
		{"multi: no tasks", "MultiInference", &pb.MultiInferenceRequest{Input: img}, codes.InvalidArgument, "no tasks"},
		{"multi: regress", "MultiInference", &pb.MultiInferenceRequest{Input: img, Tasks: []*pb.InferenceTask{task("pets", "tensorflow/serving/regress")}},
			codes.InvalidArgument, "Expected regression signature"},
		{"multi: predict", "MultiInference", &pb.MultiInferenceRequest{Input: img, Tasks: []*pb.InferenceTask{task("pets", "tensorflow/serving/predict")}},
			codes.Unimplemented, "Unsupported signature method_name: tensorflow/serving/predict"},
		{"multi: two models", "MultiInference", &pb.MultiInferenceRequest{Input: img,
			Tasks: []*pb.InferenceTask{task("pets", "tensorflow/serving/classify"), task("cats", "tensorflow/serving/classify")}},
			codes.InvalidArgument, "must access the same model name"},
		{"multi: twice", "MultiInference", &pb.MultiInferenceRequest{Input: img,
			Tasks: []*pb.InferenceTask{task("pets", "tensorflow/serving/classify"), task("pets", "tensorflow/serving/classify")}},
			codes.InvalidArgument, "Duplicate evaluation of signature: serving_default"},
		{"metadata: no field", "GetModelMetadata", &pb.GetModelMetadataRequest{ModelSpec: spec("pets")}, codes.InvalidArgument,
			"must specify at least one metadata_field"},
		{"metadata: unknown field", "GetModelMetadata", &pb.GetModelMetadataRequest{ModelSpec: spec("pets"), MetadataField: []string{"graph"}},
			codes.InvalidArgument, "Metadata field graph is not supported"},
		{"metadata: unknown model", "GetModelMetadata", &pb.GetModelMetadataRequest{ModelSpec: spec("cats"), MetadataField: []string{"signature_def"}},
			codes.NotFound, "Latest(cats)"},
		{"status: no spec", "ModelService/GetModelStatus", &pb.GetModelStatusRequest{}, codes.InvalidArgument, "Missing ModelSpec"},
		{"status: unknown model", "ModelService/GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: spec("cats")}, codes.NotFound, "Latest(cats)"},
		{"status: unknown version", "ModelService/GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: versioned(9)}, codes.NotFound,
			"Could not find version 9 of model pets"},
		{"status: version 0", "ModelService/GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: versioned(0)}, codes.NotFound,
			"Could not find version 0 of model pets"},
		{"reload: one model", "ModelService/HandleReloadConfigRequest", &pb.ReloadConfigRequest{Config: &configpb.ModelServerConfig{}},
			codes.Unimplemented, "cannot be reloaded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.invoke(tc.method, tc.req, &emptyReply{})
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("got %v: %q; want %v: ...%s...", status.Code(err), status.Convert(err).Message(), tc.code, tc.msg)
			}
		})
	}
	// Still answering, and NaN goes through as REST lets it.
	x := testmodel.Images(1, testmodel.FakeSize, 1)
	x[0] = float32(math.NaN())
	resp := s.predict(t, predictReq(floatTensor(x, 1, 8, 8, 3)))
	if p := resp.Outputs["probabilities"].GetFloatVal(); len(p) != 3 || !math.IsNaN(float64(p[0])) {
		t.Errorf("NaN image: probabilities %v", p)
	}
	if st := s.srv.Stats(); st.OverLimit != 3 {
		t.Errorf("stats %+v: want the 3 bombs counted as over the limit", st)
	}
}

// emptyReply accepts any reply: the error cases look at the status only.
type emptyReply = pb.PredictResponse

// TestLimitCodes: a request needing more memory than the whole budget gets
// RESOURCE_EXHAUSTED; the server's deadline passing while predicting,
// DEADLINE_EXCEEDED; the client's deadline ends the handler's work;
// a closed version answers UNAVAILABLE.
func TestLimitCodes(t *testing.T) {
	t.Run("budget", func(t *testing.T) {
		s := start(t, testmodel.Fake{}, serving.Config{MaxImagePixels: 1 << 30, DecodeMemory: 8 << 20}, grpcapi.Options{})
		err := s.invoke("Predict", predictReq(stringTensor(hostile.PNG(10000, 10000))), &pb.PredictResponse{})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "bytes of decode memory needed, and it has 8388608 in all") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("server deadline", func(t *testing.T) {
		s := start(t, testmodel.Fake{Delay: 500 * time.Millisecond}, serving.Config{RequestTimeout: 100 * time.Millisecond}, grpcapi.Options{})
		err := s.invoke("Predict", predictReq(fakeImages(1)), &pb.PredictResponse{})
		if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "the request's deadline of 100ms passed") {
			t.Errorf("got %v", err)
		}
		if st := s.srv.Stats(); st.TimedOut != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("client deadline", func(t *testing.T) {
		// The handler's own answer, seen through an interceptor: the
		// client's deadline reached it as the request's context.
		var mu sync.Mutex
		var handlerErr error
		var took time.Duration
		record := grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			t0 := time.Now()
			resp, err := h(ctx, req)
			mu.Lock()
			handlerErr, took = err, time.Since(t0)
			mu.Unlock()
			return resp, err
		})
		s := start(t, testmodel.Fake{Delay: time.Second}, serving.Config{}, grpcapi.Options{ServerOptions: []grpc.ServerOption{record}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := s.invokeCtx(ctx, "Predict", predictReq(fakeImages(1)), &pb.PredictResponse{})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("client got %v", err)
		}
		for range 100 {
			mu.Lock()
			done := handlerErr != nil
			mu.Unlock()
			if done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		// The client's deadline ends the call on both sides: the server's
		// context ends at its deadline, or as the client resets the
		// stream, whichever comes first.
		if c := status.Code(handlerErr); (c != codes.DeadlineExceeded && c != codes.Canceled) || took > 600*time.Millisecond {
			t.Errorf("the handler answered %v after %v, want DEADLINE_EXCEEDED or CANCELLED at the client's deadline", handlerErr, took)
		}
	})
	t.Run("busy", func(t *testing.T) {
		// One request holds the only slot; the next waits until its
		// deadline (the client's, which ends the call on both sides at
		// once: Stats tells the server's reason).
		entered := make(chan struct{}, 1)
		s := start(t, testmodel.Fake{Delay: 800 * time.Millisecond, Entered: entered}, serving.Config{MaxConcurrentRequests: 1}, grpcapi.Options{})
		done := make(chan error)
		go func() { done <- s.invoke("Predict", predictReq(fakeImages(1)), &pb.PredictResponse{}) }()
		<-entered
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := s.invokeCtx(ctx, "Predict", predictReq(fakeImages(1)), &pb.PredictResponse{})
		if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.ResourceExhausted {
			t.Errorf("waiting request: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("first request: %v", err)
		}
		if st := s.srv.Stats(); st.Busy != 1 {
			t.Errorf("stats %+v: want one request turned away busy", st)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s := start(t, testmodel.Fake{}, serving.Config{}, grpcapi.Options{})
		s.srv.Close()
		err := s.invoke("Predict", predictReq(fakeImages(1)), &pb.PredictResponse{})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("got %v", err)
		}
	})
}
