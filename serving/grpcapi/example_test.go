package grpcapi_test

import (
	"context"
	"fmt"
	"log"
	"net"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

// greyModel stands in for a tfcat model (a *tfsession.Session, an imported
// checkpoint or a *savedmodel.Model): 2×2 grey images, two classes.
type greyModel struct{}

func (greyModel) InputSize() (int, int, int) { return 2, 2, 1 }
func (greyModel) NumClasses() int            { return 2 }
func (greyModel) Close() error               { return nil }
func (greyModel) Predict(x []float32, n int) ([]float32, error) {
	out := make([]float32, 0, 2*n)
	for i := range n {
		out = append(out, 1-x[4*i], x[4*i])
	}
	return out, nil
}

// Serve a model with TensorFlow Serving's gRPC API and call Predict as a
// TensorFlow Serving client does. Without generated stubs, a client calls
// conn.Invoke with the method's full name and graft's messages.
func Example() {
	srv, err := serving.New(greyModel{}, serving.Config{Name: "pets", Classes: []string{"cat", "dog"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	gs := grpcapi.NewServer(serving.One(srv), grpcapi.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0") // tfcat serve: 127.0.0.1:8500
	if err != nil {
		log.Fatal(err)
	}
	go gs.Serve(ln)
	defer gs.GracefulStop()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	images := &tensorpb.TensorProto{
		Dtype:       typespb.DataType_DT_FLOAT,
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}, {Size: 2}, {Size: 2}, {Size: 1}}},
		FloatVal:    []float32{0.75, 0, 0, 0},
	}
	req := &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "pets"}, Inputs: map[string]*tensorpb.TensorProto{"images": images}}
	resp := &pb.PredictResponse{}
	if err := conn.Invoke(context.Background(), "/tensorflow.serving.PredictionService/Predict", req, resp); err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", resp.ModelSpec.GetVersion().GetValue(), resp.ModelSpec.GetSignatureName())
	fmt.Println("probabilities", resp.Outputs["probabilities"].GetFloatVal())
	fmt.Println("classes", resp.Outputs["classes"].GetInt64Val())
	// Output:
	// version 1 serving_default
	// probabilities [0.25 0.75]
	// classes [1]
}
