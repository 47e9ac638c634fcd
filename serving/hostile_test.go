package serving

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/hostile"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
)

// serveReal serves srv through its own http.Server and Listener, as tfcat
// serve does.
func serveReal(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(srv.Listener(ln))
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

type outcome struct {
	code int
	took time.Duration
	body string
	err  error
}

func post(url string, body []byte) outcome {
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{code: resp.StatusCode, took: time.Since(start), body: string(b), err: err}
}

func b64Instances(imgs ...[]byte) []byte {
	var b strings.Builder
	b.WriteString(`{"instances": [`)
	for i, img := range imgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"b64":"` + base64.StdEncoding.EncodeToString(img) + `"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// hostileCase is a request of hostile images and the exact answer the
// server gives it: the status and what its error message says.
type hostileCase struct {
	name   string
	imgs   [][]byte // the request's b64 instances
	code   int
	reason []string // substrings of the error message, all of them
}

// hostileConfig is a server configuration and its answers to hostile
// requests.
type hostileConfig struct {
	name  string
	cfg   Config
	cases []hostileCase
}

// hostileConfigs: requests of 16 JPEGs claiming 10000×10000 whose data ends
// at once, and of 16 valid 10000×10000 grey PNGs (100 KB, 10^8 pixels
// decoded), under the server's default pixel limit, under one as generous as
// training's, and with a decode budget large enough for the JPEG. The test
// model takes one channel: a JPEG's decode needs ~620 MB (its 300 MB of
// coefficients counted), a PNG's ~600 MB, of the default 512 MB budget.
func hostileConfigs(t testing.TB) []hostileConfig {
	jpeg := hostile.JPEG(10000, 10000)
	png := hostile.PNG(10000, 10000)
	many := func(img []byte) [][]byte {
		imgs := make([][]byte, 16)
		for i := range imgs {
			imgs[i] = img
		}
		return imgs
	}
	needs := func(img []byte) int64 {
		hdr, err := dataset.ReadHeader(img)
		if err != nil {
			t.Fatal(err)
		}
		return hdr.DecodeMemory(1)
	}
	jpegNeeds, pngNeeds := needs(jpeg), needs(png)
	if jpegNeeds <= DefaultDecodeMemory || pngNeeds <= DefaultDecodeMemory || jpegNeeds < pngNeeds {
		t.Fatalf("the JPEG needs %d bytes to decode, the PNG %d: the cases below assume both over the default budget of %d, the JPEG more",
			jpegNeeds, pngNeeds, DefaultDecodeMemory)
	}
	const training = 100_000_000
	overLimit := func(format string) []string {
		return []string{"decoding the b64 image: " + dataset.ErrTooLarge.Error(),
			fmt.Sprintf(": %s of 10000x10000 is 100000000 pixels, the server's limit is %d", format, DefaultMaxImagePixels)}
	}
	overBudget := func(need, budget int64) []string {
		return []string{"decoding the b64 image: request too large: ",
			fmt.Sprintf(": %d of the server's bytes of decode memory needed, and it has %d in all", need, budget)}
	}
	return []hostileConfig{
		// Refused from the header by the pixel limit.
		{"default limit", Config{}, []hostileCase{
			{"jpeg", many(jpeg), http.StatusBadRequest, overLimit("jpeg")},
			{"png", many(png), http.StatusBadRequest, overLimit("png")},
		}},
		// Refused from the header: each needs more than the whole budget.
		{"training's limit", Config{MaxImagePixels: training}, []hostileCase{
			{"jpeg", many(jpeg), http.StatusRequestEntityTooLarge, overBudget(jpegNeeds, DefaultDecodeMemory)},
			{"png", many(png), http.StatusRequestEntityTooLarge, overBudget(pngNeeds, DefaultDecodeMemory)},
		}},
		// The JPEG's decode fits the budget, runs, and stops at the missing
		// data. (The PNGs would fit too, and decode: they are valid.) 64 MB
		// more holds concurrent requests' bodies (1 MB each at most here)
		// while one decodes.
		{"training's limit, budget for the jpeg", Config{MaxImagePixels: training, DecodeMemory: jpegNeeds + 64<<20}, []hostileCase{
			{"jpeg", many(jpeg), http.StatusBadRequest,
				[]string{"decoding the b64 image: corrupt or truncated image: jpeg: Corrupt JPEG data: premature end of data segment"}},
		}},
	}
}

// answers reports whether o is c's answer: its status and, in the JSON
// error, every part of its reason.
func (c hostileCase) answers(o outcome) bool {
	var e struct{ Error string }
	if o.err != nil || o.code != c.code || json.Unmarshal([]byte(o.body), &e) != nil {
		return false
	}
	for _, r := range c.reason {
		if !strings.Contains(e.Error, r) {
			return false
		}
	}
	return true
}

// mixed is one request holding every case's images, interleaved: the first
// image to fail decides its answer, one of the cases'.
func (hc hostileConfig) mixed() []byte {
	var imgs [][]byte
	for i := range hc.cases[0].imgs {
		for _, c := range hc.cases {
			imgs = append(imgs, c.imgs[i])
		}
	}
	return b64Instances(imgs...)
}

// answers reports whether o is one of hc's answers.
func (hc hostileConfig) answers(o outcome) bool {
	for _, c := range hc.cases {
		if c.answers(o) {
			return true
		}
	}
	return false
}

// String lists hc's answers.
func (hc hostileConfig) String() string {
	var b strings.Builder
	for _, c := range hc.cases {
		fmt.Fprintf(&b, "[%s: HTTP %d saying %q] ", c.name, c.code, c.reason)
	}
	return b.String()
}

// concurrently posts body n times at once.
func concurrently(n int, url string, body []byte) []outcome {
	var wg sync.WaitGroup
	outs := make([]outcome, n)
	for i := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i] = post(url, body) }()
	}
	wg.Wait()
	return outs
}

