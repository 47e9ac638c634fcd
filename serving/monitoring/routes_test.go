package monitoring

import (
	"testing"

	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRouteOf(t *testing.T) {
	for _, c := range []struct {
		path, name string
		version    int64
		method     string
	}{
		{"/v1/models/pets:predict", "pets", 0, "Predict"},
		{"/v1/models/pets/versions/3:predict", "pets", 3, "Predict"},
		{"/v1/models/pets/versions/03:predict", "pets", 0, "Predict"},
		{"/v1/models/pets/versions/99999999999999999999:predict", "pets", 0, "Predict"},
		{"/v1/models/pets/labels/stable:classify", "pets", 0, "Classify"},
		{"/v1/models/pets:regress", "pets", 0, "Regress"},
		{"/v1/models/pets:classify-image", "pets", 0, "ClassifyImage"},
		{"/v1/models/pets:explode", "pets", 0, "other"},
		{"/v1/models/pets", "pets", 0, "GetModelStatus"},
		{"/v1/models/pets/versions/2", "pets", 2, "GetModelStatus"},
		{"/v1/models/pets/versions/2/metadata", "pets", 2, "GetModelMetadata"},
		{"/v1/models/a/b/c", "", 0, "other"},
		{"/v1/nothing", "", 0, "other"},
		{"/", "", 0, "Page"},
		{"/page.js", "", 0, "Page"},
		{"/favicon.ico", "", 0, "other"},
		{"/v2", "", 0, "ServerMetadata"},
		{"/v2/health/live", "", 0, "ServerLive"},
		{"/v2/health/ready", "", 0, "ServerReady"},
		{"/v2/models/pets", "pets", 0, "ModelMetadata"},
		{"/v2/models/pets/versions/4", "pets", 4, "ModelMetadata"},
		{"/v2/models/pets/ready", "pets", 0, "ModelReady"},
		{"/v2/models/pets/versions/4/infer", "pets", 4, "ModelInfer"},
		{"/v2/models/pets/versions/x/infer", "pets", 0, "ModelInfer"},
		{"/v2/models/pets/generate", "", 0, "other"},
	} {
		name, version, method := routeOf(c.path)
		if name != c.name || version != c.version || method != c.method {
			t.Errorf("%s: %q %d %s, want %q %d %s", c.path, name, version, method, c.name, c.version, c.method)
		}
	}
}

// v2Infer stands for KServe v2's ModelInferRequest and ModelInferResponse.
type v2Infer struct{ name, version string }

func (m v2Infer) GetModelName() string    { return m.name }
func (m v2Infer) GetModelVersion() string { return m.version }

// v2Ready stands for KServe v2's ModelReadyRequest.
type v2Ready struct{ name, version string }

func (m v2Ready) GetName() string    { return m.name }
func (m v2Ready) GetVersion() string { return m.version }

func TestSpecOf(t *testing.T) {
	v := func(n int64) *pb.ModelSpec_Version { return &pb.ModelSpec_Version{Version: wrapperspb.Int64(n)} }
	for _, c := range []struct {
		msg     any
		request bool
		name    string
		version int64
	}{
		{&pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: v(2)}}, true, "pets", 2},
		{&pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: v(-2)}}, true, "pets", 0},
		{&pb.PredictRequest{}, true, "", 0},
		{(*pb.PredictResponse)(nil), false, "", 0},
		{&pb.ClassificationResponse{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: v(5)}}, false, "pets", 5},
		{&pb.GetModelStatusRequest{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: &pb.ModelSpec_VersionLabel{VersionLabel: "stable"}}}, true, "pets", 0},
		{&pb.MultiInferenceRequest{Tasks: []*pb.InferenceTask{{ModelSpec: &pb.ModelSpec{Name: "pets", VersionChoice: v(1)}}}}, true, "pets", 1},
		{&pb.MultiInferenceResponse{}, false, "", 0},
		{&pb.ReloadConfigRequest{}, true, "", 0},
		{v2Infer{"pets", "7"}, false, "pets", 7},
		{v2Infer{"pets", ""}, true, "pets", 0},
		{v2Infer{"pets", "x"}, true, "pets", 0},
		{v2Ready{"pets", "7"}, true, "pets", 7},
		{v2Ready{"tfcat", "0.1.0"}, false, "", 0}, // a ServerMetadataResponse names the server
	} {
		name, version := specOf(c.msg, c.request)
		if name != c.name || version != c.version {
			t.Errorf("%T %v: %q %d, want %q %d", c.msg, c.msg, name, version, c.name, c.version)
		}
	}
}
