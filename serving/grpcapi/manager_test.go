package grpcapi_test

import (
	"path/filepath"
	"strings"
	"testing"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tfcat/tfcat/internal/testenv/grpctest"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/servables"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/tfsession"
)

// A servables.Manager takes HandleReloadConfigRequest.
var _ grpcapi.Reloader = (*servables.Manager)(nil)

// saveModel writes a tfcat model folder of an 8×8 grey two-class network.
func saveModel(t *testing.T, dir string, seed int64) {
	t.Helper()
	testmodel.Checkpoint(t, network.Tutorial(2).WithInput(8, 8, 1), testmodel.Options{Seed: seed, InferenceOnly: true,
		Session: tfsession.SessionConfig{IntraOpThreads: 1, InterOpThreads: 1}, Dir: dir, Classes: []string{"cat", "dog"}})
}

// TestManager: over a servables.Manager, the versions of base paths answer
// Predict and GetModelStatus by number, and HandleReloadConfigRequest adds a
// model, or refuses a config with the Manager's reason and keeps the old one.
func TestManager(t *testing.T) {
	root := t.TempDir()
	saveModel(t, filepath.Join(root, "pets", "3"), 1)
	saveModel(t, filepath.Join(root, "birds", "1"), 2)
	mgr, err := servables.New(servables.SingleModel("pets", filepath.Join(root, "pets")), servables.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	gs := grpcapi.NewServer(mgr, grpcapi.Options{})
	conn, stop := grpctest.Serve(t, gs)
	defer stop()
	s := &server{conn: conn}

	predict := func(name string) (*pb.PredictResponse, error) {
		resp := &pb.PredictResponse{}
		err := s.invoke("Predict", &pb.PredictRequest{ModelSpec: spec(name),
			Inputs: map[string]*tensorpb.TensorProto{"images": floatTensor(testmodel.Images(1, 64, 1), 1, 8, 8, 1)}}, resp)
		return resp, err
	}
	resp, err := predict("pets")
	if err != nil || resp.ModelSpec.GetVersion().GetValue() != 3 || len(resp.Outputs["probabilities"].GetFloatVal()) != 2 {
		t.Fatalf("Predict: %v, %v", resp, err)
	}
	st := &pb.GetModelStatusResponse{}
	if err := s.invoke("ModelService/GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: spec("pets")}, st); err != nil {
		t.Fatal(err)
	}
	if len(st.ModelVersionStatus) != 1 || st.ModelVersionStatus[0].Version != 3 || st.ModelVersionStatus[0].State != pb.ModelVersionStatus_AVAILABLE {
		t.Errorf("status %v", st)
	}
	if _, err := predict("birds"); status.Code(err) != codes.NotFound {
		t.Errorf("an unconfigured model: %v", err)
	}

	both := &configpb.ModelServerConfig{Config: &configpb.ModelServerConfig_ModelConfigList{ModelConfigList: &configpb.ModelConfigList{
		Config: []*configpb.ModelConfig{
			{Name: "pets", BasePath: filepath.Join(root, "pets"), ModelPlatform: "tensorflow"},
			{Name: "birds", BasePath: filepath.Join(root, "birds"), ModelPlatform: "tensorflow"},
		}}}}
	if err := s.invoke("ModelService/HandleReloadConfigRequest", &pb.ReloadConfigRequest{Config: both}, &pb.ReloadConfigResponse{}); err != nil {
		t.Fatal(err)
	}
	if resp, err := predict("birds"); err != nil || resp.ModelSpec.GetVersion().GetValue() != 1 {
		t.Errorf("the model added: %v, %v", resp, err)
	}

	missing := &configpb.ModelServerConfig{Config: &configpb.ModelServerConfig_ModelConfigList{ModelConfigList: &configpb.ModelConfigList{
		Config: []*configpb.ModelConfig{{Name: "pets", BasePath: filepath.Join(root, "nowhere")}}}}}
	err = s.invoke("ModelService/HandleReloadConfigRequest", &pb.ReloadConfigRequest{Config: missing}, &pb.ReloadConfigResponse{})
	if status.Code(err) == codes.OK || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("a config naming a missing base path: %v", err)
	}
	if _, err := predict("birds"); err != nil {
		t.Errorf("after a refused config, the old one serves: %v", err)
	}
	t.Logf("a refused config: %v", err)
}
