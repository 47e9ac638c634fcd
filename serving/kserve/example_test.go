package kserve_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/serving/kserve"
	pb "github.com/tfcat/tfcat/serving/kserve/inferencepb"
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

// Serve a model with the v2 protocol's REST routes beside TensorFlow
// Serving's, as tfcat serve does, and infer a float tensor in JSON.
func Example() {
	srv, err := serving.New(greyModel{}, serving.Config{Name: "pets", Classes: []string{"cat", "dog"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	models := serving.One(srv)
	v1 := serving.NewHandler(models) // /v1/models/pets:predict and the page
	v2 := kserve.NewHandler(models, kserve.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // tfcat serve: 127.0.0.1:8501
		if kserve.IsPath(r.URL.Path) {
			v2.ServeHTTP(w, r)
			return
		}
		v1.ServeHTTP(w, r)
	}))
	defer hs.Close()

	resp, err := http.Get(hs.URL + "/v2/health/ready")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("ready:", resp.StatusCode)

	req := `{"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 2, 2, 1], "data": [0.75, 0, 0, 0]}]}`
	resp, err = http.Post(hs.URL+"/v2/models/pets/infer", "application/json", strings.NewReader(req))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// ready: 200
	// {"model_name":"pets","model_version":"1","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.25,0.75]},{"name":"classes","datatype":"INT64","shape":[1],"data":[1]}]}
}

// Register the v2 gRPC service on the server of TensorFlow Serving's gRPC
// API, as tfcat serve does, and call it with the generated client.
func ExampleRegister() {
	srv, err := serving.New(greyModel{}, serving.Config{Name: "pets"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	models := serving.One(srv)
	gs := grpcapi.NewServer(models, grpcapi.Options{})
	kserve.Register(gs, models, kserve.Options{})
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
	client := pb.NewGRPCInferenceServiceClient(conn)
	ctx := context.Background()
	ready, err := client.ModelReady(ctx, &pb.ModelReadyRequest{Name: "pets"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready:", ready.Ready)
	resp, err := client.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: "pets",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name: "images", Datatype: "FP32", Shape: []int64{1, 2, 2, 1},
			Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.75, 0, 0, 0}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", resp.ModelVersion)
	for _, o := range resp.Outputs {
		fmt.Println(o.Name, o.Datatype, o.Shape, o.Contents.GetFp32Contents(), o.Contents.GetInt64Contents())
	}
	// Output:
	// ready: true
	// version 1
	// probabilities FP32 [1 2] [0.25 0.75] []
	// classes INT64 [1] [] [1]
}