// TestHostileImages is issue 16's acceptance, checked by what the server
// answers and what it costs in memory: each request of hostile images gets
// its exact status and reason; then 8 concurrent requests, each with all
// the configuration's bombs, each get one of those answers, none waits for
// memory (503), times out (504) or is predicted, the process's peak RSS
// stays under 1.5 GB, and a normal request right after succeeds. The time
// the requests take is BenchmarkHostileImages's.
func TestHostileImages(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	good := b64Instances(pngImage(t, side, side, 3))
	for _, hc := range hostileConfigs(t) {
		t.Run(hc.name, func(t *testing.T) {
			srv, err := New(m, hc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			url := serveReal(t, srv) + "/v1/models/default:predict"
			for _, c := range hc.cases {
				if o := post(url, b64Instances(c.imgs...)); !c.answers(o) {
					t.Errorf("%s: HTTP %d (%v) %.300s; want HTTP %d saying %q", c.name, o.code, o.err, o.body, c.code, c.reason)
				}
			}

			body := hc.mixed()
			if !fuzzlimit.ResetPeak() {
				t.Log("the peak RSS cannot be reset here: it is the process's peak so far")
			}
			before := srv.Stats()
			outs := concurrently(8, url, body)
			peak, err := fuzzlimit.PeakRSS()
			if err != nil {
				t.Fatal(err)
			}
			after := srv.Stats()
			for i, o := range outs {
				if !hc.answers(o) {
					t.Errorf("concurrent request %d: HTTP %d (%v) %.300s; want one of %s", i, o.code, o.err, o.body, hc)
				}
			}
			t.Logf("8 requests × %d bombs (%d-byte body): peak RSS %d MB; first answer HTTP %d %.200s; stats %+v",
				16*len(hc.cases), len(body), peak>>20, outs[0].code, outs[0].body, after)
			if after.Busy != before.Busy || after.TimedOut != before.TimedOut || after.Images != before.Images {
				t.Errorf("stats before %+v, after %+v: want no request waiting for memory, timed out or predicted", before, after)
			}
			if peak > 1500<<20 {
				t.Errorf("peak RSS %d MB, limit 1500 MB", peak>>20)
			}
			if o := post(url, good); o.code != http.StatusOK {
				t.Errorf("a normal request after them: HTTP %d: %s", o.code, o.body)
			}
		})
	}
}

// BenchmarkHostileImages is the time of TestHostileImages's 8 concurrent
// requests of bombs under each configuration: the target is under 2 s for
// the slowest request, reported as slowest-ms.
//
//	go test -run '^$' -bench HostileImages -benchtime 3x ./serving/
func BenchmarkHostileImages(b *testing.B) {
	m := testmodel.Serving(b, side, 1)
	for _, hc := range hostileConfigs(b) {
		b.Run(strings.ReplaceAll(hc.name, " ", "-"), func(b *testing.B) {
			srv, err := New(m, hc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			url := serveReal(b, srv) + "/v1/models/default:predict"
			body := hc.mixed()
			var worst time.Duration
			for b.Loop() {
				outs := concurrently(8, url, body)
				for _, o := range outs {
					if !hc.answers(o) {
						b.Fatalf("HTTP %d (%v) %.300s; want one of %s", o.code, o.err, o.body, hc)
					}
				}
				worst = max(worst, slowest(outs))
			}
			b.ReportMetric(float64(worst.Milliseconds()), "slowest-ms")
		})
	}
}

func slowest(outs []outcome) time.Duration {
	var d time.Duration
	for _, o := range outs {
		d = max(d, o.took)
	}
	return d
}

// The pixel limit, the memory budget's 413 and 503, and the request slots.
func TestLimits(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	small := pngImage(t, 64, 64, 1)

	srv, err := New(m, Config{MaxImagePixels: 64 * 63})
	if err != nil {
		t.Fatal(err)
	}
	url := serveReal(t, srv) + "/v1/models/default:predict"
	if o := post(url, b64Instances(small)); o.code != http.StatusBadRequest || !strings.Contains(o.body, "limit is 4032") {
		t.Errorf("64×64 over a 4032-pixel limit: HTTP %d %s", o.code, o.body)
	}

	// A budget smaller than one image's decode: 413 at once.
	srv, err = New(m, Config{DecodeMemory: 40 << 10})
	if err != nil {
		t.Fatal(err)
	}
	url = serveReal(t, srv) + "/v1/models/default:predict"
	if o := post(url, b64Instances(small)); o.code != http.StatusRequestEntityTooLarge || !strings.Contains(o.body, "bytes of decode memory") {
		t.Errorf("image over the whole budget: HTTP %d %s", o.code, o.body)
	}

	// The budget held by others: wait, then 503 at the deadline.
	srv, err = New(m, Config{RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url = serveReal(t, srv) + "/v1/models/default:predict"
	if err := srv.mem.acquire(context.Background(), srv.cfg.DecodeMemory); err != nil {
		t.Fatal(err)
	}
	// The deadline, not a refusal at once, ends the wait: the context's
	// error says so (it is DeadlineExceeded only once the 300 ms passed).
	o := post(url, b64Instances(small))
	if o.code != http.StatusServiceUnavailable || !strings.Contains(o.body, "resource exhausted: waited until the request's deadline") ||
		!strings.Contains(o.body, "context deadline exceeded") {
		t.Errorf("budget held: HTTP %d after %v: %s", o.code, o.took, o.body)
	}
	srv.mem.release(srv.cfg.DecodeMemory)
	if o := post(url, b64Instances(small)); o.code != http.StatusOK {
		t.Errorf("budget free again: HTTP %d %s", o.code, o.body)
	}
	if st := srv.Stats(); st.Busy != 1 || st.DecodeMemory != 0 {
		t.Errorf("stats %+v: want 1 busy, no memory held", st)
	}

	// All request slots taken: 503 at the deadline too.
	if err := srv.slots.acquire(context.Background(), int64(srv.cfg.MaxConcurrentRequests)); err != nil {
		t.Fatal(err)
	}
	if o := post(url, b64Instances(small)); o.code != http.StatusServiceUnavailable || !strings.Contains(o.body, "request slots") {
		t.Errorf("no request slot: HTTP %d %s", o.code, o.body)
	}
	srv.slots.release(int64(srv.cfg.MaxConcurrentRequests))
}

// The budget is first come, first served, and a wait ends with the context.
func TestBudget(t *testing.T) {
	b := newBudget(10, "units")
	ctx := context.Background()
	if err := b.acquire(ctx, 11); !errors.Is(err, errTooBig) {
		t.Errorf("more than the budget: %v", err)
	}
	if err := b.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.acquire(ctx, 5); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(20 * time.Millisecond) // the 5 waits first
	// 2 are free, but the 5 came first: the 1 waits behind it, here until
	// its deadline.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 1); !errors.Is(err, errExhausted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the deadline: %v", err)
	}
	b.release(8)
	wg.Wait()
	if err := b.acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if b.held() != 6 {
		t.Errorf("held %d, want 6", b.held())
	}
}

// Slow clients are dropped: one sending its headers a byte a second at the
// read-header timeout, one sending its body a byte a second at the read
// timeout; a header block over the limit gets 431. net/http enforces the
// timeouts: the test checks that the server hands it the configured ones,
// and that each slow client is dropped while it still trickles (the
// defaults, 5 s and 20 s, would drop them too, later; the 30 s cap only
// ends a test that would otherwise hang).
func TestSlowClients(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	srv, err := New(m, Config{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, MaxHeaderBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if hs := srv.HTTPServer(); hs.ReadHeaderTimeout != 500*time.Millisecond || hs.ReadTimeout != time.Second {
		t.Errorf("the http.Server's timeouts: read header %v, read %v; want 500ms and 1s", hs.ReadHeaderTimeout, hs.ReadTimeout)
	}
	addr := strings.TrimPrefix(serveReal(t, srv), "http://")
	for _, c := range []struct {
		name, head string
	}{
		{"headers", "POST /v1/models/default:predict HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"body", "POST /v1/models/default:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"instances\": "},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := conn.Write([]byte(c.head)); err != nil {
			t.Fatal(err)
		}
		dropped := false
		for i := 0; i < 120 && !dropped; i++ { // 4 bytes a second, 30 s at most
			time.Sleep(time.Second / 4)
			if _, err := conn.Write([]byte("a")); err != nil {
				dropped = true
				break
			}
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [512]byte
			if n, err := conn.Read(b[:]); n > 0 || (err != nil && !errors.Is(err, errTimeout(err))) {
				dropped = true
			}
		}
		conn.Close()
		if !dropped {
			t.Errorf("slow %s: still connected after %v of trickling", c.name, time.Since(start))
		} else {
			t.Logf("slow %s: dropped after %v", c.name, time.Since(start))
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/models/default", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KB header over a 4 KB limit: HTTP %d", resp.StatusCode)
	}
}

// errTimeout returns err itself when it is a timeout, so that errors.Is
// matches it, and a sentinel otherwise.
func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errNotTimeout
}

var errNotTimeout = errors.New("not a timeout")

// MaxConnections: with two connections open, a third waits until one closes.
func TestMaxConnections(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	srv, err := New(m, Config{MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(serveReal(t, srv), "http://")
	var open []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	get := func() outcome {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/v1/models/default")
		if err != nil {
			return outcome{err: err, took: time.Since(start)}
		}
		resp.Body.Close()
		return outcome{code: resp.StatusCode, took: time.Since(start)}
	}
	done := make(chan outcome, 1)
	go func() { done <- get() }()
	select {
	case o := <-done:
		t.Fatalf("a third connection was served while two were open: %+v", o)
	case <-time.After(300 * time.Millisecond):
	}
	open[0].Close()
	if o := <-done; o.code != http.StatusOK {
		t.Errorf("after one closed: %+v", o)
	}
	open[1].Close()
}

// Requests that each fit the decode-memory budget but together exceed it are
// all served, in turn: none holds part of the budget while it waits for more
// that only the others could give back (hold-and-wait). Found by loadtest:
// 32 clients × 32 float-tensor images, 570 MB of bodies against the 512 MB
// default, every request failed at its deadline, each holding the chunks of
// its body read so far. Here 12 clients, bodies of 1.4 MB (over bodyChunk),
// a budget of about two requests: taken a chunk at a time, the 12 first
// chunks alone would exceed it.
func TestBudgetServesRequestsInTurn(t *testing.T) {
	m := testmodel.Serving(t, side, 1)
	const n, clients = DefaultMaxInstances, 12
	row := "[" + strings.Repeat("[0.25],", side-1) + "[0.25]]"
	instance := "[" + strings.Repeat(row+",", side-1) + row + "]"
	body := []byte(`{"instances": [` + strings.Repeat(instance+",", n-1) + instance + "]}")
	tensor := int64(n * side * side * 4)
	// What one request takes: its body, and its tensor at the JSON bound.
	need := int64(len(body)) + 1 + min(2*int64(len(body)+1), tensor)
	budget := 2*need + need/2
	if int64(len(body)) <= bodyChunk || clients*bodyChunk <= budget {
		t.Fatalf("the check needs bodies over one chunk and more first chunks than the budget: body %d, budget %d", len(body), budget)
	}
	srv, err := New(m, Config{DecodeMemory: budget, RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	url := serveReal(t, srv) + "/v1/models/default:predict"
	for i, o := range concurrently(clients, url, body) {
		if o.err != nil || o.code != http.StatusOK {
			t.Errorf("request %d of %d (body %d bytes, tensor %d, budget %d): HTTP %d after %v: %v %.200s", i, clients, len(body), tensor, budget, o.code, o.took, o.err, o.body)
		}
	}
	if st := srv.Stats(); st.DecodeMemory != 0 {
		t.Errorf("%d bytes of decode memory held after the requests", st.DecodeMemory)
	}
}
