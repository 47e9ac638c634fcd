// Package serving answers TensorFlow Serving's REST API for a tfcat model, so
// that clients written for TensorFlow Serving work against tfcat serve.
//
// Routes (NAME is Config.Name; /versions/V may follow NAME where V is the
// served version):
//
//	POST /v1/models/NAME:predict         row {"instances": [...]} or columnar {"inputs": ...}
//	POST /v1/models/NAME:classify-image  a raw JPEG, PNG or BMP body (tfcat's own)
//	GET  /v1/models/NAME                 the version's status
//	GET  /v1/models/NAME/metadata        the serving_default SignatureDef
//
// An instance is a float tensor [H][W][C] (already preprocessed), or
// {"b64": "<base64 of a JPEG, PNG or BMP>"}, which goes through the dataset
// package's OpenCV-identical preprocessing; either may be named,
// {"images": ...}. A row request is answered
// {"predictions": [{"probabilities": [...], "classes": k}, ...]}, a columnar
// one {"outputs": {"probabilities": [[...]], "classes": [...]}}. The
// request may name one output, "output_filter": ["classes"] (a tfcat
// extension mirroring gRPC's PredictRequest.output_filter); the answer then
// carries the bare value, as TensorFlow Serving answers for single-output
// signatures. NaN and Infinity are accepted and written as such.
//
// Errors are {"error": "<message>"} with TensorFlow Serving's status codes:
// 400 for malformed JSON, wrong shapes, undecodable images and malformed
// paths, 404 for an unknown model or version, 500 when the model fails, 503
// after Close. Where TensorFlow Serving has no rule tfcat answers as HTTP
// does: 405 (with Allow) for a wrong method, 413 for a body over
// Config.MaxBodyBytes. Every reply is Content-Type: application/json.
//
// Concurrent requests are batched: their images are run together in one
// Session.Run of at most Config.MaxBatch images, the first waiting up to
// Config.BatchWait for company.
package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
)

// Defaults of Config.
const (
	DefaultName         = "default" // TensorFlow Serving's default --model_name
	DefaultMaxBatch     = 32
	DefaultBatchWait    = 2 * time.Millisecond
	DefaultMaxBodyBytes = 32 << 20
	DefaultMaxInstances = 256
)

// The signature's names, as the export writes them.
const (
	InputKey         = savedmodel.InputKey
	ProbabilitiesKey = savedmodel.ProbabilitiesKey
	ClassesKey       = savedmodel.ClassesKey
)

// Config sets up a Server. The zero value serves as "default", version 1.
type Config struct {
	// Name is the model's name in URLs; DefaultName when empty.
	Name string
	// Version is the one version served; 1 when zero.
	Version int64
	// Classes names the classes in label order, for :classify-image; numbered
	// when nil.
	Classes []string
	// MaxBatch is the most images per Session.Run; DefaultMaxBatch when zero.
	// 1 turns batching off.
	MaxBatch int
	// BatchWait is how long a batch's first request waits for others;
	// DefaultBatchWait when zero, no wait when negative.
	BatchWait time.Duration
	// MaxBodyBytes limits a request body; DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// MaxInstances limits the images of one request; DefaultMaxInstances
	// when zero.
	MaxInstances int
	// Signature is what the metadata endpoint reports; by default the
	// serving_default signature an export of the model carries.
	Signature *corepb.SignatureDef
}

// Server is an http.Handler serving one model. It is safe for concurrent use.
type Server struct {
	m       tfgraph.Classifier
	cfg     Config
	h, w, c int
	k       int
	batch   *batcher
	meta    []byte // the metadata reply
	closed  chan struct{}
	once    sync.Once
}

