package monitoring_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/monitoring"
)

// value is the sample of family name whose labels include labels ("k=v"
// pairs), and whether there is one; a histogram's value is its count.
func value(t *testing.T, m *monitoring.Metrics, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if got, ok := have[k]; !ok || got != v {
					continue metrics
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return s.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return s.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(s.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// series counts the samples of family name.
func series(t *testing.T, m *monitoring.Metrics, name string) int {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// A handler that reports the version it served (serving.ReportServed) gives
// the version label of a request for the latest version, on REST and gRPC.
func TestReportedVersion(t *testing.T) {
	m := monitoring.New(monitoring.Options{})
	h := m.HTTP(monitoring.APIV2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.ReportServed(r.Context(), "pets", 7)
		http.Error(w, "no", http.StatusTeapot)
	}))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v2/models/pets/infer", nil))
	}
	if v, _ := value(t, m, "tfcat_requests_total", "api=v2", "model=pets", "version=7", "method=ModelInfer", "code=418"); v != 3 {
		t.Errorf("REST: %v requests counted as version 7, want 3", v)
	}

	ic := m.GRPCUnary()
	info := &grpc.UnaryServerInfo{FullMethod: "/" + monitoring.V2ServiceName + "/ModelInfer"}
	_, err := ic(context.Background(), struct{}{}, info, func(ctx context.Context, req any) (any, error) {
		serving.ReportServed(ctx, "pets", 8)
		return nil, status.Error(codes.ResourceExhausted, "busy")
	})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("the interceptor changed the error: %v", err)
	}
	if v, _ := value(t, m, "tfcat_requests_total", "api=grpc_v2", "model=pets", "version=8", "method=ModelInfer", "code=RESOURCE_EXHAUSTED"); v != 1 {
		t.Errorf("gRPC: %v requests counted as version 8, want 1", v)
	}
}

// Names and versions that clients make up do not become label values: a
// failed request names a model or version only when OnVersionState was told
// of it.
func TestLabelsBounded(t *testing.T) {
	m := monitoring.New(monitoring.Options{})
	m.OnVersionState("pets", 1, serving.StateAvailable, nil)
	h := m.HTTP(monitoring.APIREST, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusNotFound)
	}))
	for i := range 50 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", fmt.Sprintf("/v1/models/m%d/versions/%d:predict", i, i+1), nil))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", fmt.Sprintf("/v1/models/pets/versions/%d:predict", i+2), nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/models/pets/versions/1:predict", nil))
	if n := series(t, m, "tfcat_requests_total"); n != 3 {
		t.Errorf("%d series of tfcat_requests_total, want 3", n)
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"model=", "version="}, 50},
		{[]string{"model=pets", "version="}, 50},
		{[]string{"model=pets", "version=1"}, 1},
	} {
		if v, _ := value(t, m, "tfcat_requests_total", c.labels...); v != c.want {
			t.Errorf("%v: %v, want %v", c.labels, v, c.want)
		}
	}
}

// tfcat_model_versions counts versions by their last state, as
// servables.Manager reports them; tfcat_model_load_failures_total the loads
// that failed.
func TestVersionStates(t *testing.T) {
	m := monitoring.New(monitoring.Options{})
	for _, s := range []struct {
		version int64
		state   serving.VersionState
		err     error
	}{
		{1, serving.StateStart, nil}, {1, serving.StateLoading, nil}, {1, serving.StateAvailable, nil},
		{2, serving.StateStart, nil}, {2, serving.StateLoading, nil},
		{3, serving.StateStart, nil}, {3, serving.StateLoading, nil}, {3, serving.StateEnd, errors.New("a disallowed op")},
		{2, serving.StateAvailable, nil}, {1, serving.StateEnd, nil}, // version 2 replaces 1
		{4, serving.StateStart, nil},
	} {
		m.OnVersionState("pets", s.version, s.state, s.err)
	}
	m.OnVersionState("birds", 1, serving.StateAvailable, nil)
	for _, c := range []struct {
		model, state string
		want         float64
	}{
		{"pets", "START", 1}, {"pets", "LOADING", 0}, {"pets", "AVAILABLE", 1}, {"pets", "UNLOADING", 0},
		{"birds", "AVAILABLE", 1}, {"birds", "START", 0},
	} {
		if v, ok := value(t, m, "tfcat_model_versions", "model="+c.model, "state="+c.state); !ok || v != c.want {
			t.Errorf("tfcat_model_versions{model=%q,state=%q} = %v (present: %v), want %v", c.model, c.state, v, ok, c.want)
		}
	}
	if _, ok := value(t, m, "tfcat_model_versions", "state=END"); ok {
		t.Error("versions that ended are counted")
	}
	for model, want := range map[string]float64{"pets": 1, "birds": 0} {
		if v, ok := value(t, m, "tfcat_model_load_failures_total", "model="+model); !ok || v != want {
			t.Errorf("tfcat_model_load_failures_total{model=%q} = %v (present: %v), want %v", model, v, ok, want)
		}
	}
}

// A handler that panics is counted as net/http answers it, 500, and the
// panic goes on to net/http.
func TestPanic(t *testing.T) {
	m := monitoring.New(monitoring.Options{})
	h := m.HTTP(monitoring.APIREST, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/models/pets", nil))
	}()
	if v, _ := value(t, m, "tfcat_requests_total", "code=500", "method=GetModelStatus"); v != 1 {
		t.Errorf("%v requests counted 500, want 1", v)
	}
	if v, _ := value(t, m, "tfcat_requests_in_flight", "api=rest"); v != 0 {
		t.Errorf("%v requests in flight after the panic, want 0", v)
	}
}

// DecodeMemoryOf reads the budget held by every available version: a
// request's body is held while it is read.
func TestDecodeMemoryOf(t *testing.T) {
	srv, err := serving.New(constModel{}, serving.Config{Name: "pets"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := monitoring.New(monitoring.Options{})
	m.DecodeMemory(monitoring.DecodeMemoryOf(serving.One(srv)))
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/models/pets:predict", pr))
	}()
	pw.Write([]byte(`{"instances": [` + strings.Repeat(" ", 1<<20)))
	v, _ := value(t, m, "tfcat_decode_memory_bytes")
	pw.Close()
	<-done
	if v < 1<<20 {
		t.Errorf("tfcat_decode_memory_bytes = %v while a body of 1 MiB was read, want at least 1 MiB", v)
	}
	if v, _ := value(t, m, "tfcat_decode_memory_bytes"); v != 0 {
		t.Errorf("tfcat_decode_memory_bytes = %v after the request, want 0", v)
	}
}
