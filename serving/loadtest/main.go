// Command loadtest measures tfcat's model server on loopback: concurrent
// clients send predict requests for a fixed time, first with batching on,
// then with a largest batch of one image; it reports throughput, latency
// percentiles, errors and the throughput ratio of the two.
//
//	go run ./serving/loadtest                      # the tutorial's network, 32 clients, 30 s per run
//	go run ./serving/loadtest -duration 5s -clients 8 -model export/1
//	TFCAT_LOADTEST_DURATION=3s go run ./serving/loadtest -json
//	go run ./serving/loadtest -hostile          # clean run, then a hostile one
//	go run ./serving/loadtest -api both -images-per-request 1,32 -payload tensor,b64 -repeats 2 -batched-only -duration 10s
//
// -api chooses the protocol: rest (the default: TensorFlow Serving's REST
// :predict), grpc (TensorFlow Serving's gRPC PredictionService/Predict, the
// PredictRequest of graft's apis_go_proto, over one HTTP/2 connection unless
// -grpc-conns says more), or both. The server is the same either way: one
// serving.Server, its REST handler on the server's own http.Server and
// connection limit, its gRPC API (grpcapi.NewServer) on a connection-limited
// listener, as tfcat serve runs them. With both, each configuration runs
// REST and gRPC in turn, -repeats times, alternating which goes first (REST,
// gRPC, gRPC, REST, ...), so that a machine whose speed drifts favours
// neither; it then prints gRPC's throughput over REST's for each
// configuration (the mean of the repeats).
//
// -images-per-request (1 by default; a comma-separated list such as 1,32
// runs each) is the number of images in each request, and -payload (b64 or
// tensor, or both as b64,tensor) their form: a 256×256 JPEG the server
// decodes and preprocesses ({"b64": ...} in REST, a DT_STRING tensor [N] of
// the encoded image over gRPC) or a preprocessed float tensor (nested JSON
// lists in REST, a DT_FLOAT tensor [N, H, W, C] in tensor_content over
// gRPC, as tf.make_tensor_proto writes it). Every reply is checked: one
// prediction per image. Each run reports requests/s, images/s, p50, p99 and
// the largest latency, the mean batch the server ran, and errors.
//
// -hostile runs the batched configuration twice on the server's own
// http.Server and connection limit (as tfcat serve runs it): first with
// every client sending good requests, then with a mix in which a third of
// the requests are hostile: JPEGs claiming 10000×10000 whose data ends at
// once, valid 10000×10000 PNGs (~100 KB each), truncated and corrupt images,
// tensors of the wrong shape, bodies over the size limit, and clients that
// send their request a byte every 100 ms. It reports the good requests'
// p50/p99 in both runs, the replies by status, and the peak RSS of this
// process (server and clients: an upper bound on the server's) in each run,
// and fails when a good request failed, the good p99 exceeds twice the
// clean one, or the peak RSS reaches 1.5 GB. -hostile is REST only.
//
// Without -model it serves the tutorial's 128×128×3 network with seeded
// random weights (speed does not depend on the weights). It exits 1 if any
// request failed.
//
// Built with -tags loadtest_restonly it leaves the gRPC API out (-api rest
// only), so that the same clients can be built against a tree older than
// package serving/grpcapi, to compare a server before and after a change.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfgraph"
	_ "github.com/tfcat/tfcat/tflog" // no TensorFlow start-up lines
	"github.com/tfcat/tfcat/tfsession"
)

// Result is one run's figures.
type Result struct {
	API              string  `json:"api"`
	Payload          string  `json:"payload"`
	ImagesPerRequest int     `json:"images_per_request"`
	RequestBytes     int     `json:"request_bytes"`
	Repeat           int     `json:"repeat"`
	MaxBatch         int     `json:"max_batch"`
	BatchWaitMs      float64 `json:"batch_wait_ms"`
	Clients          int     `json:"clients"`
	Seconds          float64 `json:"seconds"`
	Requests         int     `json:"requests"`
	Errors           int     `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
	PerSecond        float64 `json:"requests_per_second"`
	ImagesPerSecond  float64 `json:"images_per_second"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	MaxMs            float64 `json:"max_ms"`
	MeanBatch        float64 `json:"mean_batch"`
	Batches          int64   `json:"batches"`
}

