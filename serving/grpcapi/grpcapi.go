// Package grpcapi answers TensorFlow Serving's gRPC API for the models of a
// serving.Models, so that clients written for TensorFlow Serving (the
// tensorflow-serving-api Python package, Go and Java stubs) work against tfcat
// serve:
//
//	tensorflow.serving.PredictionService  Predict, Classify, Regress, MultiInference, GetModelMetadata
//	tensorflow.serving.ModelService       GetModelStatus, HandleReloadConfigRequest
//
// The messages are graft's (tensorflow/serving/apis_go_proto); the service
// descriptions are written here, as graft carries no gRPC stubs.
//
// Every prediction goes through the model version's serving.Server
// (Server.Predict): the same request slots, memory budget, pixel limit,
// deadline and batcher as the REST API, so that both protocols' requests
// share batches and limits. The gRPC deadline is the request's context;
// Config.RequestTimeout bounds it as for REST.
//
// Predict takes the signature's input, "images", as a DT_FLOAT tensor
// [N, H, W, C] (float_val or tensor_content, each image preprocessed as
// tfcat predict does) or, a tfcat extension matching the REST API's {"b64":
// ...}, a DT_STRING tensor [N] of encoded JPEG, PNG or BMP images, which the
// server preprocesses. It answers "probabilities" (DT_FLOAT [N, classes]) and
// "classes" (DT_INT64 [N], the argmax), or those named in output_filter, in
// float_val and int64_val as TensorFlow Serving does, and the model_spec
// with the version that answered.
//
// Classify takes tf.Examples, each carrying one image under the feature
// ImageFeature ("image/encoded", a bytes_list of one encoded image) or
// TensorFeature ("images", a float_list of H×W×C preprocessed values); an
// ExampleListWithContext's context supplies a feature an example lacks. It
// answers each class's name and probability. tfcat's models export only a
// predict signature (serving_default), where TensorFlow Serving would refuse
// Classify; tfcat answers it from that signature, as its REST API's
// :classify-image does, because an image classifier's Classify has one
// meaning. Regress is refused (INVALID_ARGUMENT: not a regression model), as
// TensorFlow Serving refuses it for a predict signature; MultiInference runs
// its classify task and refuses regress tasks the same way.
//
// Errors carry TensorFlow Serving's codes: INVALID_ARGUMENT for a malformed
// request (missing model spec, wrong dtype or shape, unknown input or output
// alias, an undecodable image or one over the pixel limit, an example
// without the image), FAILED_PRECONDITION for an unknown signature in
// Predict, NOT_FOUND for an unknown model, version or label,
// RESOURCE_EXHAUSTED for a message over the size limit or a request that
// found no memory or request slot within its deadline, DEADLINE_EXCEEDED when
// the deadline passed while predicting, UNAVAILABLE once the version is
// closed, INTERNAL when the model fails. NaN and Inf in tensors are accepted,
// as REST accepts them.
package grpcapi

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/serving"
)

// The services' full names, as in the methods' paths (/NAME/METHOD).
const (
	PredictionServiceName = "tensorflow.serving.PredictionService"
	ModelServiceName      = "tensorflow.serving.ModelService"
)

// DefaultMaxConcurrentStreams is Options.MaxConcurrentStreams's default: the
// RPCs one connection may have in flight.
const DefaultMaxConcurrentStreams = serving.DefaultMaxConcurrentRequests

// Options set up the gRPC server NewServer returns.
type Options struct {
	// MaxRecvMsgSize limits a request message in bytes;
	// serving.DefaultMaxBodyBytes (REST's body limit) when zero. gRPC
	// refuses a larger one with RESOURCE_EXHAUSTED before reading it.
	MaxRecvMsgSize int
	// MaxConcurrentStreams bounds the RPCs in flight on one connection;
	// DefaultMaxConcurrentStreams when zero. gRPC reads a message whole
	// before it is answered, so this, the connections and MaxRecvMsgSize
	// bound the memory of messages being received; once received, a
	// message counts against its version's Config.DecodeMemory.
	MaxConcurrentStreams uint32
	// ServerOptions are given to grpc.NewServer after these: TLS
	// credentials, interceptors, keepalive.
	ServerOptions []grpc.ServerOption
}

// NewServer returns a gRPC server answering PredictionService and
// ModelService for models. Serve it on a listener; GracefulStop (or Stop) it
// before closing the models.
func NewServer(models serving.Models, opt Options) *grpc.Server {
	if opt.MaxRecvMsgSize == 0 {
		opt.MaxRecvMsgSize = serving.DefaultMaxBodyBytes
	}
	if opt.MaxConcurrentStreams == 0 {
		opt.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(opt.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(opt.MaxConcurrentStreams),
	}, opt.ServerOptions...)
	s := grpc.NewServer(opts...)
	Register(s, models)
	return s
}

