package main

import (
	neturl "net/url"

	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfsession"
)

// HostileResult is one run of -hostile.
type HostileResult struct {
	Name       string         `json:"name"`
	Seconds    float64        `json:"seconds"`
	Good       int            `json:"good_requests"`
	GoodFailed int            `json:"good_failed"`
	FirstError string         `json:"first_error,omitempty"`
	GoodP50Ms  float64        `json:"good_p50_ms"`
	GoodP99Ms  float64        `json:"good_p99_ms"`
	Bad        int            `json:"bad_requests"`
	BadByKind  map[string]int `json:"bad_by_kind,omitempty"`
	ByStatus   map[string]int `json:"replies_by_status"`
	PeakRSSMB  int64          `json:"peak_rss_mb"`
	Stats      serving.Stats  `json:"server_stats"`
}

// badRequest is one kind of hostile request.
type badRequest struct {
	kind string
	body []byte
	slow bool // sent a byte every 100 ms
}

func b64Body(imgs ...[]byte) []byte {
	var b strings.Builder
	b.WriteString(`{"instances": [`)
	for i, img := range imgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"b64": "` + base64.StdEncoding.EncodeToString(img) + `"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func badRequests(maxBody int64) []badRequest {
	jpegBomb := hostile.JPEG(10000, 10000)
	pngBomb := hostile.PNG(10000, 10000)
	photo := hostile.Gradient(640, 480, 7)
	corrupt := bytes.Clone(photo)
	for i := 600; i < len(corrupt); i += 97 {
		corrupt[i] ^= 0x5a
	}
	jpegs, pngs := make([][]byte, 16), make([][]byte, 4)
	for i := range jpegs {
		jpegs[i] = jpegBomb
	}
	for i := range pngs {
		pngs[i] = pngBomb
	}
	return []badRequest{
		{kind: "jpeg bombs x16", body: b64Body(jpegs...)},
		{kind: "png bombs x4", body: b64Body(pngs...)},
		{kind: "truncated jpeg", body: b64Body(hostile.Truncate(photo, len(photo)/3))},
		{kind: "truncated png", body: b64Body(hostile.Truncate(pngBomb, len(pngBomb)/2))},
		{kind: "corrupt jpeg", body: b64Body(corrupt)},
		{kind: "wrong shape", body: []byte(`{"instances": [[[[0.5, 0.5]]]]}`)},
		{kind: "oversized body", body: append(append([]byte(`{"instances": ["`), bytes.Repeat([]byte("A"), int(maxBody))...), `"]}`...)},
		{kind: "slow sender", body: b64Body(photo), slow: true},
	}
}

// slowPost sends body a byte every 100 ms on its own connection, for at most
// d, and returns the status or the error the server's timeouts end it with.
func slowPost(addr, path string, body []byte, d time.Duration) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, len(body))
	data := append([]byte(req), body...)
	end := time.Now().Add(d)
	conn.SetDeadline(end.Add(time.Second))
	for i := 0; i < len(data) && time.Now().Before(end); i++ {
		if _, err := conn.Write(data[i : i+1]); err != nil {
			return 0, err // dropped by the server
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// runHostile runs a clean run and a hostile run against servers with cfg.
func runHostile(m tfsession.Classifier, cfg serving.Config, clients int, d time.Duration, good []byte, asJSON bool) error {
	bad := badRequests(serving.DefaultMaxBodyBytes)
	var results []HostileResult
	for _, hostileShare := range []float64{0, 1.0 / 3} {
		name := "clean"
		if hostileShare > 0 {
			name = "hostile"
		}
		if !asJSON {
			fmt.Fprintf(os.Stderr, "loadtest: %s run, %d clients for %v\n", name, clients, d)
		}
		r, err := hostileRun(m, cfg, clients, d, good, bad, hostileShare)
		if err != nil {
			return err
		}
		r.Name = name
		results = append(results, r)
		if !asJSON {
			fmt.Printf("%-8s good %6d (failed %d)  p50 %7.2f ms  p99 %7.2f ms  bad %5d  peak RSS %5d MB  replies %v\n",
				name, r.Good, r.GoodFailed, r.GoodP50Ms, r.GoodP99Ms, r.Bad, r.PeakRSSMB, r.ByStatus)
			if r.Bad > 0 {
				fmt.Printf("         bad requests by kind: %v\n", r.BadByKind)
			}
		}
	}
	clean, hot := results[0], results[1]
	ratio := 0.0
	if clean.GoodP99Ms > 0 {
		ratio = hot.GoodP99Ms / clean.GoodP99Ms
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(struct {
			Runs     []HostileResult `json:"runs"`
			P99Ratio float64         `json:"good_p99_ratio"`
		}{results, ratio})
	} else {
		fmt.Printf("good p99, hostile vs clean: %.2f×\n", ratio)
	}
	var problems []string
	for _, r := range results {
		if r.GoodFailed > 0 {
			problems = append(problems, fmt.Sprintf("%s run: %d good requests failed; first: %s", r.Name, r.GoodFailed, r.FirstError))
		}
		if r.PeakRSSMB >= 1500 {
			problems = append(problems, fmt.Sprintf("%s run: peak RSS %d MB", r.Name, r.PeakRSSMB))
		}
	}
	if ratio > 2 {
		problems = append(problems, fmt.Sprintf("good p99 %.2f ms is %.2f× the clean run's %.2f ms", hot.GoodP99Ms, ratio, clean.GoodP99Ms))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func hostileRun(m tfsession.Classifier, cfg serving.Config, clients int, d time.Duration, good []byte, bad []badRequest, share float64) (HostileResult, error) {
	srv, url, stop, err := startServer(m, cfg)
	if err != nil {
		return HostileResult{}, err
	}
	defer stop()
	u, err := neturl.Parse(url)
	if err != nil {
		return HostileResult{}, err
	}
	addr, path := u.Host, u.Path
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: time.Minute}
	send := func(body []byte) (int, []byte, error) {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		reply, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, reply, err
	}
	// Warm up, as measure does.
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() { defer wg.Done(); send(good) }()
	}
	wg.Wait()
	fuzzlimit.ResetPeak()
	before := srv.Stats()

	var mu sync.Mutex
	res := HostileResult{ByStatus: map[string]int{}, BadByKind: map[string]int{}}
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 16))
			for time.Now().Before(deadline) {
				if r.Float64() < share {
					b := bad[r.IntN(len(bad))]
					var code int
					var err error
					if b.slow {
						code, err = slowPost(addr, path, b.body, time.Until(deadline)+time.Second)
					} else {
						code, _, err = send(b.body)
					}
					key := fmt.Sprint(code)
					if err != nil {
						key = "dropped"
					}
					mu.Lock()
					res.Bad++
					res.BadByKind[b.kind+" "+key]++
					res.ByStatus[key]++
					mu.Unlock()
					continue
				}
				t0 := time.Now()
				code, reply, err := send(good)
				took := time.Since(t0)
				ok := err == nil && code == http.StatusOK && bytes.HasPrefix(reply, []byte(`{"predictions":[{"probabilities":[`))
				mu.Lock()
				res.Good++
				res.ByStatus[fmt.Sprint(code)]++
				if ok {
					lat = append(lat, took)
				} else {
					res.GoodFailed++
					if res.FirstError == "" {
						res.FirstError = fmt.Sprintf("HTTP %d %v: %.200s", code, err, reply)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	peak, err := fuzzlimit.PeakRSS()
	if err != nil {
		return res, err
	}
	res.PeakRSSMB = peak >> 20
	after := srv.Stats()
	res.Stats = serving.Stats{Batches: after.Batches - before.Batches, Images: after.Images - before.Images, Largest: after.Largest,
		OverLimit: after.OverLimit - before.OverLimit, Busy: after.Busy - before.Busy, TimedOut: after.TimedOut - before.TimedOut}
	slices.Sort(lat)
	if len(lat) > 0 {
		pct := func(p float64) float64 { return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / 1e6 }
		res.GoodP50Ms, res.GoodP99Ms = pct(0.50), pct(0.99)
	}
	if len(res.BadByKind) == 0 {
		res.BadByKind = nil
	}
	return res, nil
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