// Comparison is gRPC's throughput over REST's for one configuration, the
// mean of the repeats.
type Comparison struct {
	Payload          string  `json:"payload"`
	ImagesPerRequest int     `json:"images_per_request"`
	MaxBatch         int     `json:"max_batch"`
	RESTPerSecond    float64 `json:"rest_requests_per_second"`
	GRPCPerSecond    float64 `json:"grpc_requests_per_second"`
	Ratio            float64 `json:"grpc_over_rest"`
}

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	model := flag.String("model", "", "SavedModel folder or checkpoint (default: the tutorial's network, random weights)")
	clients := flag.Int("clients", 32, "concurrent clients")
	duration := flag.Duration("duration", 30*time.Second, "length of each run (env TFCAT_LOADTEST_DURATION overrides)")
	maxBatch := flag.Int("max-batch", serving.DefaultMaxBatch, "largest batch of the batched run")
	wait := flag.Duration("batch-wait", serving.DefaultBatchWait, "batch wait of the batched run")
	payloadFlag := flag.String("payload", "b64", "b64 (a JPEG the server preprocesses) or tensor (preprocessed floats); b64,tensor runs both")
	threads := flag.Int("threads", 0, "TensorFlow intra-op threads (0: one per core)")
	precision := flag.String("precision", "f32", "compute in f32 or bf16 (oneDNN's bfloat16 rewrite; CPUs with AVX512_BF16 or AMX), as tfcat serve --precision")
	only := flag.Bool("batched-only", false, "skip the run with a largest batch of 1")
	asJSON := flag.Bool("json", false, "print the results as one JSON object")
	hostileRun := flag.Bool("hostile", false, "compare a clean run with one where a third of the requests are hostile")
	apiFlag := flag.String("api", "rest", "rest, grpc (TensorFlow Serving's PredictionService/Predict) or both, alternating")
	perRequest := flag.String("images-per-request", "1", "images in each request; a list such as 1,32 runs each")
	repeats := flag.Int("repeats", 1, "runs of each configuration (with -api both: REST and gRPC alternating which goes first)")
	grpcConns := flag.Int("grpc-conns", 1, "gRPC connections the clients share (one, as a gRPC channel is)")
	flag.Parse()
	if env := os.Getenv("TFCAT_LOADTEST_DURATION"); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil {
			return fmt.Errorf("TFCAT_LOADTEST_DURATION: %w", err)
		}
		*duration = d
	}
	if *clients <= 0 || *duration <= 0 || *maxBatch <= 0 || *repeats <= 0 || *grpcConns <= 0 {
		return errors.New("-clients, -duration, -max-batch, -repeats and -grpc-conns must be positive")
	}
	var apis []string
	switch *apiFlag {
	case "rest", "grpc":
		apis = []string{*apiFlag}
	case "both":
		apis = []string{"rest", "grpc"}
	default:
		return fmt.Errorf("-api %q: use rest, grpc or both", *apiFlag)
	}
	if slices.Contains(apis, "grpc") && !grpcBuilt {
		return errors.New("-api: built with -tags loadtest_restonly, without the gRPC API")
	}
	payloads := strings.Split(*payloadFlag, ",")
	for _, p := range payloads {
		if p != "b64" && p != "tensor" {
			return fmt.Errorf("-payload %q: use b64 or tensor", p)
		}
	}
	var counts []int
	for _, f := range strings.Split(*perRequest, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-images-per-request %q: positive numbers, comma-separated", *perRequest)
		}
		counts = append(counts, n)
	}

	prec, err := tfsession.ResolvePrecision(*precision, tfsession.DeviceCPU, false)
	if err != nil {
		return fmt.Errorf("-precision: %w", err)
	}
	m, err := openModel(*model, tfsession.SessionConfig{Device: tfsession.DeviceCPU, IntraOpThreads: *threads, Precision: prec})
	if err != nil {
		return err
	}
	defer m.Close()
	h, w, c := m.InputSize()
	if *hostileRun {
		if *apiFlag != "rest" || len(payloads) > 1 || len(counts) > 1 || counts[0] != 1 {
			return errors.New("-hostile sends one-image REST requests of one payload")
		}
		body, err := requestBody(payloads[0], h, w, c)
		if err != nil {
			return err
		}
		return runHostile(m, serving.Config{MaxBatch: *maxBatch, BatchWait: *wait}, *clients, *duration, body, *asJSON)
	}
	jpg, err := photoJPEG()
	if err != nil {
		return err
	}
	in := instance{jpeg: jpg, tensor: randomTensor(h * w * c), h: h, w: w, c: c, classes: m.NumClasses()}

	// Today's output, line for line, when only the original flags are used.
	legacy := *apiFlag == "rest" && len(payloads) == 1 && len(counts) == 1 && counts[0] == 1 && *repeats == 1
	configs := []serving.Config{{MaxBatch: *maxBatch, BatchWait: *wait}}
	if !*only {
		configs = append(configs, serving.Config{MaxBatch: 1, BatchWait: -1})
	}
	var results []Result
	for _, cfg := range configs {
		for _, payload := range payloads {
			for _, n := range counts {
				for rep := range *repeats {
					order := apis
					if rep%2 == 1 {
						order = slices.Clone(apis)
						slices.Reverse(order)
					}
					for _, api := range order {
						wl := workload{api: api, payload: payload, n: n, clients: *clients, grpcConns: *grpcConns}
						if !*asJSON {
							if legacy {
								body, _ := restBody(payload, in, 1)
								fmt.Fprintf(os.Stderr, "loadtest: %d clients for %v, max batch %d, batch wait %v, %s payload of %d bytes\n",
									*clients, *duration, cfg.MaxBatch, max(cfg.BatchWait, 0), payload, len(body))
							} else {
								fmt.Fprintf(os.Stderr, "loadtest: %s, %d clients for %v, max batch %d, batch wait %v, %s payload, images a request: %d (repeat %d of %d)\n",
									api, *clients, *duration, cfg.MaxBatch, max(cfg.BatchWait, 0), payload, n, rep+1, *repeats)
							}
						}
						r, err := measure(m, cfg, wl, in, *duration)
						if err != nil {
							return err
						}
						r.Repeat = rep + 1
						results = append(results, r)
						if *asJSON {
							continue
						}
						if legacy {
							fmt.Printf("max batch %2d: %7.1f req/s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  mean batch %5.2f  requests %d  errors %d\n",
								r.MaxBatch, r.PerSecond, r.P50Ms, r.P99Ms, r.MaxMs, r.MeanBatch, r.Requests, r.Errors)
						} else {
							fmt.Printf("%-4s %-6s %2d/req  max batch %2d: %7.1f req/s  %8.1f img/s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  mean batch %5.2f  requests %d  errors %d  (%d bytes a request)\n",
								r.API, r.Payload, r.ImagesPerRequest, r.MaxBatch, r.PerSecond, r.ImagesPerSecond, r.P50Ms, r.P99Ms, r.MaxMs, r.MeanBatch, r.Requests, r.Errors, r.RequestBytes)
						}
					}
				}
			}
		}
	}

	// Batching's gain where both runs were made, and gRPC against REST.
	ratio := 0.0
	type group struct {
		api, payload string
		n, maxBatch  int
	}
	mean := map[group]float64{}
	runs := map[group]int{}
	for _, r := range results {
		g := group{r.API, r.Payload, r.ImagesPerRequest, r.MaxBatch}
		mean[g] += r.PerSecond
		runs[g]++
	}
	for g := range mean {
		mean[g] /= float64(runs[g])
	}
	var comparisons []Comparison
	var ratioLines []string
	for _, payload := range payloads {
		for _, n := range counts {
			for _, api := range apis {
				b, u := mean[group{api, payload, n, configs[0].MaxBatch}], mean[group{api, payload, n, 1}]
				if len(configs) == 2 && u > 0 {
					ratio = b / u
					what := fmt.Sprintf(" (%s, %s, %d/req)", api, payload, n)
					if legacy {
						what = ""
					}
					ratioLines = append(ratioLines, fmt.Sprintf("throughput ratio, batching on vs max batch 1%s: %.2f", what, ratio))
				}
			}
			for _, cfg := range configs {
				rest, grpc := mean[group{"rest", payload, n, cfg.MaxBatch}], mean[group{"grpc", payload, n, cfg.MaxBatch}]
				if len(apis) == 2 && rest > 0 {
					comparisons = append(comparisons, Comparison{Payload: payload, ImagesPerRequest: n, MaxBatch: cfg.MaxBatch,
						RESTPerSecond: rest, GRPCPerSecond: grpc, Ratio: grpc / rest})
				}
			}
		}
	}
	if len(ratioLines) != 1 {
		ratio = 0 // one figure only where there is one to give
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(struct {
			Runs        []Result     `json:"runs"`
			Ratio       float64      `json:"batching_throughput_ratio,omitempty"`
			Comparisons []Comparison `json:"grpc_vs_rest,omitempty"`
		}{results, ratio, comparisons})
	} else {
		for _, l := range ratioLines {
			fmt.Println(l)
		}
		for _, c := range comparisons {
			fmt.Printf("gRPC vs REST (%s, %d/req, max batch %d, mean of %d): %.1f vs %.1f req/s, %.2f×\n",
				c.Payload, c.ImagesPerRequest, c.MaxBatch, *repeats, c.GRPCPerSecond, c.RESTPerSecond, c.Ratio)
		}
	}
	for _, r := range results {
		if r.Errors > 0 {
			return fmt.Errorf("%d of %d requests failed (%s, %s, %d/req, max batch %d); first: %s",
				r.Errors, r.Requests, r.API, r.Payload, r.ImagesPerRequest, r.MaxBatch, r.FirstError)
		}
	}
	return nil
}

