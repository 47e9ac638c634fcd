package grpcapi

import (
	"context"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tfcat/tfcat/serving"
)

// signatureDefField is GetModelMetadataRequest's one metadata field.
const signatureDefField = "signature_def"

// getModelMetadata answers the version's SignatureDefMap, packed in an Any
// under "signature_def", as TensorFlow Serving does.
func (s *service) getModelMetadata(_ context.Context, req *pb.GetModelMetadataRequest) (*pb.GetModelMetadataResponse, error) {
	if req.GetModelSpec() == nil {
		return nil, invalid("Missing ModelSpec")
	}
	if len(req.GetMetadataField()) == 0 {
		return nil, invalid("GetModelMetadataRequest must specify at least one metadata_field")
	}
	for _, f := range req.GetMetadataField() {
		if f != signatureDefField {
			return nil, invalid("Metadata field %s is not supported", f)
		}
	}
	srv, version, release, err := s.acquire(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	defer release()
	sigs, err := anypb.New(&pb.SignatureDefMap{SignatureDef: map[string]*corepb.SignatureDef{signatureKey: srv.Signature()}})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "packing the signature: %v", err)
	}
	return &pb.GetModelMetadataResponse{
		ModelSpec: &pb.ModelSpec{Name: req.GetModelSpec().GetName(), VersionChoice: versionOf(version)},
		Metadata:  map[string]*anypb.Any{signatureDefField: sigs},
	}, nil
}

// getModelStatus lists the model's versions (or the one asked for) with
// their states and, for a version that failed to load, its error.
func (s *service) getModelStatus(_ context.Context, req *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
	spec, err := toSpec(req.GetModelSpec())
	if err != nil {
		if status.Code(err) == codes.NotFound {
			// TensorFlow Serving's answer for a version it does not have.
			return nil, status.Errorf(codes.NotFound, "Could not find version %d of model %s", req.GetModelSpec().GetVersion().GetValue(), spec.Name)
		}
		return nil, err
	}
	st, err := s.models.Status(spec)
	if err != nil {
		return nil, modelsError(err)
	}
	resp := &pb.GetModelStatusResponse{ModelVersionStatus: make([]*pb.ModelVersionStatus, len(st))}
	for i, v := range st {
		ps := &pb.StatusProto{ErrorCode: serving.ErrorCode(v.Err)}
		if v.Err != nil {
			ps.ErrorMessage = v.Err.Error()
		}
		resp.ModelVersionStatus[i] = &pb.ModelVersionStatus{
			Version: v.Version,
			State:   pb.ModelVersionStatus_State(v.State),
			Status:  ps,
		}
	}
	return resp, nil
}

// reloadConfig applies a new ModelServerConfig through the Models' Reload:
// the error of a config refused or of a model that failed to load is the
// RPC's, with its code, as TensorFlow Serving answers.
func (s *service) reloadConfig(_ context.Context, req *pb.ReloadConfigRequest) (*pb.ReloadConfigResponse, error) {
	r, ok := s.models.(Reloader)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this server's models come from no model config and cannot be reloaded: serve them from a model config (tfcat serve --model-config-file) or a base path")
	}
	if _, ok := req.GetConfig().GetConfig().(*configpb.ModelServerConfig_ModelConfigList); !ok {
		return nil, invalid("ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported")
	}
	if err := r.Reload(req.GetConfig()); err != nil {
		code := serving.ErrorCode(err)
		if code == corepb.Code_OK {
			code = corepb.Code_UNKNOWN
		}
		return nil, status.Error(codes.Code(code), err.Error())
	}
	return &pb.ReloadConfigResponse{Status: &pb.StatusProto{ErrorCode: corepb.Code_OK}}, nil
}
