package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/tfcat/tfcat/savedmodel"
)

// NewHandler answers TensorFlow Serving's REST API for every model and
// version of models (see the package comment for the routes; /versions/V and
// /labels/L pick a version, neither the latest available). Each request
// acquires its version's Server, is answered by it and releases it, so a
// version swapped out while a request runs finishes that request first.
//
// GET /v1/models/NAME lists the model's versions with their states and, for
// a version that failed to load, its error (ErrorCode and the message). GET /
// is the page of the first model (by name), at its latest version.
//
// A Server answers through the same routes, as the models of One.
func NewHandler(models Models) http.Handler { return router{models} }

type router struct{ models Models }

// ServeHTTP routes a request to the Server of its model version.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	router{one{s}}.ServeHTTP(w, r)
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rt.servePage(w, r) {
		return
	}
	m := pathRe.FindStringSubmatch(path)
	if m == nil {
		code := http.StatusNotFound
		if len(path) >= len("/v1/") && path[:len("/v1/")] == "/v1/" {
			code = http.StatusBadRequest
		}
		writeError(w, code, "Malformed request: "+r.Method+" "+path)
		return
	}
	name, version, label, verb, metadata := m[1], m[2], m[3], m[4], m[5] != ""
	spec := ModelSpec{Name: name, Label: label}
	if version != "" {
		v, err := strconv.ParseInt(version, 10, 64)
		// Version 0, one past int64 or with leading zeros names no version
		// (ModelSpec's 0 would mean the latest).
		if err != nil || v <= 0 || strconv.FormatInt(v, 10) != version {
			writeError(w, http.StatusNotFound, fmt.Sprintf("Servable not found for request: Specific(%s, %s)", name, version))
			return
		}
		spec.Version = v
	}
	want := http.MethodGet
	if verb != "" {
		want = http.MethodPost
	}
	if verb == "" && !metadata {
		// The status lists versions whatever their state, those that failed
		// to load included: it acquires none.
		st, err := rt.models.Status(spec)
		if err != nil {
			writeModelsError(w, err)
			return
		}
		if !allowed(w, r, want) {
			return
		}
		writeStatus(w, st)
		return
	}
	srv, served, release, err := rt.models.Acquire(spec)
	if err != nil {
		writeModelsError(w, err)
		return
	}
	defer release()
	ReportServed(r.Context(), spec.Name, served) // for metrics: the version that answered
	if !allowed(w, r, want) {
		return
	}
	switch {
	case metadata:
		writeJSON(w, http.StatusOK, srv.meta)
	case verb == "predict":
		srv.predict(w, r)
	case verb == "classify-image":
		srv.classifyImage(w, r)
	case verb == "classify" || verb == "regress":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Expected classification or regression signature, but %s is a predict signature (%s): use :predict", savedmodel.SignatureKey, savedmodel.PredictMethod))
	default:
		writeError(w, http.StatusBadRequest, "Malformed request: "+r.Method+" "+path)
	}
}

// allowed answers 405 (with Allow) unless r's method is want.
func allowed(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want {
		return true
	}
	w.Header().Set("Allow", want)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Malformed request: %s %s: use %s", r.Method, r.URL.Path, want))
	return false
}

// writeModelsError answers a failed Acquire or Status: 404 for an unknown
// model, version or label, 503 for anything else (the models are closing).
func writeModelsError(w http.ResponseWriter, err error) {
	var nf *NotFoundError
	if errors.As(err, &nf) {
		writeError(w, http.StatusNotFound, nf.Msg)
		return
	}
	writeError(w, http.StatusServiceUnavailable, err.Error())
}

// writeStatus writes GetModelStatusResponse as TensorFlow Serving's REST API
// does: versions as strings, the error code by name.
func writeStatus(w http.ResponseWriter, st []VersionStatus) {
	type status struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}
	type version struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Status  status `json:"status"`
	}
	resp := struct {
		Versions []version `json:"model_version_status"`
	}{Versions: make([]version, 0, len(st))}
	for _, v := range st {
		s := status{ErrorCode: ErrorCode(v.Err).String()}
		if v.Err != nil {
			s.ErrorMessage = v.Err.Error()
		}
		resp.Versions = append(resp.Versions, version{Version: strconv.FormatInt(v.Version, 10), State: v.State.String(), Status: s})
	}
	b, err := json.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the status: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// servePage answers GET / and the page's files with the first model's page
// at its latest version; it reports whether the path was one of them.
func (rt router) servePage(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/", "/page.js", "/page.css":
	default:
		return false
	}
	names := rt.models.Names()
	if len(names) == 0 {
		writeError(w, http.StatusServiceUnavailable, "no model is served yet")
		return true
	}
	srv, _, release, err := rt.models.Acquire(ModelSpec{Name: names[0]})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("no version of model %s is available yet: %v", names[0], err))
		return true
	}
	defer release()
	return srv.servePage(w, r)
}

// ServeHandler is Serve for any handler — NewHandler's over many models, or
// a mux of several front ends — with cfg's timeouts, header limit and bound
// on connections (Server.HTTPServer and Server.Listener's; the model fields
// of cfg are not used). It answers on ln until ctx is done, then shuts down
// gracefully, as Serve does (the caller says what was served).
func ServeHandler(ctx context.Context, ln net.Listener, h http.Handler, cfg Config, opt ServeOptions) error {
	if err := cfg.limitDefaults(); err != nil {
		return err
	}
	return serveHTTP(ctx, ln, h, cfg, "the models", opt)
}
