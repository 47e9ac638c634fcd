//go:build !loadtest_restonly

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

// grpcBuilt says that -api grpc is there.
const grpcBuilt = true

// predictMethod is the Predict RPC's path: graft has TensorFlow Serving's
// messages but no gRPC stubs, so the clients call it by name, as a
// generated stub would.
const predictMethod = "/" + grpcapi.PredictionServiceName + "/Predict"

// startGRPC serves srv's model over TensorFlow Serving's gRPC API on a
// loopback port, as tfcat serve does: messages up to the REST body limit, at
// most MaxConnections connections. It returns the address and a function
// that stops it.
func startGRPC(srv *serving.Server, cfg serving.Config) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	conns := cfg.MaxConnections
	if conns == 0 {
		conns = serving.DefaultMaxConnections
	}
	gs := grpcapi.NewServer(serving.One(srv), grpcapi.Options{MaxRecvMsgSize: int(cfg.MaxBodyBytes)})
	go gs.Serve(netutil.LimitListener(ln, conns))
	return ln.Addr().String(), gs.Stop, nil
}

// grpcClient sends wl's PredictRequests to addr over wl.grpcConns
// connections, client i on connection i mod grpcConns.
func grpcClient(addr string, wl workload, in instance) (*client, error) {
	var t *tensorpb.TensorProto
	switch wl.payload {
	case "b64":
		imgs := make([][]byte, wl.n)
		for i := range imgs {
			imgs[i] = in.jpeg
		}
		t = &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, TensorShape: shape(int64(wl.n)), StringVal: imgs}
	case "tensor":
		one := make([]byte, 4*len(in.tensor))
		for i, v := range in.tensor {
			binary.LittleEndian.PutUint32(one[4*i:], math.Float32bits(v))
		}
		b := make([]byte, 0, wl.n*len(one))
		for range wl.n {
			b = append(b, one...)
		}
		t = &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(int64(wl.n), int64(in.h), int64(in.w), int64(in.c)), TensorContent: b}
	default:
		return nil, fmt.Errorf("-payload %q: use b64 or tensor", wl.payload)
	}
	req := &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: serving.DefaultName}, Inputs: map[string]*tensorpb.TensorProto{serving.InputKey: t}}
	conns := make([]*grpc.ClientConn, wl.grpcConns)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(serving.DefaultMaxBodyBytes)))
		if err != nil {
			closeAll()
			return nil, err
		}
		conns[i] = c
	}
	send := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp := &pb.PredictResponse{}
		if err := conns[i%len(conns)].Invoke(ctx, predictMethod, req, resp); err != nil {
			return err
		}
		if got := len(resp.GetOutputs()[serving.ProbabilitiesKey].GetFloatVal()); got != wl.n*in.classes {
			return fmt.Errorf("%d probabilities for %d images of %d classes", got, wl.n, in.classes)
		}
		if resp.GetModelSpec().GetVersion().GetValue() == 0 {
			return fmt.Errorf("no version in the reply's model_spec")
		}
		return nil
	}
	return &client{send: send, bytes: proto.Size(req), close: closeAll}, nil
}

func shape(dims ...int64) *shapepb.TensorShapeProto {
	s := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return s
}