// openModel opens any model tfcat reads (model.Open) or, without a path,
// builds the tutorial's network with seeded weights.
func openModel(path string, cfg tfsession.SessionConfig) (tfsession.Classifier, error) {
	switch {
	case path == "":
		m, err := tfgraph.Build(network.Tutorial(2), tfgraph.BuildOptions{Seed: 1, InferenceOnly: true})
		if err != nil {
			return nil, err
		}
		s, err := tfsession.NewSession(m, cfg)
		if err != nil {
			return nil, err
		}
		if err := s.Init(); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	default:
		return model.Open(path, model.Options{Session: cfg})
	}
}

// instance is what every request carries, once per image: a photo-like
// 256×256 JPEG, and random preprocessed floats of the model's input size.
type instance struct {
	jpeg    []byte
	tensor  []float32
	h, w, c int
	classes int // the model's, for checking replies
}

// workload is one run's requests.
type workload struct {
	api       string // rest or grpc
	payload   string // b64 or tensor
	n         int    // images a request
	clients   int
	grpcConns int
}

// photoJPEG is a photo-like 256×256 JPEG.
func photoJPEG() ([]byte, error) {
	r := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			n := uint8(r.IntN(24))
			img.Set(x, y, color.RGBA{uint8(x) + n, uint8(y) + n, uint8(x+y)/2 + n, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// randomTensor is size seeded random floats in [0, 1).
func randomTensor(size int) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, size)
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// restBody is a :predict body of n instances.
func restBody(payload string, in instance, n int) ([]byte, error) {
	var one []byte
	switch payload {
	case "b64":
		one = []byte(`{"b64": "` + base64.StdEncoding.EncodeToString(in.jpeg) + `"}`)
	case "tensor":
		one = serving.AppendTensorJSON(nil, in.tensor, in.h, in.w, in.c)
	default:
		return nil, fmt.Errorf("-payload %q: use b64 or tensor", payload)
	}
	b := make([]byte, 0, len(`{"instances": []}`)+n*(len(one)+1))
	b = append(b, `{"instances": [`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, one...)
	}
	return append(b, `]}`...), nil
}

// requestBody is one instance as a :predict body (the -hostile runs' good
// request).
func requestBody(payload string, h, w, c int) ([]byte, error) {
	jpg, err := photoJPEG()
	if err != nil {
		return nil, err
	}
	return restBody(payload, instance{jpeg: jpg, tensor: randomTensor(h * w * c), h: h, w: w, c: c}, 1)
}

// client sends requests of one workload; send is called by one client
// goroutine (numbered) at a time, and checks the reply.
type client struct {
	send  func(i int) error
	bytes int // a request's size
	close func()
}

// restClient posts bodies of wl's requests to url.
func restClient(url string, wl workload, in instance) (*client, error) {
	body, err := restBody(wl.payload, in, wl.n)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: wl.clients, MaxConnsPerHost: wl.clients}, Timeout: time.Minute}
	prefix := []byte(`{"predictions":[{"probabilities":[`)
	send := func(int) error {
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		reply, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(reply, prefix) {
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, reply)
		}
		if got := bytes.Count(reply, []byte(`"probabilities"`)); got != wl.n {
			return fmt.Errorf("%d predictions for %d images: %.200s", got, wl.n, reply)
		}
		return nil
	}
	return &client{send: send, bytes: len(body), close: hc.CloseIdleConnections}, nil
}

