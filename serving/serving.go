// Package serving answers TensorFlow Serving's REST API for a tfcat model, so
// that clients written for TensorFlow Serving work against tfcat serve.
//
// Routes (NAME is Config.Name; /versions/V or /labels/L may follow NAME to
// pick a version, by default the latest):
//
//	POST /v1/models/NAME:predict         row {"instances": [...]} or columnar {"inputs": ...}
//	POST /v1/models/NAME:classify-image  a raw JPEG, PNG or BMP body (tfcat's own)
//	GET  /v1/models/NAME                 the versions' status
//	GET  /v1/models/NAME/metadata        the serving_default SignatureDef
//	GET  /                               a page to try the model in a browser
//
// A Server answers for its one model and version. NewHandler answers the
// same routes for every model and version of a Models (package servables
// serves base paths of numbered versions and TensorFlow Serving's model
// config files), each request on the Server of the version it asked for.
//
// The page shows the model's name, classes and input size, and sends an
// image a person drops or picks to :classify-image from the browser. It and
// its script and style sheet (/page.js, /page.css) are the server's own
// files, served with PageContentSecurityPolicy: the page loads nothing from
// elsewhere, and the names it shows are escaped.
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
// 400 for malformed JSON, wrong shapes, undecodable images, images over
// Config.MaxImagePixels and malformed paths, 404 for an unknown model or
// version, 500 when the model fails, 503 after Close and when a request's
// deadline (Config.RequestTimeout) passes while it waits for memory
// (Config.DecodeMemory) or a request slot (RESOURCE_EXHAUSTED), 504 when it
// passes while predicting. Where TensorFlow Serving has no rule tfcat answers
// as HTTP does: 405 (with Allow) for a wrong method, 413 for a body over
// Config.MaxBodyBytes or a request needing more than the whole memory
// budget. Every reply is Content-Type: application/json.
//
// Untrusted clients: every image's header is read before its pixels, images
// over the pixel limit are refused from it, and each decode holds its share
// of the memory budget (dataset.Header.DecodeMemory) while it runs; a body
// takes its length and its parsed tensor's from the budget before it is read
// (limits.go). Server.HTTPServer and Server.Listener add
// the timeouts (slow clients are dropped), the header limit and the bound on
// connections.
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
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/parallel"
	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfsession"
)

// Defaults of Config.
const (
	DefaultName         = "default" // TensorFlow Serving's default --model_name
	DefaultMaxBatch     = 32
	DefaultBatchWait    = 2 * time.Millisecond
	DefaultMaxBodyBytes = 32 << 20
	DefaultMaxInstances = 256
	// DefaultMaxImagePixels refuses images over 16.7 MP (4096×4096) from
	// their header: with at most 25 bytes a pixel held while one decodes
	// (dataset.Header.DecodeMemory: a 16-bit interlaced PNG with EXIF
	// orientation is the worst case), one image takes at most 420 MB, and
	// a 12 MP photo about 110 MB.
	DefaultMaxImagePixels = 1 << 24
	// DefaultDecodeMemory bounds the memory held by all requests in flight
	// together: request bodies as they arrive, parsed tensors and image
	// decodes. It holds one image of DefaultMaxImagePixels at its worst.
	DefaultDecodeMemory = 512 << 20
	// DefaultRequestTimeout is each request's deadline, from its headers
	// to its reply.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxConcurrentRequests bounds the requests parsed, decoded or
	// predicted at once (others wait, within their deadline).
	DefaultMaxConcurrentRequests = 64
	// DefaultMaxConnections bounds open connections (more wait in the
	// listen backlog).
	DefaultMaxConnections = 512
	// DefaultReadHeaderTimeout drops a client that takes longer to send its
	// request line and headers (one sending a byte a second).
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout drops a client that takes longer to send a whole
	// request, body included.
	DefaultReadTimeout = 20 * time.Second
	// DefaultIdleTimeout closes a kept-alive connection idle this long.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes limits the request line and headers.
	DefaultMaxHeaderBytes = 64 << 10
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
	// when nil (the page then says the model stores no names).
	Classes []string
	// Source, when set, says on the page where the model came from (its
	// path).
	Source string
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

	// MaxImagePixels refuses larger images (width×height from the header,
	// before decoding: 400); DefaultMaxImagePixels when zero.
	MaxImagePixels int
	// DecodeMemory is the memory budget of all requests in flight, in
	// bytes: bodies take it as they arrive, parsed tensors and each image
	// decode (dataset.Header.DecodeMemory) while they are held. A request
	// waits for its share; one whose deadline comes first gets 503
	// (TensorFlow Serving's RESOURCE_EXHAUSTED), one needing more than the
	// whole budget 413. DefaultDecodeMemory when zero.
	DecodeMemory int64
	// RequestTimeout is each request's deadline; DefaultRequestTimeout
	// when zero.
	RequestTimeout time.Duration
	// MaxConcurrentRequests bounds the requests being parsed, decoded or
	// predicted at once (bodies are read before); others wait within their
	// deadline, then get 503. DefaultMaxConcurrentRequests when zero.
	MaxConcurrentRequests int
	// The http.Server that HTTPServer returns: MaxConnections bounds open
	// connections (through Listener), the rest are http.Server's fields.
	// Each takes its Default when zero.
	MaxConnections    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	// OnBatch, when set, is called after each batch the model runs, on the
	// batcher's goroutine (keep it quick): for metrics (package
	// serving/monitoring).
	OnBatch func(Batch)
}

