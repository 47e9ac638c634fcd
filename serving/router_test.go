package serving

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// twoVersions is a Models of one model, "m", with versions 1 and 2
// available, a version 3 that failed to load, and labels; it counts what is
// acquired and not yet released.
type twoVersions struct {
	srv    map[int64]*Server
	mu     sync.Mutex
	held   int
	closed bool // Acquire fails as a closing Models would
}

var errDenied = &loadFailure{corepb.Code_INVALID_ARGUMENT, "loading m/3: refusing to run this graph"}

type loadFailure struct {
	code corepb.Code
	msg  string
}

func (e *loadFailure) Error() string            { return e.msg }
func (e *loadFailure) ErrorCode() corepb.Code   { return e.code }
func (t *twoVersions) Names() []string          { return []string{"m"} }
func (t *twoVersions) labels() map[string]int64 { return map[string]int64{"stable": 1, "canary": 2} }

func (t *twoVersions) Acquire(spec ModelSpec) (*Server, int64, func(), error) {
	if t.closed {
		return nil, 0, nil, errors.New("closing")
	}
	if spec.Name != "m" {
		return nil, 0, nil, NotFound(spec)
	}
	v := spec.Version
	if spec.Label != "" {
		var ok bool
		if v, ok = t.labels()[spec.Label]; !ok {
			return nil, 0, nil, NotFound(spec)
		}
	}
	if v == 0 {
		v = 2
	}
	s := t.srv[v]
	if s == nil {
		return nil, 0, nil, NotFound(spec)
	}
	t.mu.Lock()
	t.held++
	t.mu.Unlock()
	return s, v, func() { t.mu.Lock(); t.held--; t.mu.Unlock() }, nil
}

func (t *twoVersions) Status(spec ModelSpec) ([]VersionStatus, error) {
	if spec.Name != "m" {
		return nil, NotFound(spec)
	}
	all := []VersionStatus{{Version: 1, State: StateAvailable}, {Version: 2, State: StateAvailable}, {Version: 3, State: StateEnd, Err: errDenied}}
	if spec.Label != "" {
		v, ok := t.labels()[spec.Label]
		if !ok {
			return nil, NotFound(spec)
		}
		spec.Version = v
	}
	if spec.Version != 0 {
		for _, s := range all {
			if s.Version == spec.Version {
				return []VersionStatus{s}, nil
			}
		}
		return nil, &NotFoundError{"Could not find version 9 of model m"}
	}
	return all, nil
}

// TestHandler routes requests to the version they name, lists every
// version's status with its error, and releases every version it acquires.
func TestHandler(t *testing.T) {
	models := &twoVersions{srv: map[int64]*Server{}}
	for v := range int64(2) {
		srv, err := New(&fakeModel{}, Config{Name: "m", Version: v + 1, Classes: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		models.srv[v+1] = srv
	}
	ts := httptest.NewServer(NewHandler(models))
	defer ts.Close()
	ok := `{"error_code":"OK","error_message":""}`
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/v1/models/m", "", 200, `{"model_version_status":[{"version":"1","state":"AVAILABLE","status":` + ok + `},{"version":"2","state":"AVAILABLE","status":` + ok + `},` +
			`{"version":"3","state":"END","status":{"error_code":"INVALID_ARGUMENT","error_message":"loading m/3: refusing to run this graph"}}]}`},
		{"GET", "/v1/models/m/versions/3", "", 200, `{"model_version_status":[{"version":"3","state":"END","status":{"error_code":"INVALID_ARGUMENT","error_message":"loading m/3: refusing to run this graph"}}]}`},
		{"GET", "/v1/models/m/labels/stable", "", 200, `{"model_version_status":[{"version":"1","state":"AVAILABLE","status":` + ok + `}]}`},
		{"GET", "/v1/models/m/versions/9", "", 404, `{"error":"Could not find version 9 of model m"}`},
		{"GET", "/v1/models/m/metadata", "", 200, `"version":"2"`},
		{"GET", "/v1/models/m/versions/1/metadata", "", 200, `"version":"1"`},
		{"GET", "/v1/models/m/labels/canary/metadata", "", 200, `"version":"2"`},
		{"GET", "/v1/models/m/labels/stable/metadata", "", 200, `"version":"1"`},
		{"POST", "/v1/models/m/labels/stable:predict", `{"instances": [` + fakeInstance(0.25) + `]}`, 200, `{"predictions":[{"probabilities":[0.25,0.75],"classes":1}]}`},
		{"POST", "/v1/models/m/versions/2:classify-image", "", 400, "empty"},
		{"GET", "/v1/models/m/versions/3/metadata", "", 404, "Specific(m, 3)"},
		{"GET", "/v1/models/m/labels/beta/metadata", "", 404, "Unrecognized servable version label: beta"},
		{"GET", "/v1/models/m/versions/0", "", 404, "Specific(m, 0)"},
		{"GET", "/v1/models/m/versions/01", "", 404, "Specific(m, 01)"},
		{"GET", "/v1/models/m/versions/99999999999999999999", "", 404, "Specific(m, 99999999999999999999)"},
		{"GET", "/v1/models/x", "", 404, "Latest(x)"},
		{"POST", "/v1/models/m", "", 405, "use GET"},
		{"GET", "/v1/models/m:predict", "", 405, "use POST"},
	} {
		r := do(t, c.method, ts.URL+c.path, c.body)
		if r.code != c.code || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s %s: %d %s, want %d and %s", c.method, c.path, r.code, r.body, c.code, c.want)
		}
	}
	for _, path := range []string{"/", "/page.css"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (path == "/" && !strings.Contains(string(b), "/v1/models/m:classify-image")) {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, b)
		}
	}
	// The handler releases after its reply is written: give it a moment.
	for i := 0; ; i++ {
		models.mu.Lock()
		held := models.held
		models.mu.Unlock()
		if held == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("%d versions acquired and not released", held)
		}
		time.Sleep(10 * time.Millisecond)
	}
	models.closed = true
	if r := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [`+fakeInstance(0.25)+`]}`); r.code != 503 {
		t.Errorf("Acquire failing: %d %s", r.code, r.body)
	}
}

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want corepb.Code
	}{
		{nil, corepb.Code_OK},
		{errors.New("x"), corepb.Code_UNKNOWN},
		{NotFound(ModelSpec{Name: "m"}), corepb.Code_NOT_FOUND},
		{errDenied, corepb.Code_INVALID_ARGUMENT},
	} {
		if got := ErrorCode(c.err); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
}
