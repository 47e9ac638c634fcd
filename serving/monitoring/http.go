package monitoring

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/tfcat/tfcat/serving"
)

// HTTP counts and times the requests next answers, under api's label (APIREST
// for TensorFlow Serving's REST API, APIV2 for KServe's v2 protocol). The
// model and version come from the path (/v1/models/NAME[/versions/V]...,
// /v2/models/NAME[/versions/V]...) or, better, from the handler: the request's
// context carries a serving.Served, and a handler that calls
// serving.ReportServed(r.Context(), name, version) with the version it
// acquired gives the version that answered a request for the latest one.
// Mount the metrics' own Handler outside it.
func (m *Metrics) HTTP(api string, next http.Handler) http.Handler {
	inFlight := m.inFlight.WithLabelValues(api)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		inFlight.Inc()
		ctx, served := serving.WithServed(r.Context())
		rec := &recorder{ResponseWriter: w}
		defer func() {
			inFlight.Dec()
			p := recover()
			code := rec.code
			if p != nil && code == 0 {
				code = http.StatusInternalServerError // net/http's answer to a panic
			} else if code == 0 {
				code = http.StatusOK
			}
			name, version, method := routeOf(r.URL.Path)
			model, ver := m.modelVersion(served, name, version, code < 400)
			m.requests.WithLabelValues(api, model, ver, method, strconv.Itoa(code)).Inc()
			m.latency.WithLabelValues(api, model, ver, method).Observe(time.Since(t0).Seconds())
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// modelVersion resolves the model and version labels: those the handler
// reported; else name and version, the request's, when it succeeded (ok) or
// OnVersionState was told of them; else "".
func (m *Metrics) modelVersion(served *serving.Served, name string, version int64, ok bool) (string, string) {
	if n, v, set := served.Get(); set {
		return n, versionLabel(v)
	}
	switch {
	case name == "", !ok && !m.known(name, 0):
		return "", ""
	case version != 0 && !ok && !m.known(name, version):
		return name, ""
	}
	return name, versionLabel(version)
}

var (
	// /v1/models/NAME[/versions/V|/labels/L][:verb|/metadata], as the
	// REST router reads it.
	v1Re = regexp.MustCompile(`^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/[^/:]+)?(?::([A-Za-z-]+)|(/metadata))?$`)
	// /v2/models/NAME[/versions/V][/ready|/infer]
	v2Re = regexp.MustCompile(`^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$`)
)

// The REST routes' methods: the gRPC methods they mirror.
var v1Verbs = map[string]string{
	"predict": "Predict", "classify": "Classify", "regress": "Regress", "classify-image": "ClassifyImage",
}

// routeOf reads a REST path: the model and version it names (0: none) and
// its method.
func routeOf(path string) (name string, version int64, method string) {
	switch path {
	case "/", "/page.js", "/page.css":
		return "", 0, "Page"
	case "/v2", "/v2/":
		return "", 0, "ServerMetadata"
	case "/v2/health/live":
		return "", 0, "ServerLive"
	case "/v2/health/ready":
		return "", 0, "ServerReady"
	}
	if m := v1Re.FindStringSubmatch(path); m != nil {
		method = "GetModelStatus"
		switch {
		case m[4] != "":
			method = "GetModelMetadata"
		case m[3] != "":
			if method = v1Verbs[m[3]]; method == "" {
				method = "other"
			}
		}
		return m[1], parseVersion(m[2]), method
	}
	if m := v2Re.FindStringSubmatch(path); m != nil {
		switch m[3] {
		case "/ready":
			method = "ModelReady"
		case "/infer":
			method = "ModelInfer"
		default:
			method = "ModelMetadata"
		}
		return m[1], parseVersion(m[2]), method
	}
	return "", 0, "other"
}

// parseVersion reads a version number as the routers accept it: positive,
// without leading zeros; 0 for anything else.
func parseVersion(s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || strconv.FormatInt(v, 10) != s {
		return 0
	}
	return v
}

// recorder notes the status code a handler answers.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 { // 1xx are interim
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush flushes the writer underneath when it can.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap is the writer underneath, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