// Server is an http.Handler serving one model. It is safe for concurrent use.
type Server struct {
	m       tfsession.Classifier
	cfg     Config
	h, w, c int
	k       int
	resize  pixels.ResizeMode // the model's, applied to every image
	batch   *batcher
	meta    []byte // the metadata reply
	page    []byte // GET /
	named   bool   // Config.Classes were given
	closed  chan struct{}
	once    sync.Once

	mem, slots *budget     // DecodeMemory and MaxConcurrentRequests
	freeing    atomic.Bool // a FreeOSMemory is pending
	lastFree   atomic.Int64
	rejected   [3]atomic.Int64 // by reason: see Stats
}

// New serves m. The server owns neither m nor its lifetime: Close the server,
// then m.
func New(m tfsession.Classifier, cfg Config) (*Server, error) {
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
	if err := cfg.limitDefaults(); err != nil {
		return nil, err
	}
	s := &Server{m: m, cfg: cfg, k: m.NumClasses(), closed: make(chan struct{}),
		mem: newBudget(cfg.DecodeMemory, "bytes of decode memory"), slots: newBudget(int64(cfg.MaxConcurrentRequests), "request slots")}
	s.h, s.w, s.c = m.InputSize()
	s.resize = tfsession.ResizeModeOf(m)
	if s.h <= 0 || s.w <= 0 || s.c <= 0 || s.k <= 0 {
		return nil, fmt.Errorf("serving: the model takes %dx%dx%d images into %d classes", s.h, s.w, s.c, s.k)
	}
	s.named = cfg.Classes != nil
	if cfg.Classes == nil {
		s.cfg.Classes = network.NumberedClasses(s.k)
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
	if s.page, err = s.renderPage(); err != nil {
		return nil, err
	}
	s.batch = newBatcher(m, cfg.MaxBatch, cfg.BatchWait, batchHook(s.cfg))
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

// Stats counts the batches run so far, and the requests turned away by the
// limits.
type Stats struct {
	Batches int64 // Session.Run calls
	Images  int64 // images predicted
	Largest int64 // the largest batch
	// OverLimit counts requests over a size limit (body, pixels, budget):
	// 400 or 413. Busy counts those that found no memory or request slot
	// before their deadline: 503. TimedOut counts those whose deadline
	// passed while predicting: 504.
	OverLimit, Busy, TimedOut int64
	// DecodeMemory is the budget's bytes held now.
	DecodeMemory int64
}

// Stats reports the batches run so far.
func (s *Server) Stats() Stats {
	return Stats{Batches: s.batch.batches.Load(), Images: s.batch.images.Load(), Largest: s.batch.largest.Load(),
		OverLimit: s.rejected[rejectedLimit].Load(), Busy: s.rejected[rejectedBusy].Load(), TimedOut: s.rejected[rejectedTimeout].Load(),
		DecodeMemory: s.mem.held()}
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// /v1/models/NAME[/versions/V|/labels/L][:verb|/metadata]
	pathRe = regexp.MustCompile(`^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(?::([A-Za-z-]+)|(/metadata))?$`)
)

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

// tensorBound is the most float32 tensor a JSON body of n bytes parses
// into: every number takes at least two bytes (a digit and a separator) for
// its four, and a request holds at most MaxInstances images.
func (s *Server) tensorBound(n int64) int64 {
	return min(2*(n+1), int64(s.cfg.MaxInstances)*int64(s.h*s.w*s.c)*4)
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	h := &held{s: s}
	defer h.release()
	body := s.readBody(ctx, w, r, h, s.tensorBound)
	if body == nil {
		return
	}
	if err := s.slot(ctx, h); err != nil {
		s.budgetError(w, err)
		return
	}
	req, err := parseRequest(body, s.h, s.w, s.c, s.cfg.MaxInstances)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// From the reservation; more only for b64 instances of tiny images,
	// whose zeroed tensor can outgrow the JSON bound.
	if err := h.take(ctx, int64(len(req.x))*4); err != nil {
		s.budgetError(w, err)
		return
	}
	h.unreserve()
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
	if err := s.decodeImages(ctx, req, h); err != nil {
		s.decodeError(w, err)
		return
	}
	probs, err := s.batch.predict(ctx, req.x, req.n)
	if err != nil {
		s.predictError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, encodePredictions(req.columnar, outputs, probs, req.n, s.k))
}

// slot takes one of MaxConcurrentRequests for the rest of the request.
func (s *Server) slot(ctx context.Context, h *held) error {
	if err := s.slots.acquire(ctx, 1); err != nil {
		return err
	}
	h.slot = true
	return nil
}

// decodeError answers a failed decode: 503 for a wait for memory that the
// deadline ended, 413 for an image needing more than the whole budget, 400
// for the rest (undecodable, over the pixel limit).
func (s *Server) decodeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errExhausted), errors.Is(err, errTooBig):
		s.budgetError(w, err)
	case errors.Is(err, dataset.ErrTooLarge):
		s.reject(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
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
// parallel when there are several, each within the pixel limit and holding
// its decode memory while it decodes. The first failure stops the rest.
func (s *Server) decodeImages(ctx context.Context, req *request, h *held) error {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := s.h * s.w * s.c
	var (
		mu    sync.Mutex
		first error
	)
	parallel.For(len(idx), runtime.GOMAXPROCS(0), func(_, k int) bool {
		if ctx.Err() != nil {
			return false
		}
		i := idx[k]
		x, err := s.decodeImage(ctx, req.images[i], h, &mu)
		if err != nil {
			mu.Lock()
			if first == nil {
				first = fmt.Errorf("instance %d: decoding the b64 image: %w", i, err)
				cancel()
			}
			mu.Unlock()
			return false
		}
		copy(req.x[i*size:(i+1)*size], x)
		return true
	})
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("%w: decoding the images: %w", errExhausted, ctx.Err())
	}
	return first
}

func (s *Server) predictError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		// The server's deadline: TensorFlow Serving's DEADLINE_EXCEEDED.
		s.rejected[rejectedTimeout].Add(1)
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("the request's deadline of %v passed: %v", s.cfg.RequestTimeout, err))
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
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	h := &held{s: s}
	defer h.release()
	body := s.readBody(ctx, w, r, h, nil)
	if body == nil {
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "the request body is empty: send the bytes of a JPEG, PNG or BMP image")
		return
	}
	if err := s.slot(ctx, h); err != nil {
		s.budgetError(w, err)
		return
	}
	req := &request{n: 1, x: make([]float32, s.h*s.w*s.c), images: [][]byte{body}}
	if err := s.decodeImages(ctx, req, h); err != nil {
		s.decodeError(w, err)
		return
	}
	probs, err := s.batch.predict(ctx, req.x, 1)
	if err != nil {
		s.predictError(w, r, err)
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
