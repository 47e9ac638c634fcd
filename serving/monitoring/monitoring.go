// Package monitoring exports tfcat serve's Prometheus metrics at
// /monitoring/prometheus/metrics, TensorFlow Serving's path, with the same
// names and labels on every API: TensorFlow Serving's REST ("rest") and gRPC
// ("grpc") APIs, and KServe's v2 protocol over REST ("v2") and gRPC
// ("grpc_v2").
//
//	tfcat_requests_total{api,model,version,method,code}          counter
//	tfcat_request_duration_seconds{api,model,version,method}     histogram
//	tfcat_requests_in_flight{api}                                gauge
//	tfcat_batch_size{model}                                      histogram: images per Session.Run
//	tfcat_batch_duration_seconds{model}                          histogram: the model's time per batch
//	tfcat_model_versions{model,state}                            gauge: versions START, LOADING, AVAILABLE, UNLOADING
//	tfcat_model_load_failures_total{model}                       counter
//	tfcat_decode_memory_bytes                                    gauge: request memory held (bodies, tensors, decodes)
//
// and the Go runtime's and the process's (go_*, process_*) unless
// Options.Registry is given.
//
// Labels:
//
//   - api: the front end, as given to HTTP, or "grpc" ("grpc_v2" for
//     inference.GRPCInferenceService) for GRPCUnary.
//   - model and version: the model version that answered (reported by the
//     handler through serving.ReportServed), else the one the request names,
//     when it succeeded or names a version OnVersionState was told of; ""
//     otherwise (a request for an unknown model, the latest version of a
//     handler that does not report). Values come only from versions that
//     exist, so clients cannot make new series at will.
//   - method: the gRPC method, and the REST route under the name of the gRPC
//     method it mirrors: Predict, Classify, Regress, ClassifyImage (tfcat's
//     :classify-image), GetModelMetadata, GetModelStatus, Page (GET /), and
//     for v2 ModelInfer, ModelReady, ModelMetadata, ServerLive, ServerReady,
//     ServerMetadata; "other" for anything else.
//   - code: the HTTP status on REST ("200", "404"), the gRPC code's
//     TensorFlow name on gRPC ("OK", "NOT_FOUND", "RESOURCE_EXHAUSTED").
//   - state: a version's state, TensorFlow Serving's names.
package monitoring

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tfcat/tfcat/serving"
)

// Path is where TensorFlow Serving exports its Prometheus metrics (its
// monitoring config's default path).
const Path = "/monitoring/prometheus/metrics"

// The APIs' label values.
const (
	APIREST   = "rest"
	APIGRPC   = "grpc"
	APIV2     = "v2"
	APIGRPCV2 = "grpc_v2"
)

// DurationBuckets are tfcat_request_duration_seconds' and
// tfcat_batch_duration_seconds' buckets: a millisecond to
// serving.DefaultRequestTimeout.
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// BatchBuckets are tfcat_batch_size's buckets: powers of two to
// serving.DefaultMaxInstances.
var BatchBuckets = prometheus.ExponentialBuckets(1, 2, 9)

// Options set up Metrics.
type Options struct {
	// Registry holds the metrics, and Handler serves it; a new one with
	// the Go runtime's and the process's collectors when nil.
	Registry *prometheus.Registry
}

// Metrics are tfcat serve's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	batch    *prometheus.HistogramVec
	batchDur *prometheus.HistogramVec
	failures *prometheus.CounterVec
	decode   atomic.Pointer[func() int64]

	mu       sync.Mutex
	versions map[string]map[int64]serving.VersionState // every version reported, by model
}

// New registers tfcat's metrics.
func New(opt Options) *Metrics {
	reg := opt.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tfcat_requests_total",
			Help: "Requests answered, by API, model, version, method and status code.",
		}, []string{"api", "model", "version", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tfcat_request_duration_seconds",
			Help:    "Time from a request's arrival to its reply, by API, model, version and method.",
			Buckets: DurationBuckets,
		}, []string{"api", "model", "version", "method"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tfcat_requests_in_flight",
			Help: "Requests being answered, by API.",
		}, []string{"api"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tfcat_batch_size",
			Help:    "Images per batch the model ran (requests merged by the batcher).",
			Buckets: BatchBuckets,
		}, []string{"model"}),
		batchDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tfcat_batch_duration_seconds",
			Help:    "The model's time to run one batch.",
			Buckets: DurationBuckets,
		}, []string{"model"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tfcat_model_load_failures_total",
			Help: "Model versions that failed to load (refused by the checks, unreadable, missing files).",
		}, []string{"model"}),
		versions: map[string]map[int64]serving.VersionState{},
	}
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.batch, m.batchDur, m.failures,
		versionsCollector{m},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tfcat_decode_memory_bytes",
			Help: "Memory held by requests in flight (bodies, tensors, image decodes) out of the decode memory budget.",
		}, func() float64 {
			if f := m.decode.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		}))
	return m
}

