package servables

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"

	"github.com/tfcat/tfcat/internal/testenv/grpctest"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

// swapReply is one request of TestSwapsUnderLoadBothProtocols.
type swapReply struct {
	api        string // "grpc" (Predict), "rest" (:predict) or "rest-metadata" (GET .../metadata)
	start, end time.Time
	version    int64  // the version that answered, as the reply says; 0 for REST's :predict, whose reply does not say
	answer     string // the probabilities, for Predict and :predict
}

// TestSwapsUnderLoadBothProtocols: 20 versions copied into the base path (a
// temporary name, then renamed) while REST and gRPC clients keep predicting
// on one Manager, as tfcat serve runs both protocols. No request fails on
// either; each version is answering both protocols within the poll period
// plus its load time (settled, loaded, checked: from the poll that found
// the folder to the version available) after its rename; once a reply came from version N no request started later is
// answered by an older one; and every answer is its version's model's (the
// versions alternate between two models, so that a version answering with
// another's weights shows), the same on both protocols.
//
// gRPC's Predict reply names the version that answered (model_spec.version);
// REST's :predict does not, so the REST clients also ask for the model's
// metadata, whose model_spec.version is the latest's, and their :predict
// answers are checked against the version that must have answered them.
func TestSwapsUnderLoadBothProtocols(t *testing.T) {
	const swaps, restClients, grpcClients = 20, 4, 4
	// The slack over poll + load time: a request in flight, a poll tick and
	// the goroutines' scheduling on a busy machine.
	const slack = time.Second
	base := t.TempDir()
	srcs := [2]string{savedModel(t, small, 1), savedModel(t, small, 2)}
	deploy(t, srcs[1], base, 1)

	var (
		stateMu   sync.Mutex
		started   = map[int64]time.Time{} // the first StateStart: the poll found the folder
		available = map[int64]time.Time{}
	)
	opt := fastOptions(&logBuffer{})
	opt.OnState = func(_ string, n int64, state serving.VersionState, _ error) {
		now := time.Now()
		stateMu.Lock()
		defer stateMu.Unlock()
		switch state {
		case serving.StateStart:
			if _, ok := started[n]; !ok {
				started[n] = now
			}
		case serving.StateAvailable:
			available[n] = now
		}
	}
	m, err := New(SingleModel("pets", base), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ts := httptest.NewServer(serving.NewHandler(m))
	defer ts.Close()
	gs := grpcapi.NewServer(m, grpcapi.Options{})
	conn, stopGRPC := grpctest.Serve(t, gs)
	defer stopGRPC()

	// One blank 8×8 grey image: as a REST instance and as gRPC's tensor_content.
	restBody := `{"instances": [` + string(serving.AppendTensorJSON(nil, make([]float32, 64), 8, 8, 1)) + `]}`
	greq := &pb.PredictRequest{
		ModelSpec: &pb.ModelSpec{Name: "pets"},
		Inputs: map[string]*tensorpb.TensorProto{serving.InputKey: {
			Dtype:         typespb.DataType_DT_FLOAT,
			TensorShape:   &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}, {Size: 8}, {Size: 8}, {Size: 1}}},
			TensorContent: make([]byte, 4*64), // 64 zeros: float32 0 is all zero bits
		}},
	}

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		replies  []swapReply
		failures = map[string][]string{} // by API
		seen     = map[string]int64{}    // the newest version each of grpc and rest-metadata reported
	)
	record := func(r swapReply, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures[r.api] = append(failures[r.api], err.Error())
			return
		}
		replies = append(replies, r)
		if r.version > seen[r.api] {
			seen[r.api] = r.version
		}
	}
	grpcPredict := func() (swapReply, error) {
		r := swapReply{api: "grpc", start: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp := &pb.PredictResponse{}
		if err := conn.Invoke(ctx, "/"+grpcapi.PredictionServiceName+"/Predict", greq, resp); err != nil {
			return r, err
		}
		r.end = time.Now()
		r.version = resp.GetModelSpec().GetVersion().GetValue()
		probs := resp.GetOutputs()[serving.ProbabilitiesKey].GetFloatVal()
		if r.version <= 0 || len(probs) != 2 {
			return r, fmt.Errorf("version %d, %d probabilities", r.version, len(probs))
		}
		r.answer = fmt.Sprint(probs)
		return r, nil
	}
	restGet := func(method, path, body string) ([]byte, error) {
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
		}
		return b, nil
	}
	restPredict := func() (swapReply, error) {
		r := swapReply{api: "rest", start: time.Now()}
		b, err := restGet("POST", "/v1/models/pets:predict", restBody)
		if err != nil {
			return r, err
		}
		r.end = time.Now()
		var out struct {
			Predictions []struct {
				Probabilities []float32 `json:"probabilities"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Predictions) != 1 || len(out.Predictions[0].Probabilities) != 2 {
			return r, fmt.Errorf("reply %s: %v", b, err)
		}
		r.answer = fmt.Sprint(out.Predictions[0].Probabilities)
		return r, nil
	}
	restMetadata := func() (swapReply, error) {
		r := swapReply{api: "rest-metadata", start: time.Now()}
		b, err := restGet("GET", "/v1/models/pets/metadata", "")
		if err != nil {
			return r, err
		}
		r.end = time.Now()
		var out struct {
			ModelSpec struct {
				Version string `json:"version"`
			} `json:"model_spec"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return r, fmt.Errorf("reply %s: %v", b, err)
		}
		if r.version, err = strconv.ParseInt(out.ModelSpec.Version, 10, 64); err != nil || r.version <= 0 {
			return r, fmt.Errorf("metadata version %q", out.ModelSpec.Version)
		}
		return r, nil
	}
	loop := func(calls ...func() (swapReply, error)) {
		defer wg.Done()
		for {
			for _, call := range calls {
				select {
				case <-stop:
					return
				default:
				}
				record(call())
			}
		}
	}
	for range grpcClients {
		wg.Add(1)
		go loop(grpcPredict)
	}
	for range restClients {
		wg.Add(1)
		go loop(restPredict, restMetadata)
	}

	copying := map[int64]time.Time{}  // no reply can come from version n before its copy began
	deployed := map[int64]time.Time{} // the rename: version n exists from here
	t0 := time.Now()
	for n := int64(2); n <= swaps+1; n++ {
		copying[n] = time.Now()
		deploy(t, srcs[n%2], base, n)
		deployed[n] = time.Now()
		eventually(t, 20*time.Second, "version "+strconv.FormatInt(n, 10)+" answering REST and gRPC", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen["grpc"] >= n && seen["rest-metadata"] >= n
		})
		// A REST :predict started now can only be answered by version n:
		// wait for one, so that every version's REST answers are checked.
		now := time.Now()
		eventually(t, 20*time.Second, "a REST :predict on version "+strconv.FormatInt(n, 10), func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := len(replies) - 1; i >= 0 && replies[i].end.After(now); i-- {
				if replies[i].api == "rest" && replies[i].start.After(now) {
					return true
				}
			}
			return false
		})
		// Old folders go, as a deployment would prune them.
		os.RemoveAll(filepath.Join(base, strconv.FormatInt(n-1, 10)))
	}
	took := time.Since(t0)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	stateMu.Lock()
	defer stateMu.Unlock()
	count := map[string]int{}
	for _, r := range replies {
		count[r.api]++
	}
	for api, f := range failures {
		t.Errorf("%s: %d of %d requests failed; first: %s", api, len(f), len(f)+count[api], f[0])
	}
	if count["grpc"] == 0 || count["rest"] == 0 || count["rest-metadata"] == 0 {
		t.Fatalf("replies by API: %v", count)
	}

	// Each version answering both protocols within poll + load time.
	firstEnd := map[int64]time.Time{} // the first reply from each version, either protocol
	firstBy := map[string]map[int64]time.Time{"grpc": {}, "rest-metadata": {}}
	for _, r := range replies {
		if r.version == 0 {
			continue
		}
		if f, ok := firstEnd[r.version]; !ok || r.end.Before(f) {
			firstEnd[r.version] = r.end
		}
		if f, ok := firstBy[r.api][r.version]; !ok || r.end.Before(f) {
			firstBy[r.api][r.version] = r.end
		}
	}
	var worst time.Duration
	var worstWhat string
	for n := int64(2); n <= swaps+1; n++ {
		s, a := started[n], available[n]
		if s.IsZero() || a.IsZero() {
			t.Errorf("version %d: no start or available state reported", n)
			continue
		}
		load := a.Sub(s)
		bound := opt.Poll + load + slack
		for _, api := range []string{"grpc", "rest-metadata"} {
			switched := firstBy[api][n].Sub(deployed[n])
			if switched > bound {
				t.Errorf("version %d: first %s reply %v after the rename; poll %v + load %v + slack %v = %v",
					n, api, switched.Round(time.Millisecond), opt.Poll, load.Round(time.Millisecond), slack, bound.Round(time.Millisecond))
			}
			if over := switched - opt.Poll - load; over > worst {
				worst, worstWhat = over, fmt.Sprintf("version %d on %s: %v after the rename, load %v", n, api, switched.Round(time.Millisecond), load.Round(time.Millisecond))
			}
		}
	}

	// No request started after version n answered was answered by an older
	// version; none was answered by a version before it was renamed in; and
	// every answer is its version's model's, on both protocols.
	versions := slices.Sorted(maps.Keys(firstEnd))
	atLeast := func(start time.Time) int64 { // the newest version that had answered before start
		v := int64(1)
		for _, n := range versions {
			if firstEnd[n].Before(start) {
				v = max(v, n)
			}
		}
		return v
	}
	atMost := func(end time.Time) int64 { // the newest version being copied in before end
		v := int64(1)
		for n, d := range copying {
			if d.Before(end) {
				v = max(v, n)
			}
		}
		return v
	}
	answerOf := map[int64]string{} // by version parity: the two models alternate
	var restChecked int
	for _, r := range replies {
		lo, hi := atLeast(r.start), atMost(r.end)
		v := r.version
		if r.api == "rest" {
			if lo != hi {
				continue // either version could have answered
			}
			v = lo
			restChecked++
		}
		if v < lo || v > hi {
			t.Errorf("%s request from %v to %v answered by version %d; versions %d to %d could answer it",
				r.api, r.start.Sub(t0), r.end.Sub(t0), v, lo, hi)
		}
		if r.answer == "" {
			continue
		}
		if want, ok := answerOf[v%2]; !ok {
			answerOf[v%2] = r.answer
		} else if r.answer != want {
			t.Errorf("%s: version %d answered %s, want its model's %s", r.api, v, r.answer, want)
		}
	}
	if len(answerOf) != 2 || answerOf[0] == answerOf[1] {
		t.Errorf("the two models' answers: %v", answerOf)
	}
	if restChecked == 0 {
		t.Error("no REST :predict answer could be tied to its version")
	}
	eventually(t, 5*time.Second, "the old versions unloaded and forgotten", func() bool {
		st := states(t, m, "pets")
		return len(st) == 1 && st[swaps+1] == serving.StateAvailable
	})
	t.Logf("%d swaps in %v: gRPC %d Predicts, REST %d :predicts (%d tied to their version) and %d metadata requests, none failed; the slowest switch over poll + load: %v (%s)",
		swaps, took.Round(time.Millisecond), count["grpc"], count["rest"], restChecked, count["rest-metadata"], worst.Round(time.Millisecond), worstWhat)
}
