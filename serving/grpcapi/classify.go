package grpcapi

import (
	"context"

	examplepb "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/serving"
)

// The tf.Example features Classify reads an image from.
const (
	// ImageFeature holds an encoded JPEG, PNG or BMP image (a bytes_list of
	// one value), preprocessed by the server as tfcat predict does. The
	// name is the one TensorFlow's image datasets and tutorials use.
	ImageFeature = "image/encoded"
	// TensorFeature holds one preprocessed image (a float_list of H×W×C
	// values in HWC order), the signature's input name.
	TensorFeature = savedmodel.InputKey
)

// TensorFlow's method names of classification and regression signatures.
const (
	classifyMethod = "tensorflow/serving/classify"
	regressMethod  = "tensorflow/serving/regress"
)

func (s *service) classify(ctx context.Context, req *pb.ClassificationRequest) (*pb.ClassificationResponse, error) {
	srv, version, release, err := s.acquire(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	defer release()
	sig := req.GetModelSpec().GetSignatureName()
	if sig != "" && sig != signatureKey {
		return nil, invalid("No signature was found with the name: %s", sig)
	}
	res, err := runClassify(ctx, srv, req.GetInput(), proto.Size(req))
	if err != nil {
		return nil, err
	}
	return &pb.ClassificationResponse{ModelSpec: specOf(req.GetModelSpec().GetName(), version, sig), Result: res}, nil
}

// runClassify predicts the examples of in and names each class's score.
func runClassify(ctx context.Context, srv *serving.Server, in *pb.Input, msgBytes int) (*pb.ClassificationResult, error) {
	input, err := exampleInput(srv, in)
	if err != nil {
		return nil, err
	}
	input.MessageBytes = int64(msgBytes)
	probs, err := srv.Predict(ctx, input)
	if err != nil {
		return nil, grpcError(err)
	}
	names, k := srv.Classes(), srv.NumClasses()
	res := &pb.ClassificationResult{Classifications: make([]*pb.Classifications, input.N)}
	for i := range input.N {
		cls := make([]*pb.Class, k)
		for j := range k {
			cls[j] = &pb.Class{Label: names[j], Score: probs[i*k+j]}
		}
		res.Classifications[i] = &pb.Classifications{Classes: cls}
	}
	return res, nil
}

// exampleInput reads one image from each example: an encoded one under
// ImageFeature, else a tensor under TensorFeature, looked up in the example
// and then in the context.
func exampleInput(srv *serving.Server, in *pb.Input) (serving.Input, error) {
	var examples []*examplepb.Example
	var ctxEx *examplepb.Example
	switch k := in.GetKind().(type) {
	case *pb.Input_ExampleList:
		examples = k.ExampleList.GetExamples()
	case *pb.Input_ExampleListWithContext:
		examples, ctxEx = k.ExampleListWithContext.GetExamples(), k.ExampleListWithContext.GetContext()
	}
	n := len(examples)
	if n == 0 {
		return serving.Input{}, invalid("Input is empty.")
	}
	// The tensor is allocated before the memory budget is taken, as REST's
	// parser does: bounded by the instances allowed.
	if n > srv.MaxInstances() {
		return serving.Input{}, invalid("%d examples in one request, more than the limit of %d", n, srv.MaxInstances())
	}
	h, w, c := srv.InputSize()
	size := h * w * c
	var x []float32
	images := make([][]byte, n)
	encoded := 0
	for i, ex := range examples {
		if f := feature(ex, ctxEx, ImageFeature); f != nil {
			v := f.GetBytesList().GetValue()
			if len(v) != 1 || len(v[0]) == 0 {
				return serving.Input{}, invalid("example %d: feature %q must be a bytes_list of one encoded image (JPEG, PNG or BMP)", i, ImageFeature)
			}
			images[i] = v[0]
			encoded++
			continue
		}
		if f := feature(ex, ctxEx, TensorFeature); f != nil {
			v := f.GetFloatList().GetValue()
			if len(v) != size {
				return serving.Input{}, invalid("example %d: feature %q must be a float_list of %d values (%dx%dx%d, HWC order), not %d", i, TensorFeature, size, h, w, c, len(v))
			}
			if x == nil {
				x = make([]float32, n*size)
			}
			copy(x[i*size:], v)
			continue
		}
		return serving.Input{}, invalid("example %d: no feature %q (an encoded JPEG, PNG or BMP image) or %q (%d float values of a preprocessed %dx%dx%d image)", i, ImageFeature, TensorFeature, size, h, w, c)
	}
	if encoded == 0 {
		images = nil
	}
	return serving.Input{N: n, X: x, Images: images}, nil
}

// feature is ex's feature name, or the context's.
func feature(ex, ctxEx *examplepb.Example, name string) *examplepb.Feature {
	if f := ex.GetFeatures().GetFeature()[name]; f != nil {
		return f
	}
	return ctxEx.GetFeatures().GetFeature()[name]
}

// notRegression refuses a regression of the predict signature, as
// TensorFlow Serving does.
func notRegression(sig string) error {
	if sig != "" && sig != signatureKey {
		return invalid("No signature was found with the name: %s", sig)
	}
	return invalid("Expected regression signature method_name to be %s. Was: %s", regressMethod, savedmodel.PredictMethod)
}

func (s *service) regress(_ context.Context, req *pb.RegressionRequest) (*pb.RegressionResponse, error) {
	_, _, release, err := s.acquire(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	release()
	return nil, notRegression(req.GetModelSpec().GetSignatureName())
}

// multiInference runs the tasks on one input: classify tasks as Classify,
// each signature once; regress tasks are refused as Regress is.
func (s *service) multiInference(ctx context.Context, req *pb.MultiInferenceRequest) (*pb.MultiInferenceResponse, error) {
	tasks := req.GetTasks()
	if len(tasks) == 0 {
		return nil, invalid("MultiInferenceRequest has no tasks")
	}
	name := tasks[0].GetModelSpec().GetName()
	seen := map[string]bool{}
	for _, t := range tasks {
		switch t.GetModelSpec().GetName() {
		case "":
			return nil, invalid("Found ModelSpec with an empty model name.")
		case name:
		default:
			return nil, invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
		}
		sig := t.GetModelSpec().GetSignatureName()
		if sig == "" {
			sig = signatureKey
		}
		if seen[sig] {
			return nil, invalid("Duplicate evaluation of signature: %s", sig)
		}
		seen[sig] = true
	}
	srv, version, release, err := s.acquire(tasks[0].GetModelSpec())
	if err != nil {
		return nil, err
	}
	defer release()
	for _, t := range tasks {
		sig := t.GetModelSpec().GetSignatureName()
		if sig != "" && sig != signatureKey {
			return nil, invalid("Requested signature not found in model graph: %s", sig)
		}
		switch t.GetMethodName() {
		case classifyMethod:
		case regressMethod:
			return nil, notRegression(sig)
		default:
			return nil, status.Errorf(codes.Unimplemented, "Unsupported signature method_name: %s", t.GetMethodName())
		}
	}
	res, err := runClassify(ctx, srv, req.GetInput(), proto.Size(req))
	if err != nil {
		return nil, err
	}
	// Each signature appears once, and there is one: one task.
	return &pb.MultiInferenceResponse{Results: []*pb.InferenceResult{{
		ModelSpec: specOf(name, version, tasks[0].GetModelSpec().GetSignatureName()),
		Result:    &pb.InferenceResult_ClassificationResult{ClassificationResult: res},
	}}}, nil
}
