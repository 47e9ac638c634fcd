package serving

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/internal/hostile"
)

// TestPredictAPI: Server.Predict, what the gRPC and v2 front ends call,
// answers as REST does and reports each refusal with TensorFlow Serving's
// code (ErrorCode), counted in Stats as REST's are.
func TestPredictAPI(t *testing.T) {
	newServer := func(t *testing.T, m *fakeModel, cfg Config) *Server {
		srv, err := New(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	img := pngImage(t, 5, 5, 1)
	t.Run("answers", func(t *testing.T) {
		srv := newServer(t, &fakeModel{}, Config{})
		p, err := srv.Predict(context.Background(), Input{N: 2, X: []float32{0.25, 0, 0, 0, 0.5, 0, 0, 0}})
		if err != nil || len(p) != 4 || p[0] != 0.25 || p[2] != 0.5 {
			t.Fatalf("tensors: %v, %v", p, err)
		}
		// An encoded image beside a tensor, as REST's b64 instances.
		p, err = srv.Predict(context.Background(), Input{N: 2, X: make([]float32, 8), Images: [][]byte{img, nil}, MessageBytes: 100})
		if err != nil || len(p) != 4 {
			t.Fatalf("an image: %v, %v", p, err)
		}
		if st := srv.Stats(); st.Images != 4 || st.DecodeMemory != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	cases := []struct {
		name string
		cfg  Config
		in   Input
		code corepb.Code
		msg  string
	}{
		{"no images", Config{}, Input{}, corepb.Code_INVALID_ARGUMENT, "no images"},
		{"too many", Config{MaxInstances: 1}, Input{N: 2, X: make([]float32, 8)}, corepb.Code_INVALID_ARGUMENT, "more than the limit of 1"},
		{"short tensor", Config{}, Input{N: 2, X: make([]float32, 5)}, corepb.Code_INVALID_ARGUMENT, "5 values for 2 images of 2x2x1"},
		{"no tensor", Config{}, Input{N: 1, Images: [][]byte{nil}}, corepb.Code_INVALID_ARGUMENT, "neither a tensor nor encoded"},
		{"corrupt", Config{}, Input{N: 1, Images: [][]byte{[]byte("xx")}}, corepb.Code_INVALID_ARGUMENT, "instance 0: decoding"},
		{"pixels", Config{}, Input{N: 1, Images: [][]byte{hostile.PNG(10000, 10000)}}, corepb.Code_INVALID_ARGUMENT, "the server's limit is 16777216"},
		{"body", Config{MaxBodyBytes: 10}, Input{N: 1, X: make([]float32, 4), MessageBytes: 11}, corepb.Code_RESOURCE_EXHAUSTED, "exceeds the limit of 10"},
		{"budget", Config{MaxImagePixels: 1 << 30, DecodeMemory: 1 << 20}, Input{N: 1, Images: [][]byte{hostile.PNG(10000, 10000)}},
			corepb.Code_RESOURCE_EXHAUSTED, "and it has 1048576 in all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, &fakeModel{}, tc.cfg)
			_, err := srv.Predict(context.Background(), tc.in)
			if ErrorCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v: %v; want %v: ...%s...", ErrorCode(err), err, tc.code, tc.msg)
			}
		})
	}

	t.Run("busy", func(t *testing.T) {
		m := &fakeModel{entered: make(chan struct{}), release: make(chan struct{})}
		srv := newServer(t, m, Config{MaxConcurrentRequests: 1})
		done := make(chan error)
		go func() {
			_, err := srv.Predict(context.Background(), Input{N: 1, X: make([]float32, 4)})
			done <- err
		}()
		<-m.entered
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := srv.Predict(ctx, Input{N: 1, X: make([]float32, 4)})
		close(m.release)
		if ErrorCode(err) != corepb.Code_RESOURCE_EXHAUSTED || !strings.Contains(err.Error(), "request slots") {
			t.Errorf("waiting for a slot: %v: %v", ErrorCode(err), err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		if st := srv.Stats(); st.Busy != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		srv := newServer(t, &fakeModel{delay: 300 * time.Millisecond}, Config{RequestTimeout: 50 * time.Millisecond})
		_, err := srv.Predict(context.Background(), Input{N: 1, X: make([]float32, 4)})
		if ErrorCode(err) != corepb.Code_DEADLINE_EXCEEDED || !strings.Contains(err.Error(), "deadline of 50ms passed") {
			t.Errorf("%v: %v", ErrorCode(err), err)
		}
		if st := srv.Stats(); st.TimedOut != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := newServer(t, &fakeModel{delay: 300 * time.Millisecond}, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := srv.Predict(ctx, Input{N: 1, X: make([]float32, 4)})
		if ErrorCode(err) != corepb.Code_CANCELLED {
			t.Errorf("%v: %v", ErrorCode(err), err)
		}
	})
	t.Run("model fails", func(t *testing.T) {
		srv := newServer(t, &fakeModel{fail: errors.New("OOM")}, Config{})
		_, err := srv.Predict(context.Background(), Input{N: 1, X: make([]float32, 4)})
		if ErrorCode(err) != corepb.Code_INTERNAL || !strings.Contains(err.Error(), "OOM") {
			t.Errorf("%v: %v", ErrorCode(err), err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		srv := newServer(t, &fakeModel{}, Config{})
		srv.Close()
		_, err := srv.Predict(context.Background(), Input{N: 1, X: make([]float32, 4)})
		if ErrorCode(err) != corepb.Code_UNAVAILABLE {
			t.Errorf("%v: %v", ErrorCode(err), err)
		}
	})
}
