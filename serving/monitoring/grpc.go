package monitoring

import (
	"context"
	"strconv"
	"strings"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tfcat/tfcat/serving"
)

// V2ServiceName is KServe's v2 gRPC service, whose RPCs GRPCUnary labels
// APIGRPCV2.
const V2ServiceName = "inference.GRPCInferenceService"

// GRPCUnary returns an interceptor counting and timing every unary RPC, for
// grpc.UnaryInterceptor (grpc.ChainUnaryInterceptor with others): api "grpc",
// or "grpc_v2" for V2ServiceName's; method the RPC's ("Predict"); code the
// status code's TensorFlow name ("OK", "NOT_FOUND"). The model and version
// are what the handler reports (serving.ReportServed on the RPC's context),
// else the reply's model spec (TensorFlow Serving's replies carry the
// version that answered; v2's model_name and model_version), else the
// request's (model_spec, or v2's model_name and model_version).
func (m *Metrics) GRPCUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		t0 := time.Now()
		service, method := splitMethod(info.FullMethod)
		api := APIGRPC
		if service == V2ServiceName {
			api = APIGRPCV2
		}
		inFlight := m.inFlight.WithLabelValues(api)
		inFlight.Inc()
		defer inFlight.Dec()
		ctx, served := serving.WithServed(ctx)
		resp, err := handler(ctx, req)
		name, version := specOf(req, true)
		if err == nil {
			if n, v := specOf(resp, false); n != "" {
				name, version = n, v
			}
		}
		model, ver := m.modelVersion(served, name, version, err == nil)
		code := corepb.Code(status.Code(err)).String() // gRPC's codes are TensorFlow's
		m.requests.WithLabelValues(api, model, ver, method, code).Inc()
		m.latency.WithLabelValues(api, model, ver, method).Observe(time.Since(t0).Seconds())
		return resp, err
	}
}

// splitMethod splits "/package.Service/Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "", full
}

// specOf reads the model and version a message names: a TensorFlow Serving
// model_spec (the first task's for MultiInference), v2's model_name and
// model_version, or in a request v2's name and version (ModelReadyRequest,
// ModelMetadataRequest; a ServerMetadataResponse's name is the server's).
func specOf(msg any, request bool) (name string, version int64) {
	var spec *pb.ModelSpec
	switch x := msg.(type) {
	case interface{ GetModelSpec() *pb.ModelSpec }:
		spec = x.GetModelSpec()
	case *pb.MultiInferenceRequest:
		if t := x.GetTasks(); len(t) > 0 {
			spec = t[0].GetModelSpec()
		}
	case *pb.MultiInferenceResponse:
		if r := x.GetResults(); len(r) > 0 {
			spec = r[0].GetModelSpec()
		}
	case interface {
		GetModelName() string
		GetModelVersion() string
	}:
		v, _ := strconv.ParseInt(x.GetModelVersion(), 10, 64)
		if strconv.FormatInt(v, 10) != x.GetModelVersion() {
			v = 0
		}
		return x.GetModelName(), max(v, 0)
	case interface{ GetName() string }:
		if !request {
			return "", 0
		}
		v := int64(0)
		if g, ok := msg.(interface{ GetVersion() string }); ok {
			v = parseVersion(g.GetVersion())
		}
		return x.GetName(), v
	}
	return spec.GetName(), max(spec.GetVersion().GetValue(), 0)
}