// Register registers PredictionService and ModelService for models on s, for
// a gRPC server set up elsewhere.
func Register(s grpc.ServiceRegistrar, models serving.Models) {
	svc := &service{models: models}
	s.RegisterService(&predictionServiceDesc, svc)
	s.RegisterService(&modelServiceDesc, svc)
}

// service answers both services' methods.
type service struct{ models serving.Models }

// handlerType is what grpc.Server.RegisterService checks the service against.
type handlerType interface {
	acquire(*pb.ModelSpec) (*serving.Server, int64, func(), error)
}

// handler is a method's body: a request message in, a response out.
type handler[Req, Resp proto.Message] func(*service, context.Context, Req) (Resp, error)

// unary makes the grpc.MethodDesc of a unary method: it decodes the request
// into a new Req and runs h through the server's interceptor, as generated
// stubs do.
func unary[R any, Req interface {
	*R
	proto.Message
}, Resp proto.Message](serviceName, method string, h handler[Req, Resp]) grpc.MethodDesc {
	full := "/" + serviceName + "/" + method
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := Req(new(R))
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return h(srv.(*service), ctx, req.(Req))
			}
			if ic == nil {
				return call(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
		},
	}
}

// The service descriptions; the method names and message types are those of
// tensorflow_serving/apis/prediction_service.proto and model_service.proto.
var (
	predictionServiceDesc = grpc.ServiceDesc{
		ServiceName: PredictionServiceName,
		HandlerType: (*handlerType)(nil),
		Methods: []grpc.MethodDesc{
			unary(PredictionServiceName, "Classify", (*service).classify),
			unary(PredictionServiceName, "Regress", (*service).regress),
			unary(PredictionServiceName, "Predict", (*service).predict),
			unary(PredictionServiceName, "MultiInference", (*service).multiInference),
			unary(PredictionServiceName, "GetModelMetadata", (*service).getModelMetadata),
		},
		Metadata: "tensorflow/serving/apis/prediction_service.proto",
	}
	modelServiceDesc = grpc.ServiceDesc{
		ServiceName: ModelServiceName,
		HandlerType: (*handlerType)(nil),
		Methods: []grpc.MethodDesc{
			unary(ModelServiceName, "GetModelStatus", (*service).getModelStatus),
			unary(ModelServiceName, "HandleReloadConfigRequest", (*service).reloadConfig),
		},
		Metadata: "tensorflow/serving/apis/model_service.proto",
	}
)

// Reloader is what HandleReloadConfigRequest needs of the Models: a
// servables.Manager is one.
type Reloader interface {
	Reload(*configpb.ModelServerConfig) error
}

// toSpec reads a request's ModelSpec as a serving.ModelSpec.
func toSpec(spec *pb.ModelSpec) (serving.ModelSpec, error) {
	if spec == nil {
		return serving.ModelSpec{}, status.Error(codes.InvalidArgument, "Missing ModelSpec")
	}
	if spec.GetName() == "" {
		return serving.ModelSpec{}, status.Error(codes.InvalidArgument, "Missing model name in ModelSpec")
	}
	s := serving.ModelSpec{Name: spec.GetName(), Label: spec.GetVersionLabel()}
	if v := spec.GetVersion(); v != nil {
		if v.GetValue() <= 0 {
			// ModelSpec's 0 means the latest: a version given as 0 or
			// less names none.
			return s, status.Errorf(codes.NotFound, "Servable not found for request: Specific(%s, %d)", s.Name, v.GetValue())
		}
		s.Version = v.GetValue()
	}
	return s, nil
}

// acquire returns the Server answering spec, its version and its release.
func (s *service) acquire(spec *pb.ModelSpec) (*serving.Server, int64, func(), error) {
	ms, err := toSpec(spec)
	if err != nil {
		return nil, 0, nil, err
	}
	srv, v, release, err := s.models.Acquire(ms)
	if err != nil {
		return nil, 0, nil, modelsError(err)
	}
	return srv, v, release, nil
}

// modelsError is a failed Acquire or Status: NOT_FOUND for an unknown model,
// version or label, UNAVAILABLE otherwise (the models are closing), as REST's
// 404 and 503.
func modelsError(err error) error {
	var nf *serving.NotFoundError
	if errors.As(err, &nf) {
		return status.Error(codes.NotFound, nf.Msg)
	}
	return status.Error(codes.Unavailable, err.Error())
}

// grpcError gives err its gRPC status: the code serving.ErrorCode reports
// (TensorFlow's codes are gRPC's), or err's own status.
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Code(serving.ErrorCode(err)), err.Error())
}

// specOf is the ModelSpec a response carries: the model, the version that
// answered and the signature, TensorFlow Serving's serving_default when the
// request named none.
func specOf(name string, version int64, signature string) *pb.ModelSpec {
	if signature == "" {
		signature = signatureKey
	}
	return &pb.ModelSpec{Name: name, SignatureName: signature, VersionChoice: versionOf(version)}
}

func invalid(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}
