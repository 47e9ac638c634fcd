package grpcapi

import (
	"context"
	"errors"
	"slices"
	"strings"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/serving"
)

// The signature's names (savedmodel's, as the export writes them).
const (
	signatureKey     = savedmodel.SignatureKey
	inputKey         = savedmodel.InputKey
	probabilitiesKey = savedmodel.ProbabilitiesKey
	classesKey       = savedmodel.ClassesKey
)

func versionOf(v int64) *pb.ModelSpec_Version {
	return &pb.ModelSpec_Version{Version: wrapperspb.Int64(v)}
}

func (s *service) predict(ctx context.Context, req *pb.PredictRequest) (*pb.PredictResponse, error) {
	srv, version, release, err := s.acquire(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	defer release()
	sig := req.GetModelSpec().GetSignatureName()
	if sig != "" && sig != signatureKey {
		return nil, status.Errorf(codes.FailedPrecondition, "Serving signature key %q not found.", sig)
	}
	t, err := signatureInput(req.GetInputs())
	if err != nil {
		return nil, err
	}
	outputs, err := outputFilter(req.GetOutputFilter())
	if err != nil {
		return nil, err
	}
	in, err := tensorInput(srv, t)
	if err != nil {
		return nil, err
	}
	in.MessageBytes = int64(proto.Size(req))
	probs, err := srv.Predict(ctx, in)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &pb.PredictResponse{
		ModelSpec: specOf(req.GetModelSpec().GetName(), version, sig),
		Outputs:   make(map[string]*tensorpb.TensorProto, len(outputs)),
	}
	k := srv.NumClasses()
	for _, name := range outputs {
		resp.Outputs[name] = outputTensor(name, probs, in.N, k)
	}
	return resp, nil
}

// signatureInput is the request's one input, which must be the signature's.
func signatureInput(inputs map[string]*tensorpb.TensorProto) (*tensorpb.TensorProto, error) {
	if t, ok := inputs[inputKey]; ok && len(inputs) == 1 {
		return t, nil
	}
	var extra []string
	for name := range inputs {
		if name != inputKey {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	switch len(inputs) {
	case 0:
		return nil, invalid("the request has no inputs: the signature's input is %q", inputKey)
	case 1:
		return nil, invalid("input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", extra[0], inputKey)
	}
	return nil, invalid("input size does not match signature: %d!=1: the signature's only input is %q; sent extra: {%s}", len(inputs), inputKey, strings.Join(extra, ","))
}

// outputFilter checks a request's output_filter; empty, it names both outputs.
func outputFilter(names []string) ([]string, error) {
	if len(names) == 0 {
		return []string{classesKey, probabilitiesKey}, nil
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n != probabilitiesKey && n != classesKey {
			return nil, invalid("output tensor alias not found in signature: %s Outputs expected to be in the set {%s,%s}.", n, classesKey, probabilitiesKey)
		}
		if seen[n] {
			return nil, invalid("duplicate output tensor alias: %s", n)
		}
		seen[n] = true
	}
	return names, nil
}

// tensorInput reads the images tensor: DT_FLOAT [N, H, W, C] of preprocessed
// images, or DT_STRING [N] (or a scalar) of encoded ones.
func tensorInput(srv *serving.Server, t *tensorpb.TensorProto) (serving.Input, error) {
	shape := t.GetTensorShape()
	if shape.GetUnknownRank() {
		return serving.Input{}, invalid("input %s: the tensor's rank is unknown", inputKey)
	}
	dims := make([]int64, len(shape.GetDim()))
	for i, d := range shape.GetDim() {
		dims[i] = d.GetSize()
	}
	switch t.GetDtype() {
	case typespb.DataType_DT_FLOAT:
		ft, err := srv.FloatTensor(dims)
		if err != nil {
			return serving.Input{}, tensorError(err)
		}
		var in serving.Input
		if b := t.GetTensorContent(); len(b) > 0 {
			in, err = ft.Raw(b)
		} else {
			// TensorFlow would repeat the last value to fill the shape; a
			// short tensor is more likely a client's mistake.
			in, err = ft.Values(t.GetFloatVal())
		}
		return in, tensorError(err)
	case typespb.DataType_DT_STRING:
		n := int64(1)
		switch {
		case len(dims) == 1 && dims[0] >= 1:
			n = dims[0]
		case len(dims) != 0:
			return serving.Input{}, invalid("input %s: DT_STRING of shape %s; encoded images are a tensor [N] with N ≥ 1", inputKey, serving.ShapeString(dims))
		}
		in, err := srv.ImageInput(dims, n, t.GetStringVal())
		return in, tensorError(err)
	}
	h, w, c := srv.InputSize()
	return serving.Input{}, invalid("input %s: dtype %s; the signature takes DT_FLOAT [N,%d,%d,%d] (or DT_STRING [N] of encoded JPEG, PNG or BMP images)", inputKey, t.GetDtype(), h, w, c)
}

// tensorError is a refused tensor as INVALID_ARGUMENT, in TensorFlow
// Serving's words where they differ from serving's: values that do not fill
// the shape are a "tensor parsing error", named by the field that held them.
func tensorError(err error) error {
	var te *serving.TensorError
	if !errors.As(err, &te) {
		return err
	}
	shape := serving.ShapeString(te.Dims)
	switch te.Problem {
	case serving.TensorBytes:
		return invalid("tensor parsing error: %s: %d bytes of tensor_content for shape %s (%d float32 values)", inputKey, te.Got, shape, te.Want)
	case serving.TensorValues:
		return invalid("tensor parsing error: %s: %d float_val values for shape %s: send all %d", inputKey, te.Got, shape, te.Want)
	case serving.TensorImages:
		return invalid("tensor parsing error: %s: %d string_val values for shape %s", inputKey, te.Got, shape)
	}
	return invalid("%s", te)
}

// outputTensor is one output for n images of k probabilities, in the typed
// value fields as TensorFlow Serving writes them (Tensor::AsProtoField).
func outputTensor(name string, probs []float32, n, k int) *tensorpb.TensorProto {
	if name == classesKey {
		classes := make([]int64, n)
		for i := range classes {
			classes[i] = int64(metrics.ArgMax(probs[i*k : (i+1)*k]))
		}
		return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT64, TensorShape: shapeOf(int64(n)), Int64Val: classes}
	}
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shapeOf(int64(n), int64(k)), FloatVal: probs}
}

func shapeOf(dims ...int64) *shapepb.TensorShapeProto {
	s := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return s
}
