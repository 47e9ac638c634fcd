// Command loadtest measures tfcat's model server on loopback: concurrent
// clients send one-image predict requests for a fixed time, first with
// batching on, then with a largest batch of one image; it reports throughput,
// latency percentiles, errors and the throughput ratio of the two.
//
//	go run ./serving/loadtest                      # the tutorial's network, 32 clients, 30 s per run
//	go run ./serving/loadtest -duration 5s -clients 8 -model export/1
//	TFCAT_LOADTEST_DURATION=3s go run ./serving/loadtest -json
//	go run ./serving/loadtest -hostile          # clean run, then a hostile one
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
// clean one, or the peak RSS reaches 1.5 GB.
//
// Without -model it serves the tutorial's 128×128×3 network with seeded
// random weights (speed does not depend on the weights). Requests carry a
// 256×256 JPEG as {"b64": ...} (-payload b64, decoded and preprocessed by the
// server) or a preprocessed float tensor (-payload tensor). It exits 1 if any
// request failed.
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
	"sync"
	"time"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfgraph"
	_ "github.com/tfcat/tfcat/tflog" // no TensorFlow start-up lines
)

// Result is one run's figures.
type Result struct {
	MaxBatch    int     `json:"max_batch"`
	BatchWaitMs float64 `json:"batch_wait_ms"`
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	PerSecond   float64 `json:"requests_per_second"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	MeanBatch   float64 `json:"mean_batch"`
	Batches     int64   `json:"batches"`
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
	payload := flag.String("payload", "b64", "b64 (a JPEG the server preprocesses) or tensor (preprocessed floats)")
	threads := flag.Int("threads", 0, "TensorFlow intra-op threads (0: one per core)")
	precision := flag.String("precision", "f32", "compute in f32 or bf16 (oneDNN's bfloat16 rewrite; CPUs with AVX512_BF16 or AMX), as tfcat serve --precision")
	only := flag.Bool("batched-only", false, "skip the run with a largest batch of 1")
	asJSON := flag.Bool("json", false, "print the results as one JSON object")
	hostileRun := flag.Bool("hostile", false, "compare a clean run with one where a third of the requests are hostile")
	flag.Parse()
	if env := os.Getenv("TFCAT_LOADTEST_DURATION"); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil {
			return fmt.Errorf("TFCAT_LOADTEST_DURATION: %w", err)
		}
		*duration = d
	}
	if *clients <= 0 || *duration <= 0 || *maxBatch <= 0 {
		return errors.New("-clients, -duration and -max-batch must be positive")
	}

	prec, err := tfgraph.ResolvePrecision(*precision, tfgraph.DeviceCPU, false)
	if err != nil {
		return fmt.Errorf("-precision: %w", err)
	}
	m, err := openModel(*model, tfgraph.SessionConfig{Device: tfgraph.DeviceCPU, IntraOpThreads: *threads, Precision: prec})
	if err != nil {
		return err
	}
	defer m.Close()
	h, w, c := m.InputSize()
	body, err := requestBody(*payload, h, w, c)
	if err != nil {
		return err
	}
	if *hostileRun {
		return runHostile(m, serving.Config{MaxBatch: *maxBatch, BatchWait: *wait}, *clients, *duration, body, *asJSON)
	}
	configs := []serving.Config{{MaxBatch: *maxBatch, BatchWait: *wait}}
	if !*only {
		configs = append(configs, serving.Config{MaxBatch: 1, BatchWait: -1})
	}
	var results []Result
	for _, cfg := range configs {
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "loadtest: %d clients for %v, max batch %d, batch wait %v, %s payload of %d bytes\n",
				*clients, *duration, cfg.MaxBatch, max(cfg.BatchWait, 0), *payload, len(body))
		}
		r, err := measure(m, cfg, *clients, *duration, body)
		if err != nil {
			return err
		}
		results = append(results, r)
		if !*asJSON {
			fmt.Printf("max batch %2d: %7.1f req/s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  mean batch %5.2f  requests %d  errors %d\n",
				r.MaxBatch, r.PerSecond, r.P50Ms, r.P99Ms, r.MaxMs, r.MeanBatch, r.Requests, r.Errors)
		}
	}
	ratio := 0.0
	if len(results) == 2 && results[1].PerSecond > 0 {
		ratio = results[0].PerSecond / results[1].PerSecond
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(struct {
			Runs  []Result `json:"runs"`
			Ratio float64  `json:"batching_throughput_ratio,omitempty"`
		}{results, ratio})
	} else if ratio > 0 {
		fmt.Printf("throughput ratio, batching on vs max batch 1: %.2f\n", ratio)
	}
	for _, r := range results {
		if r.Errors > 0 {
			return fmt.Errorf("%d of %d requests failed (max batch %d); first: %s", r.Errors, r.Requests, r.MaxBatch, r.FirstError)
		}
	}
	return nil
}

// openModel opens any model tfcat reads (model.Open) or, without a path,
// builds the tutorial's network with seeded weights.
func openModel(path string, cfg tfgraph.SessionConfig) (tfgraph.Classifier, error) {
	switch {
	case path == "":
		m, err := tfgraph.Build(tfgraph.Tutorial(2), tfgraph.BuildOptions{Seed: 1, InferenceOnly: true})
		if err != nil {
			return nil, err
		}
		s, err := tfgraph.NewSession(m, cfg)
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

// requestBody is one instance: a photo-like 256×256 JPEG, or that image's
// size as preprocessed floats.
func requestBody(payload string, h, w, c int) ([]byte, error) {
	switch payload {
	case "b64":
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
		return []byte(`{"instances": [{"b64": "` + base64.StdEncoding.EncodeToString(buf.Bytes()) + `"}]}`), nil
	case "tensor":
		r := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, h*w*c)
		for i := range x {
			x[i] = r.Float32()
		}
		b := append([]byte(`{"instances": [`), serving.AppendTensorJSON(nil, x, h, w, c)...)
		return append(b, `]}`...), nil
	}
	return nil, fmt.Errorf("-payload %q: use b64 or tensor", payload)
}

// measure serves m with cfg on a loopback listener and runs the clients.
func measure(m tfgraph.Classifier, cfg serving.Config, clients int, d time.Duration, body []byte) (Result, error) {
	srv, url, stop, err := startServer(m, cfg)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: time.Minute}

	post := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		reply, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(reply, []byte(`{"predictions":[{"probabilities":[`)) {
			return 0, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, reply)
		}
		return time.Since(start), nil
	}
	// Warm up: TensorFlow's first runs of each batch size are slow.
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() { defer wg.Done(); post() }()
	}
	wg.Wait()
	before := srv.Stats()

	var mu sync.Mutex
	var lat []time.Duration
	res := Result{MaxBatch: cfg.MaxBatch, BatchWaitMs: float64(max(cfg.BatchWait, 0)) / 1e6, Clients: clients}
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var errs int
			var first string
			for time.Now().Before(deadline) {
				t, err := post()
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, t)
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
func startServer(m tfgraph.Classifier, cfg serving.Config) (*serving.Server, string, func(), error) {
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
