package kserve

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/serving"
	pb "github.com/tfcat/tfcat/serving/kserve/inferencepb"
)

// grpcService answers inference.GRPCInferenceService; methods it does not
// define answer UNIMPLEMENTED.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	*core
}

func (s *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (s *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	// No context: the server's readiness is no one version's.
	return &pb.ServerReadyResponse{Ready: s.serverReady(context.Background()) == nil}, nil
}

// ModelReady answers ready: false for a model or version that cannot infer,
// unknown ones included, as tritonclient.http's is_model_ready reads a REST
// 4xx: a readiness check is answered, not failed.
func (s *grpcService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ms, err := spec(req.GetName(), req.GetVersion())
	if err != nil {
		if grpcCode(err) == codes.InvalidArgument {
			return nil, grpcError(err)
		}
		return &pb.ModelReadyResponse{}, nil
	}
	return &pb.ModelReadyResponse{Ready: s.modelReady(ctx, ms) == nil}, nil
}

func (s *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: s.opt.ServerName, Version: s.opt.ServerVersion, Extensions: Extensions}, nil
}

func (s *grpcService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	ms, err := spec(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	md, err := s.metadata(ctx, ms)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &pb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform}
	for _, t := range md.Inputs {
		resp.Inputs = append(resp.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for _, t := range md.Outputs {
		resp.Outputs = append(resp.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	return resp, nil
}

func (s *grpcService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	ms, err := spec(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	ctx, cancel, err := grpcParameters(ctx, req.GetParameters())
	if err != nil {
		return nil, err
	}
	defer cancel()
	names := make([]string, len(req.GetOutputs()))
	for i, o := range req.GetOutputs() {
		names[i] = o.GetName()
		for key := range o.GetParameters() {
			if err := refusedParameter(key); err != nil {
				return nil, err
			}
		}
	}
	names, err = checkOutputs(names)
	if err != nil {
		return nil, err
	}
	srv, version, release, err := s.acquire(ctx, ms)
	if err != nil {
		return nil, grpcError(err)
	}
	defer release()
	in, raw, err := grpcInput(srv, req)
	if err != nil {
		return nil, err
	}
	in.MessageBytes = int64(proto.Size(req))
	probs, err := srv.Predict(ctx, in)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &pb.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: strconv.FormatInt(version, 10), Id: req.GetId()}
	for _, o := range outputs(names, probs, in.N, srv.NumClasses()) {
		t := &pb.ModelInferResponse_InferOutputTensor{Name: o.name, Datatype: o.datatype, Shape: o.shape}
		switch {
		case raw:
			resp.RawOutputContents = append(resp.RawOutputContents, o.raw())
		case o.i64 != nil:
			t.Contents = &pb.InferTensorContents{Int64Contents: o.i64}
		default:
			t.Contents = &pb.InferTensorContents{Fp32Contents: o.f32}
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp, nil
}

// grpcParameters reads a request's parameters: "timeout" (microseconds)
// shortens ctx's deadline; extensions tfcat lacks are refused; the rest are
// ignored.
func grpcParameters(ctx context.Context, params map[string]*pb.InferParameter) (context.Context, context.CancelFunc, error) {
	var us int64
	for key, p := range params {
		if err := refusedParameter(key); err != nil {
			return nil, nil, err
		}
		if key != "timeout" {
			continue
		}
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_Int64Param:
			us = v.Int64Param
		case *pb.InferParameter_Uint64Param:
			us = int64(min(v.Uint64Param, 1<<62))
		default:
			return nil, nil, invalid("parameter \"timeout\" must be an integer number of microseconds")
		}
		if us <= 0 {
			return nil, nil, invalid("parameter \"timeout\" must be positive, not %d", us)
		}
	}
	if us == 0 {
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(min(us, int64(1<<62)/1000))*time.Microsecond)
	return ctx, cancel, nil
}

// grpcInput reads the request's one input from raw_input_contents or from
// its typed contents; raw reports which.
func grpcInput(srv *serving.Server, req *pb.ModelInferRequest) (in serving.Input, raw bool, err error) {
	inputs := req.GetInputs()
	var name string
	if len(inputs) > 0 {
		name = inputs[0].GetName()
	}
	if err := checkInputName(name, len(inputs)); err != nil {
		return in, false, err
	}
	t := inputs[0]
	for key := range t.GetParameters() {
		if err := refusedParameter(key); err != nil {
			return in, false, err
		}
	}
	rawContents := req.GetRawInputContents()
	raw = len(rawContents) > 0
	if raw && len(rawContents) != len(inputs) {
		return in, raw, invalid("%d raw_input_contents for %d inputs", len(rawContents), len(inputs))
	}
	if raw && t.GetContents() != nil {
		return in, raw, invalid("input %s has both contents and raw_input_contents", inputKey)
	}
	switch t.GetDatatype() {
	case dtFP32:
		ft, err := floatShape(srv, t.GetShape())
		if err != nil {
			return in, raw, err
		}
		if raw {
			in, err = ft.Raw(rawContents[0])
		} else {
			// The message's own values: nothing to copy.
			in, err = ft.Values(t.GetContents().GetFp32Contents())
		}
		return in, raw, tensorError(srv, err)
	case dtBYTES:
		n, err := bytesShape(srv, t.GetShape())
		if err != nil {
			return in, raw, err
		}
		imgs := t.GetContents().GetBytesContents()
		if raw {
			if imgs, err = rawBytes(rawContents[0], n); err != nil {
				return in, raw, err
			}
		}
		in, err = srv.ImageInput(t.GetShape(), int64(n), imgs)
		return in, raw, tensorError(srv, err)
	}
	h, w, c := srv.InputSize()
	return in, raw, status.Errorf(codes.InvalidArgument, "input %s: datatype %q; the model takes FP32 [N,%d,%d,%d] (or BYTES [N] of encoded JPEG, PNG or BMP images)", inputKey, t.GetDatatype(), h, w, c)
}
