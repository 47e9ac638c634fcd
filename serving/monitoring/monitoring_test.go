package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/internal/testenv/grpctest"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/servables"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/serving/monitoring"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output
)

// TestMain fails the package in one line when the Python reference
// environment (TestCounts' parser) is missing.
func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }

// The hooks' signatures are those the lead wires in.
var (
	_ = servables.Options{OnState: (*monitoring.Metrics)(nil).OnVersionState}
	_ = serving.Config{OnBatch: (*monitoring.Metrics)(nil).OnBatch}
)

const side = 32 // the test model takes 32×32×3 images

// key is one series of tfcat_requests_total.
type key struct{ api, model, version, method, code string }

func (k key) String() string {
	return fmt.Sprintf("{api=%q model=%q version=%q method=%q code=%q}", k.api, k.model, k.version, k.method, k.code)
}

// TestCounts sends requests that succeed and fail over REST and gRPC to one
// model version served with the metrics wired as tfcat serve wires them,
// scrapes /monitoring/prometheus/metrics, and parses it with the Prometheus
// Go library's text parser and with the official Python client's: both read
// the same samples, and the request counts equal those sent, by API, model,
// version, method and code; the latency histograms count the same requests;
// the batch size histogram counts the batches and images the server ran.
func TestCounts(t *testing.T) {
	met := monitoring.New(monitoring.Options{})
	const version = 3
	srv, err := serving.New(testmodel.Serving(t, side, 3), serving.Config{Name: "pets", Version: version, Classes: []string{"cat", "dog", "bird"}, OnBatch: met.OnBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	met.OnVersionState("pets", version, serving.StateAvailable, nil)
	met.DecodeMemory(func() int64 { return srv.Stats().DecodeMemory })
	models := serving.One(srv)

	mux := http.NewServeMux()
	mux.Handle(monitoring.Path, met.Handler())
	mux.Handle("/", met.HTTP(monitoring.APIREST, serving.NewHandler(models)))
	hs := httptest.NewServer(mux)
	defer hs.Close()

	gs := grpcapi.NewServer(models, grpcapi.Options{ServerOptions: []grpc.ServerOption{grpc.UnaryInterceptor(met.GRPCUnary())}})
	conn, stop := grpctest.Serve(t, gs)
	defer stop()

	// A request for the latest version carries the version that answered
	// once the handler reports it (serving.ReportServed), none before.
	latest := ""
	{
		ctx, served := serving.WithServed(context.Background())
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/models/pets/metadata", nil)
		serving.NewHandler(models).ServeHTTP(httptest.NewRecorder(), r)
		if _, v, ok := served.Get(); ok {
			latest = strconv.FormatInt(v, 10)
		}
	}

	want := map[key]int{}
	images, batches := 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	instances := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"instances": [`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("[")
			for y := range side {
				if y > 0 {
					b.WriteString(",")
				}
				b.WriteString("[")
				for x := range side {
					if x > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, "[%g,%g,%g]", rng.Float32(), rng.Float32(), rng.Float32())
				}
				b.WriteString("]")
			}
			b.WriteString("]")
		}
		b.WriteString("]}")
		return b.String()
	}
	rest := func(times int, method, path, body string, code int, k key) {
		t.Helper()
		for range times {
			req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, code)
			}
		}
		k.api, k.code = monitoring.APIREST, strconv.Itoa(code)
		want[k] += times
	}
	rest(5, "POST", "/v1/models/pets:predict", instances(1), 200, key{model: "pets", version: latest, method: "Predict"})
	rest(3, "POST", "/v1/models/pets/versions/3:predict", instances(2), 200, key{model: "pets", version: "3", method: "Predict"})
	images, batches = images+5*1+3*2, batches+5+3
	rest(2, "POST", "/v1/models/pets/versions/3:predict", `{"instances": [[1, 2]]}`, 400, key{model: "pets", version: "3", method: "Predict"})
	rest(2, "GET", "/v1/models/pets/versions/3:predict", "", 405, key{model: "pets", version: "3", method: "Predict"})
	rest(4, "POST", "/v1/models/nobody:predict", instances(1), 404, key{method: "Predict"})
	rest(2, "POST", "/v1/models/pets/versions/9:predict", instances(1), 404, key{model: "pets", method: "Predict"})
	rest(2, "GET", "/v1/models/pets", "", 200, key{model: "pets", method: "GetModelStatus"})
	rest(1, "GET", "/v1/models/pets/versions/3/metadata", "", 200, key{model: "pets", version: "3", method: "GetModelMetadata"})
	rest(1, "GET", "/", "", 200, key{method: "Page"})
	rest(1, "GET", "/nothing", "", 404, key{method: "other"})

	call := func(times int, method string, req, resp proto.Message, code codes.Code, k key) {
		t.Helper()
		svc := grpcapi.PredictionServiceName
		if method == "GetModelStatus" {
			svc = grpcapi.ModelServiceName
		}
		for range times {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := conn.Invoke(ctx, "/"+svc+"/"+method, req, resp)
			cancel()
			if status.Code(err) != code {
				t.Fatalf("%s: %v, want %v", method, err, code)
			}
		}
		k.api, k.method, k.code = monitoring.APIGRPC, method, codeNames[code]
		want[k] += times
	}
	tensor := func(n int) *tensorpb.TensorProto {
		x := make([]float32, n*side*side*3)
		for i := range x {
			x[i] = rng.Float32()
		}
		return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, FloatVal: x, TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(n)}, {Size: side}, {Size: side}, {Size: 3}}}}
	}
	v3 := &pb.ModelSpec{Name: "pets", VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(3)}}
	predict := func(spec *pb.ModelSpec, x *tensorpb.TensorProto) *pb.PredictRequest {
		return &pb.PredictRequest{ModelSpec: spec, Inputs: map[string]*tensorpb.TensorProto{"images": x}}
	}
	call(4, "Predict", predict(&pb.ModelSpec{Name: "pets"}, tensor(1)), &pb.PredictResponse{}, codes.OK, key{model: "pets", version: "3"})
	call(2, "Predict", predict(v3, tensor(2)), &pb.PredictResponse{}, codes.OK, key{model: "pets", version: "3"})
	images, batches = images+4*1+2*2, batches+4+2
	call(3, "Predict", predict(&pb.ModelSpec{Name: "nobody"}, tensor(1)), &pb.PredictResponse{}, codes.NotFound, key{})
	call(2, "Predict", predict(v3, &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT32, IntVal: []int32{1}}), &pb.PredictResponse{}, codes.InvalidArgument, key{model: "pets", version: "3"})
	call(1, "GetModelMetadata", &pb.GetModelMetadataRequest{ModelSpec: &pb.ModelSpec{Name: "pets"}, MetadataField: []string{"signature_def"}}, &pb.GetModelMetadataResponse{}, codes.OK, key{model: "pets", version: "3"})
	call(1, "GetModelStatus", &pb.GetModelStatusRequest{ModelSpec: &pb.ModelSpec{Name: "pets"}}, &pb.GetModelStatusResponse{}, codes.OK, key{model: "pets"})

	// Scrape as curl does, then parse with Go's and Python's parsers.
	resp, err := http.Get(hs.URL + monitoring.Path)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", monitoring.Path, resp.StatusCode, text)
	}
	families, err := parseGo(string(text))
	if err != nil {
		t.Fatalf("the Go text parser: %v\n%s", err, text)
	}
	goSamples := flatten(families)
	var py struct {
		ContentType string `json:"content_type"`
		Types       map[string]string
		Samples     [][3]json.RawMessage
	}
	out := testenv.RunPython(t, "testdata/parse_metrics.py", hs.URL+monitoring.Path, "tfcat_")
	if err := json.Unmarshal([]byte(out), &py); err != nil {
		t.Fatalf("the Python parser's output: %v\n%s", err, out)
	}
	if !strings.HasPrefix(py.ContentType, "text/plain") {
		t.Errorf("the metrics are served as %q, want Prometheus' text format", py.ContentType)
	}
	pySamples := map[string]float64{}
	for _, s := range py.Samples {
		var name string
		var labels map[string]string
		var v float64
		if json.Unmarshal(s[0], &name) != nil || json.Unmarshal(s[1], &labels) != nil || json.Unmarshal(s[2], &v) != nil {
			t.Fatalf("sample %s", s)
		}
		pySamples[sampleKey(name, labels)] = v
	}
	for name, typ := range map[string]string{
		"tfcat_requests": "counter", "tfcat_request_duration_seconds": "histogram", "tfcat_requests_in_flight": "gauge",
		"tfcat_batch_size": "histogram", "tfcat_batch_duration_seconds": "histogram", "tfcat_model_versions": "gauge",
		"tfcat_model_load_failures": "counter", "tfcat_decode_memory_bytes": "gauge",
	} {
		if py.Types[name] != typ {
			t.Errorf("Python reads %s as %q, want %s", name, py.Types[name], typ)
		}
	}
	// Nothing ran between the two scrapes.
	for k, v := range goSamples {
		if strings.HasPrefix(k, "tfcat_") && pySamples[k] != v {
			t.Errorf("%s: Go's parser reads %v, Python's %v", k, v, pySamples[k])
		}
	}
	if len(pySamples) != countPrefix(goSamples, "tfcat_") {
		t.Errorf("Python's parser read %d tfcat_ samples, Go's %d", len(pySamples), countPrefix(goSamples, "tfcat_"))
	}

	// The counts, from either parser (they are equal).
	got := map[key]int{}
	for _, m := range families["tfcat_requests_total"].GetMetric() {
		l := labelMap(m)
		got[key{l["api"], l["model"], l["version"], l["method"], l["code"]}] = int(m.GetCounter().GetValue())
	}
	if !maps.Equal(got, want) {
		for _, k := range slices.SortedFunc(maps.Keys(union(got, want)), func(a, b key) int { return strings.Compare(a.String(), b.String()) }) {
			if got[k] != want[k] {
				t.Errorf("tfcat_requests_total%s = %d, want %d", k, got[k], want[k])
			}
		}
	}
	// The latency histograms count the same requests.
	timed := map[key]int{}
	for k, n := range want {
		k.code = ""
		timed[k] += n
	}
	gotTimed := map[key]int{}
	for _, m := range families["tfcat_request_duration_seconds"].GetMetric() {
		l := labelMap(m)
		gotTimed[key{l["api"], l["model"], l["version"], l["method"], ""}] = int(m.GetHistogram().GetSampleCount())
	}
	if !maps.Equal(gotTimed, timed) {
		t.Errorf("tfcat_request_duration_seconds counts %v, want %v", gotTimed, timed)
	}

	st := srv.Stats()
	if st.Batches != int64(batches) || st.Images != int64(images) {
		t.Fatalf("the server ran %d batches of %d images, want %d of %d (the requests were sent one at a time)", st.Batches, st.Images, batches, images)
	}
	for name, w := range map[string]float64{
		`tfcat_batch_size_count{model="pets"}`:                 float64(batches),
		`tfcat_batch_size_sum{model="pets"}`:                   float64(images),
		`tfcat_batch_size_bucket{le="1",model="pets"}`:         float64(batches - 3 - 2), // the requests of two images
		`tfcat_batch_duration_seconds_count{model="pets"}`:     float64(batches),
		`tfcat_model_versions{model="pets",state="AVAILABLE"}`: 1,
		`tfcat_model_versions{model="pets",state="LOADING"}`:   0,
		`tfcat_model_load_failures_total{model="pets"}`:        0,
		`tfcat_requests_in_flight{api="rest"}`:                 0,
		`tfcat_requests_in_flight{api="grpc"}`:                 0,
		`tfcat_decode_memory_bytes`:                            0,
	} {
		if v, ok := goSamples[name]; !ok || v != w {
			t.Errorf("%s = %v (present: %v), want %v", name, v, ok, w)
		}
	}
}

// codeNames are the gRPC codes' TensorFlow names, as the code label has them.
var codeNames = map[codes.Code]string{codes.OK: "OK", codes.NotFound: "NOT_FOUND", codes.InvalidArgument: "INVALID_ARGUMENT"}

func union[V any](a, b map[key]V) map[key]V {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func countPrefix(m map[string]float64, prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func parseGo(text string) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(strings.NewReader(text))
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// sampleKey names a sample as the text format writes it, labels sorted, le
// as Go formats the number.
func sampleKey(name string, labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if k == "le" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				v = formatFloat(f)
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	if len(parts) == 0 {
		return name
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// flatten lists the samples of families as the text format has them.
func flatten(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			l := labelMap(m)
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[sampleKey(name, l)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[sampleKey(name, l)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[sampleKey(name, l)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[sampleKey(name+"_count", l)] = float64(h.GetSampleCount())
				out[sampleKey(name+"_sum", l)] = h.GetSampleSum()
				inf := false
				for _, b := range h.GetBucket() {
					bl := maps.Clone(l)
					bl["le"] = formatFloat(b.GetUpperBound())
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					out[sampleKey(name+"_bucket", bl)] = float64(b.GetCumulativeCount())
				}
				if !inf {
					bl := maps.Clone(l)
					bl["le"] = "+Inf"
					out[sampleKey(name+"_bucket", bl)] = float64(h.GetSampleCount())
				}
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out[sampleKey(name+"_count", l)] = float64(s.GetSampleCount())
				out[sampleKey(name+"_sum", l)] = s.GetSampleSum()
				for _, q := range s.GetQuantile() {
					ql := maps.Clone(l)
					ql["quantile"] = formatFloat(q.GetQuantile())
					out[sampleKey(name, ql)] = q.GetValue()
				}
			}
		}
	}
	return out
}