// measure serves m with cfg on loopback (REST and gRPC) and runs wl's
// clients for d.
func measure(m tfsession.Classifier, cfg serving.Config, wl workload, in instance, d time.Duration) (Result, error) {
	srv, url, stop, err := startServer(m, cfg)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	var cl *client
	switch wl.api {
	case "rest":
		cl, err = restClient(url, wl, in)
	case "grpc":
		addr, stopGRPC, err2 := startGRPC(srv, cfg)
		if err2 != nil {
			return Result{}, err2
		}
		defer stopGRPC()
		cl, err = grpcClient(addr, wl, in)
	}
	if err != nil {
		return Result{}, err
	}
	defer cl.close()

	// Warm up: TensorFlow's first runs of each batch size are slow.
	var wg sync.WaitGroup
	for i := range wl.clients {
		wg.Add(1)
		go func() { defer wg.Done(); cl.send(i) }()
	}
	wg.Wait()
	before := srv.Stats()

	var mu sync.Mutex
	var lat []time.Duration
	res := Result{API: wl.api, Payload: wl.payload, ImagesPerRequest: wl.n, RequestBytes: cl.bytes,
		MaxBatch: cfg.MaxBatch, BatchWaitMs: float64(max(cfg.BatchWait, 0)) / 1e6, Clients: wl.clients}
	start := time.Now()
	deadline := start.Add(d)
	for i := range wl.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var errs int
			var first string
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := cl.send(i); err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := srv.Stats()

	slices.Sort(lat)
	res.Requests = len(lat) + res.Errors
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(len(lat)) / elapsed.Seconds()
	res.ImagesPerSecond = res.PerSecond * float64(wl.n)
	if len(lat) > 0 {
		pct := func(p float64) float64 {
			return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / 1e6
		}
		res.P50Ms, res.P99Ms, res.MaxMs = pct(0.50), pct(0.99), float64(lat[len(lat)-1])/1e6
	}
	res.Batches = after.Batches - before.Batches
	if res.Batches > 0 {
		res.MeanBatch = float64(after.Images-before.Images) / float64(res.Batches)
	}
	return res, nil
}

// startServer serves m with cfg on a loopback port, with the server's own
// limits (Server.HTTPServer, Server.Listener), and returns the :predict URL
// and a function that stops it.
func startServer(m tfsession.Classifier, cfg serving.Config) (*serving.Server, string, func(), error) {
	srv, err := serving.New(m, cfg)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, "", nil, err
	}
	hs := srv.HTTPServer()
	go hs.Serve(srv.Listener(ln))
	stop := func() {
		hs.Close()
		srv.Close()
	}
	return srv, "http://" + ln.Addr().String() + "/v1/models/" + serving.DefaultName + ":predict", stop, nil
}