// New serves m. The server owns neither m nor its lifetime: Close the server,
// then m.
func New(m tfgraph.Classifier, cfg Config) (*Server, error) {
	if m == nil {
		return nil, errors.New("serving: no model")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if !nameRe.MatchString(cfg.Name) {
		return nil, fmt.Errorf("serving: model name %q must be letters, digits, '.', '_' or '-'", cfg.Name)
	}
	if cfg.Version == 0 {
		cfg.Version = 1
	}
	if cfg.Version < 0 {
		return nil, fmt.Errorf("serving: version %d must be positive", cfg.Version)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInstances == 0 {
		cfg.MaxInstances = DefaultMaxInstances
	}
	if cfg.MaxBatch < 0 || cfg.MaxBodyBytes < 0 || cfg.MaxInstances < 0 {
		return nil, fmt.Errorf("serving: max batch %d, max body %d and max instances %d must be positive", cfg.MaxBatch, cfg.MaxBodyBytes, cfg.MaxInstances)
	}
	s := &Server{m: m, cfg: cfg, k: m.NumClasses(), closed: make(chan struct{})}
	s.h, s.w, s.c = m.InputSize()
	if s.h <= 0 || s.w <= 0 || s.c <= 0 || s.k <= 0 {
		return nil, fmt.Errorf("serving: the model takes %dx%dx%d images into %d classes", s.h, s.w, s.c, s.k)
	}
	if cfg.Classes == nil {
		s.cfg.Classes = make([]string, s.k)
		for i := range s.cfg.Classes {
			s.cfg.Classes[i] = strconv.Itoa(i)
		}
	} else if len(cfg.Classes) != s.k {
		return nil, fmt.Errorf("serving: %d class names for %d classes", len(cfg.Classes), s.k)
	}
	sig := cfg.Signature
	if sig == nil {
		sig = savedmodel.ServingSignature(s.h, s.w, s.c, s.k)
	}
	var err error
	if s.meta, err = metadataJSON(cfg.Name, cfg.Version, sig); err != nil {
		return nil, err
	}
	s.batch = newBatcher(m, cfg.MaxBatch, cfg.BatchWait)
	return s, nil
}

// Close stops the batcher after the batch in progress; predictions asked for
// afterwards get 503. Shut the http.Server down first, so that requests in
// flight are answered.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.batch.close()
	})
	return nil
}

// Stats counts the batches run so far.
type Stats struct {
	Batches int64 // Session.Run calls
	Images  int64 // images predicted
	Largest int64 // the largest batch
}

// Stats reports the batches run so far.
func (s *Server) Stats() Stats {
	return Stats{Batches: s.batch.batches.Load(), Images: s.batch.images.Load(), Largest: s.batch.largest.Load()}
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// /v1/models/NAME[/versions/V|/labels/L][:verb|/metadata]
	pathRe = regexp.MustCompile(`^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(?::([A-Za-z-]+)|(/metadata))?$`)
)

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
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
	switch {
	case name != s.cfg.Name && version != "":
		writeError(w, http.StatusNotFound, fmt.Sprintf("Servable not found for request: Specific(%s, %s)", name, version))
		return
	case name != s.cfg.Name:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Servable not found for request: Latest(%s)", name))
		return
	case label != "":
		writeError(w, http.StatusNotFound, fmt.Sprintf("Unrecognized servable version label: %s", label))
		return
	case version != "" && version != strconv.FormatInt(s.cfg.Version, 10):
		writeError(w, http.StatusNotFound, fmt.Sprintf("Servable not found for request: Specific(%s, %s)", name, version))
		return
	}
	want := http.MethodGet
	if verb != "" {
		want = http.MethodPost
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Malformed request: %s %s: use %s", r.Method, path, want))
		return
	}
	switch {
	case metadata:
		writeJSON(w, http.StatusOK, s.meta)
	case verb == "":
		s.status(w)
	case verb == "predict":
		s.predict(w, r)
	case verb == "classify-image":
		s.classifyImage(w, r)
	case verb == "classify" || verb == "regress":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Expected classification or regression signature, but %s is a predict signature (%s): use :predict", savedmodel.SignatureKey, savedmodel.PredictMethod))
	default:
		writeError(w, http.StatusBadRequest, "Malformed request: "+r.Method+" "+path)
	}
}

func (s *Server) status(w http.ResponseWriter) {
	state := "AVAILABLE"
	select {
	case <-s.closed:
		state = "UNLOADING"
	default:
	}
	v := fmt.Sprintf(`{"model_version_status":[{"version":"%d","state":"%s","status":{"error_code":"OK","error_message":""}}]}`, s.cfg.Version, state)
	writeJSON(w, http.StatusOK, []byte(v))
}

