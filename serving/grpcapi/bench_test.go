package grpcapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"

	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

// BenchmarkPredict weighs gRPC Predict against REST's for requests of 1 and
// 32 preprocessed images, on the tutorial's 128×128×3 network, 4 clients at
// once with batching on: the images/s of each.
//
//	go test -run '^$' -bench Predict ./serving/grpcapi
func BenchmarkPredict(b *testing.B) {
	sess := testmodel.Session(b, network.Tutorial(2), testmodel.Options{Seed: 1, InferenceOnly: true})
	s := start(b, sess, serving.Config{Classes: []string{"cat", "dog"}}, grpcapi.Options{})
	const h = 128
	size := h * h * 3
	for _, n := range []int{1, 32} {
		x := testmodel.Images(n, size, 1)
		req := &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: map[string]*tensorpb.TensorProto{"images": floatTensor(x, int64(n), h, h, 3)}}
		body := []byte(`{"instances": [`)
		for i := range n {
			if i > 0 {
				body = append(body, ',')
			}
			body = serving.AppendTensorJSON(body, x[i*size:(i+1)*size], h, h, 3)
		}
		body = append(body, "]}"...)
		b.Run(fmt.Sprintf("grpc/%d", n), func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					if err := s.invoke("Predict", req, &pb.PredictResponse{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
		})
		b.Run(fmt.Sprintf("rest/%d", n), func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					resp, err := http.Post(s.rest+"/v1/models/pets:predict", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("HTTP %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
