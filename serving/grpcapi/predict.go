package grpcapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
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
	h, w, c := srv.InputSize()
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
		if len(dims) != 4 || dims[0] < 1 || dims[1] != int64(h) || dims[2] != int64(w) || dims[3] != int64(c) {
			return serving.Input{}, invalid("input %s: shape %s; the model takes [N,%d,%d,%d] with N ≥ 1", inputKey, shapeString(dims), h, w, c)
		}
		size := int64(h * w * c)
		if dims[0] > math.MaxInt32/size {
			return serving.Input{}, invalid("input %s: shape %s holds too many values", inputKey, shapeString(dims))
		}
		n := int(dims[0])
		count := int(dims[0] * size)
		switch {
		case len(t.GetTensorContent()) > 0:
			b := t.GetTensorContent()
			if len(b) != 4*count {
				return serving.Input{}, invalid("tensor parsing error: %s: %d bytes of tensor_content for shape %s (%d float32 values)", inputKey, len(b), shapeString(dims), count)
			}
			x := make([]float32, count)
			for i := range x {
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			return serving.Input{N: n, X: x}, nil
		case len(t.GetFloatVal()) == count:
			// The message's own values: nothing to copy.
			return serving.Input{N: n, X: t.GetFloatVal()}, nil
		}
		// TensorFlow would repeat the last value to fill the shape; a
		// short tensor is more likely a client's mistake.
		return serving.Input{}, invalid("tensor parsing error: %s: %d float_val values for shape %s: send all %d", inputKey, len(t.GetFloatVal()), shapeString(dims), count)
	case typespb.DataType_DT_STRING:
		n := int64(1)
		switch {
		case len(dims) == 1 && dims[0] >= 1:
			n = dims[0]
		case len(dims) != 0:
			return serving.Input{}, invalid("input %s: DT_STRING of shape %s; encoded images are a tensor [N] with N ≥ 1", inputKey, shapeString(dims))
		}
		imgs := t.GetStringVal()
		if int64(len(imgs)) != n {
			return serving.Input{}, invalid("tensor parsing error: %s: %d string_val values for shape %s", inputKey, len(imgs), shapeString(dims))
		}
		for i, b := range imgs {
			if len(b) == 0 {
				return serving.Input{}, invalid("input %s: image %d is empty: send the bytes of a JPEG, PNG or BMP image", inputKey, i)
			}
		}
		return serving.Input{N: int(n), Images: imgs}, nil
	}
	return serving.Input{}, invalid("input %s: dtype %s; the signature takes DT_FLOAT [N,%d,%d,%d] (or DT_STRING [N] of encoded JPEG, PNG or BMP images)", inputKey, t.GetDtype(), h, w, c)
}

func shapeString(dims []int64) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ",") + "]"
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