// metadataJSON is GetModelMetadataResponse as TensorFlow Serving writes it:
// proto field names, default values printed, int64 as strings.
func metadataJSON(name string, version int64, sig *corepb.SignatureDef) ([]byte, error) {
	sigJSON, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(sig)
	if err != nil {
		return nil, fmt.Errorf("serving: encoding the signature: %w", err)
	}
	type spec struct {
		Name          string `json:"name"`
		SignatureName string `json:"signature_name"`
		Version       string `json:"version"`
	}
	resp := struct {
		ModelSpec spec `json:"model_spec"`
		Metadata  struct {
			SignatureDef struct {
				SignatureDef map[string]json.RawMessage `json:"signature_def"`
			} `json:"signature_def"`
		} `json:"metadata"`
	}{ModelSpec: spec{Name: name, Version: strconv.FormatInt(version, 10)}}
	resp.Metadata.SignatureDef.SignatureDef = map[string]json.RawMessage{savedmodel.SignatureKey: sigJSON}
	return json.Marshal(resp)
}

// readBody reads the request body within the size limit. It writes the
// error reply itself and returns nil when it fails.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) []byte {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes))
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
		return nil
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return nil
	}
	return body
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	body := s.readBody(w, r)
	if body == nil {
		return
	}
	req, err := parseRequest(body, s.h, s.w, s.c, s.cfg.MaxInstances)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.signature != "" && req.signature != savedmodel.SignatureKey {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Serving signature name: %q not found in signature def", req.signature))
		return
	}
	outputs := []string{ProbabilitiesKey, ClassesKey}
	if req.outputs != nil {
		if outputs, err = checkOutputs(req.outputs); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := s.decodeImages(req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	probs, err := s.batch.predict(r.Context(), req.x, req.n)
	if err != nil {
		s.predictError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, encodePredictions(req.columnar, outputs, probs, req.n, s.k))
}

func checkOutputs(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("output_filter is empty")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n != ProbabilitiesKey && n != ClassesKey {
			return nil, fmt.Errorf("output tensor alias not found in signature: %s; outputs are %s and %s", n, ProbabilitiesKey, ClassesKey)
		}
		if seen[n] {
			return nil, fmt.Errorf("duplicate output tensor alias in output_filter: %s", n)
		}
		seen[n] = true
	}
	return names, nil
}

// decodeImages preprocesses the request's encoded images into its tensor, in
// parallel when there are several.
func (s *Server) decodeImages(req *request) error {
	var idx []int
	for i, img := range req.images {
		if img != nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if s.h != s.w {
		return fmt.Errorf("the model takes %dx%d images; tfcat's preprocessing of b64 images makes square ones: send float tensors", s.h, s.w)
	}
	size := s.h * s.w * s.c
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for k, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			x, err := dataset.Preprocess(req.images[i], s.h, s.c)
			if err != nil {
				errs[k] = fmt.Errorf("instance %d: decoding the b64 image: %w", i, err)
				return
			}
			copy(req.x[i*size:(i+1)*size], x)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) predictError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client is gone or gave up; 499 is TensorFlow Serving's CANCELLED.
		writeError(w, 499, "the request was cancelled: "+err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// imageResult is the :classify-image reply.
type imageResult struct {
	Class         string             `json:"class"`
	Index         int                `json:"index"`
	Probabilities map[string]float32 `json:"probabilities"`
}

func (s *Server) classifyImage(w http.ResponseWriter, r *http.Request) {
	body := s.readBody(w, r)
	if body == nil {
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "the request body is empty: send the bytes of a JPEG, PNG or BMP image")
		return
	}
	req := &request{n: 1, x: make([]float32, s.h*s.w*s.c), images: [][]byte{body}}
	if err := s.decodeImages(req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	probs, err := s.batch.predict(r.Context(), req.x, 1)
	if err != nil {
		s.predictError(w, err)
		return
	}
	res := imageResult{Index: metrics.ArgMax(probs), Probabilities: make(map[string]float32, s.k)}
	res.Class = s.cfg.Classes[res.Index]
	for i, p := range probs {
		res.Probabilities[s.cfg.Classes[i]] = p
	}
	b, err := json.Marshal(res)
	if err != nil { // NaN probabilities
		writeError(w, http.StatusInternalServerError, "encoding the reply: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(body)
	w.Write([]byte{'\n'})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	writeJSON(w, code, b)
}