// Registry is the registry holding the metrics, for a program's own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format (or OpenMetrics, or
// compressed, as the scraper asks): mount it at Path.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// OnBatch records one batch; it is a serving.Config.OnBatch.
func (m *Metrics) OnBatch(b serving.Batch) {
	m.batch.WithLabelValues(b.Model).Observe(float64(b.Images))
	m.batchDur.WithLabelValues(b.Model).Observe(b.Duration.Seconds())
}

// DecodeMemory sets what tfcat_decode_memory_bytes reports, read at each
// scrape: the bytes of the decode memory budgets held now (for one Server,
// its Stats().DecodeMemory; for many, DecodeMemoryOf).
func (m *Metrics) DecodeMemory(f func() int64) { m.decode.Store(&f) }

// DecodeMemoryOf sums Stats().DecodeMemory over the available versions of
// every model of models, for DecodeMemory.
func DecodeMemoryOf(models serving.Models) func() int64 {
	return func() int64 {
		var sum int64
		for _, name := range models.Names() {
			st, err := models.Status(serving.ModelSpec{Name: name})
			if err != nil {
				continue
			}
			for _, v := range st {
				if v.State != serving.StateAvailable {
					continue
				}
				srv, _, release, err := models.Acquire(serving.ModelSpec{Name: name, Version: v.Version})
				if err != nil {
					continue
				}
				sum += srv.Stats().DecodeMemory
				release()
			}
		}
		return sum
	}
}

// OnVersionState records a version's change of state: it is a
// servables.Options.OnState. tfcat_model_versions counts versions by their
// last state (END versions, unloaded or failed, are not counted), and a
// version that ends with an error counts in tfcat_model_load_failures_total.
// The versions told of are also those whose number a failed request may
// carry as its version label. For a Server serving one fixed version (tfcat
// serve --model) call it once with serving.StateAvailable.
func (m *Metrics) OnVersionState(model string, version int64, state serving.VersionState, err error) {
	m.mu.Lock()
	vs := m.versions[model]
	if vs == nil {
		vs = map[int64]serving.VersionState{}
		m.versions[model] = vs
	}
	vs[version] = state
	m.mu.Unlock()
	if state == serving.StateEnd && err != nil {
		m.failures.WithLabelValues(model).Inc()
	} else {
		m.failures.WithLabelValues(model) // the series at 0, so that rate() sees the first failure
	}
}

// known reports whether OnVersionState was told of model (version 0: any of
// its versions) at version.
func (m *Metrics) known(model string, version int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs, ok := m.versions[model]
	if !ok || version == 0 {
		return ok
	}
	_, ok = vs[version]
	return ok
}

// versionsCollector reports tfcat_model_versions from Metrics.versions.
type versionsCollector struct{ m *Metrics }

var versionsDesc = prometheus.NewDesc("tfcat_model_versions",
	"Model versions by state (TensorFlow Serving's: START, LOADING, AVAILABLE, UNLOADING).", []string{"model", "state"}, nil)

// The states counted, each reported for every model (0 included).
var countedStates = []serving.VersionState{serving.StateStart, serving.StateLoading, serving.StateAvailable, serving.StateUnloading}

func (c versionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- versionsDesc }

func (c versionsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	counts := make(map[string]map[serving.VersionState]int, len(c.m.versions))
	for model, vs := range c.m.versions {
		n := map[serving.VersionState]int{}
		for _, s := range vs {
			n[s]++
		}
		counts[model] = n
	}
	c.m.mu.Unlock()
	for model, n := range counts {
		for _, s := range countedStates {
			ch <- prometheus.MustNewConstMetric(versionsDesc, prometheus.GaugeValue, float64(n[s]), model, s.String())
		}
	}
}

// versionLabel is a version number as a label: "" for none.
func versionLabel(v int64) string {
	if v <= 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}
