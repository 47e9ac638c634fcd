package kserve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tfcat/tfcat/serving"
)

// NewHandler answers the v2 REST routes (/v2 and below; see the package
// comment) for models. Mount it beside the v1 REST API on the same server,
// giving it the paths IsPath reports (an http.ServeMux would clean and
// redirect paths the v1 router answers as TensorFlow Serving does):
//
//	v1, v2 := serving.NewHandler(models), kserve.NewHandler(models, opt)
//	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		if kserve.IsPath(r.URL.Path) {
//			v2.ServeHTTP(w, r)
//			return
//		}
//		v1.ServeHTTP(w, r)
//	})
//
// Each request acquires its version's Server, is answered by it and releases
// it, so a version swapped out while a request runs finishes that request
// first.
func NewHandler(models serving.Models, opt Options) http.Handler {
	c := newCore(models, opt)
	return &handler{core: c, bodies: newBudget(c.opt.BodyMemory)}
}

// IsPath reports whether path is the v2 protocol's: /v2 or below it.
func IsPath(path string) bool { return path == "/v2" || strings.HasPrefix(path, "/v2/") }

type handler struct {
	*core
	bodies *budget // Options.BodyMemory
}

// headerLength is the binary tensor data extension's header: the length of
// the JSON that begins a body holding binary data.
const headerLength = "Inference-Header-Content-Length"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs, err := segments(r.URL)
	if err != nil || len(segs) == 0 || segs[0] != "v2" {
		writeError(w, http.StatusNotFound, "Malformed request: "+r.Method+" "+r.URL.Path)
		return
	}
	segs = segs[1:]
	if len(segs) == 1 && segs[0] == "" {
		segs = nil // /v2/
	}
	switch {
	case len(segs) == 0:
		if allowed(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, struct {
				Name       string   `json:"name"`
				Version    string   `json:"version"`
				Extensions []string `json:"extensions"`
			}{h.opt.ServerName, h.opt.ServerVersion, Extensions})
		}
		return
	case len(segs) == 2 && segs[0] == "health" && (segs[1] == "live" || segs[1] == "ready"):
		if !allowed(w, r, http.MethodGet) {
			return
		}
		// The protocol's health replies have empty bodies: the status is
		// the answer.
		if segs[1] == "ready" && h.serverReady(context.Background()) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case len(segs) >= 2 && segs[0] == "models":
		h.serveModel(w, r, segs[1:])
		return
	}
	writeError(w, http.StatusNotFound, "Malformed request: "+r.Method+" "+r.URL.Path)
}

// segments splits the URL's path into its unescaped segments.
func segments(u *url.URL) ([]string, error) {
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		segs[i] = v
	}
	return segs, nil
}

// serveModel answers MODEL[/versions/V][/ready|/infer].
func (h *handler) serveModel(w http.ResponseWriter, r *http.Request, segs []string) {
	name, version, verb := segs[0], "", ""
	rest := segs[1:]
	if len(rest) >= 2 && rest[0] == "versions" {
		version, rest = rest[1], rest[2:]
	}
	switch {
	case len(rest) == 1 && (rest[0] == "ready" || rest[0] == "infer"):
		verb = rest[0]
	case len(rest) != 0 || name == "" || (len(segs) > 1 && segs[1] == "versions" && version == ""):
		writeError(w, http.StatusNotFound, "Malformed request: "+r.Method+" "+r.URL.Path)
		return
	}
	want := http.MethodGet
	if verb == "infer" {
		want = http.MethodPost
	}
	if !allowed(w, r, want) {
		return
	}
	ms, err := spec(name, version)
	if err != nil {
		writeErr(w, err)
		return
	}
	switch verb {
	case "":
		md, err := h.metadata(r.Context(), ms)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, md)
	case "ready":
		if err := h.modelReady(r.Context(), ms); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	case "infer":
		h.infer(w, r, ms)
	}
}

// jsonRequest is an inference request's JSON.
type jsonRequest struct {
	ID         string          `json:"id"`
	Parameters parameters      `json:"parameters"`
	Inputs     []jsonInput     `json:"inputs"`
	Outputs    []jsonOutputReq `json:"outputs"`
}

type jsonInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters parameters      `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type jsonOutputReq struct {
	Name       string     `json:"name"`
	Parameters parameters `json:"parameters"`
}

// parameters are a request's, an input's or an output's: JSON booleans,
// numbers or strings by name.
type parameters map[string]json.RawMessage

// bool reads a boolean parameter, false when absent.
func (p parameters) bool(key string) (bool, error) {
	v, ok := p[key]
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, invalid("parameter %q must be a boolean, not %s", key, v)
	}
	return b, nil
}

// int reads a non-negative integer parameter; ok reports whether it is there.
func (p parameters) int(key string) (n int64, ok bool, err error) {
	v, ok := p[key]
	if !ok {
		return 0, false, nil
	}
	if err := json.Unmarshal(v, &n); err != nil || n < 0 {
		return 0, true, invalid("parameter %q must be a non-negative integer, not %s", key, v)
	}
	return n, true, nil
}

// refused refuses the parameters of extensions tfcat lacks.
func (p parameters) refused() error {
	for key := range p {
		if err := refusedParameter(key); err != nil {
			return err
		}
	}
	return nil
}

// infer answers POST .../infer.
func (h *handler) infer(w http.ResponseWriter, r *http.Request, ms serving.ModelSpec) {
	srv, version, rel, err := h.acquire(r.Context(), ms)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer rel()
	ctx, cancel := context.WithTimeout(r.Context(), h.opt.RequestTimeout)
	defer cancel()
	body, release, err := h.readBody(ctx, w, r)
	defer release()
	if err != nil {
		writeErr(w, err)
		return
	}
	header, binary, err := splitBody(r, body)
	if err != nil {
		writeErr(w, err)
		return
	}
	var req jsonRequest
	if err := json.Unmarshal(header, &req); err != nil {
		writeErr(w, invalid("the request's JSON: %v", err))
		return
	}
	if err := req.Parameters.refused(); err != nil {
		writeErr(w, err)
		return
	}
	// The deadline: the request's "timeout" parameter shortens the model
	// version's (Server.Predict applies Config.RequestTimeout).
	pctx := r.Context()
	if us, ok, err := req.Parameters.int("timeout"); err != nil {
		writeErr(w, err)
		return
	} else if ok {
		if us == 0 {
			writeErr(w, invalid("parameter \"timeout\" must be positive"))
			return
		}
		var c context.CancelFunc
		pctx, c = context.WithTimeout(pctx, time.Duration(min(us, int64(1<<62)/1000))*time.Microsecond)
		defer c()
	}
	binaryAll, err := req.Parameters.bool("binary_data_output")
	if err != nil {
		writeErr(w, err)
		return
	}
	names := make([]string, len(req.Outputs))
	binaryOut := make(map[string]bool, len(req.Outputs))
	for i, o := range req.Outputs {
		names[i] = o.Name
		if err := o.Parameters.refused(); err != nil {
			writeErr(w, err)
			return
		}
		b, err := o.Parameters.bool("binary_data")
		if _, given := o.Parameters["binary_data"]; !given {
			b = binaryAll
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		binaryOut[o.Name] = b
	}
	if names, err = checkOutputs(names); err != nil {
		writeErr(w, err)
		return
	}
	if len(req.Outputs) == 0 {
		for _, n := range names {
			binaryOut[n] = binaryAll
		}
	}
	in, err := jsonInputs(srv, req.Inputs, binary)
	if err != nil {
		writeErr(w, err)
		return
	}
	in.MessageBytes = int64(len(body))
	probs, err := srv.Predict(pctx, in)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeInferResponse(w, ms.Name, version, req.ID, outputs(names, probs, in.N, srv.NumClasses()), binaryOut)
}

// splitBody splits a body into its JSON and the binary data after it, as
// the Inference-Header-Content-Length header says.
func splitBody(r *http.Request, body []byte) (header, binary []byte, err error) {
	hl := r.Header.Get(headerLength)
	if hl == "" {
		return body, nil, nil
	}
	n, err := strconv.ParseInt(hl, 10, 64)
	if err != nil || n < 0 || n > int64(len(body)) {
		return nil, nil, invalid("%s: %q is not a length within the body's %d bytes", headerLength, hl, len(body))
	}
	return body[:n], body[n:], nil
}

// jsonInputs reads the request's one input: JSON data, or binary data
// sized by its "binary_data_size" parameter.
func jsonInputs(srv *serving.Server, inputs []jsonInput, binary []byte) (serving.Input, error) {
	// Binary data are consumed in input order.
	var name string
	if len(inputs) > 0 {
		name = inputs[0].Name
	}
	if err := checkInputName(name, len(inputs)); err != nil {
		return serving.Input{}, err
	}
	t := inputs[0]
	if err := t.Parameters.refused(); err != nil {
		return serving.Input{}, err
	}
	size, isBinary, err := t.Parameters.int("binary_data_size")
	if err != nil {
		return serving.Input{}, err
	}
	switch {
	case isBinary && t.Data != nil:
		return serving.Input{}, invalid("input %s has both data and binary_data_size", inputKey)
	case isBinary && size != int64(len(binary)):
		return serving.Input{}, invalid("input %s: binary_data_size %d, and %d bytes of binary data follow the JSON", inputKey, size, len(binary))
	case !isBinary && len(binary) > 0:
		return serving.Input{}, invalid("%d bytes of binary data follow the JSON, and no input has a binary_data_size", len(binary))
	case !isBinary && t.Data == nil:
		return serving.Input{}, invalid("input %s has no data", inputKey)
	}
	switch t.Datatype {
	case dtFP32:
		ft, err := floatShape(srv, t.Shape)
		if err != nil {
			return serving.Input{}, err
		}
		if isBinary {
			in, err := ft.Raw(binary)
			return in, tensorError(srv, err)
		}
		x, err := parseFloats(t.Data, ft.Count)
		if err != nil {
			return serving.Input{}, err
		}
		in, err := ft.Values(x)
		return in, tensorError(srv, err)
	case dtBYTES:
		n, err := bytesShape(srv, t.Shape)
		if err != nil {
			return serving.Input{}, err
		}
		var imgs [][]byte
		if isBinary {
			imgs, err = rawBytes(binary, n)
		} else {
			imgs, err = parseBase64(t.Data, n)
		}
		if err != nil {
			return serving.Input{}, err
		}
		in, err := srv.ImageInput(t.Shape, int64(n), imgs)
		return in, tensorError(srv, err)
	}
	hh, ww, cc := srv.InputSize()
	return serving.Input{}, invalid("input %s: datatype %q; the model takes FP32 [N,%d,%d,%d] (or BYTES [N] of encoded JPEG, PNG or BMP images)", inputKey, t.Datatype, hh, ww, cc)
}

// writeInferResponse writes the reply: the outputs in JSON, those binary
// says after it in the binary extension's form.
func writeInferResponse(w http.ResponseWriter, model string, version int64, id string, outs []output, binary map[string]bool) {
	b := make([]byte, 0, 256+16*len(outs[0].f32)+8*len(outs[len(outs)-1].i64))
	b = append(b, `{"model_name":`...)
	b = appendString(b, model)
	b = append(b, `,"model_version":`...)
	b = appendString(b, strconv.FormatInt(version, 10))
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	var raw [][]byte
	for i, o := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, o.name)
		b = append(b, `,"datatype":"`...)
		b = append(b, o.datatype...)
		b = append(b, `","shape":[`...)
		for j, d := range o.shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		if binary[o.name] {
			r := o.raw()
			raw = append(raw, r)
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(len(r)), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":[`...)
		if o.i64 != nil {
			for j, v := range o.i64 {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, v, 10)
			}
		} else {
			for j, v := range o.f32 {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFloat(b, v)
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	if raw == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	n := len(b)
	for _, r := range raw {
		b = append(b, r...)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(headerLength, strconv.Itoa(n))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// allowed answers 405 (with Allow) unless r's method is want; HEAD is
// allowed where GET is.
func allowed(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	allow := want
	if want == http.MethodGet {
		allow = "GET, HEAD"
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Malformed request: %s %s: use %s", r.Method, r.URL.Path, want))
	return false
}

// writeErr answers err in v2's error form with its HTTP status.
func writeErr(w http.ResponseWriter, err error) {
	writeError(w, httpStatus(err), errorMessage(err))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{"encoding the reply: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
