package serving

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/hostile"
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

// TestHostileImages is issue 16's acceptance: 8 concurrent requests, each
// with 16 JPEGs claiming 10000×10000 whose data ends at once and 16 valid
// 10000×10000 PNGs, are all refused within 2 s each, the process's peak RSS
// stays under 1.5 GB, and a normal request right after succeeds. With the
// server's default pixel limit the headers refuse them; with a limit as
// generous as training's, the JPEG decodes stop at the missing data and the
// PNGs need more than the whole memory budget.
func TestHostileImages(t *testing.T) {
	m := testModel(t)
	jpeg := hostile.JPEG(10000, 10000)
	png := hostile.PNG(10000, 10000)
	imgs := make([][]byte, 0, 32)
	for range 16 {
		imgs = append(imgs, jpeg, png)
	}
	body := b64Instances(imgs...)
	good := b64Instances(pngImage(t, side, side, 3))
	for _, c := range []struct {
		name      string
		maxPixels int
	}{
		{"default limit", 0},
		{"training's limit", 100_000_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := New(m, Config{MaxImagePixels: c.maxPixels})
			if err != nil {
				t.Fatal(err)
			}
			url := serveReal(t, srv) + "/v1/models/default:predict"
			if !fuzzlimit.ResetPeak() {
				t.Log("the peak RSS cannot be reset here: it is the process's peak so far")
			}
			rss0, err := fuzzlimit.RSS()
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			outs := make([]outcome, 8)
			start := time.Now()
			for i := range outs {
				wg.Add(1)
				go func() { defer wg.Done(); outs[i] = post(url, body) }()
			}
			wg.Wait()
			all := time.Since(start)
			peak, err := fuzzlimit.PeakRSS()
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outs {
				if o.err != nil || o.code < 400 || o.took > 2*time.Second {
					t.Errorf("request %d: HTTP %d after %v (%v): %.300s", i, o.code, o.took, o.err, o.body)
				}
			}
			t.Logf("8 requests × 32 bombs (%d-byte body): answered %d in %v; slowest %v; peak RSS %d MB (%d MB before): %.200s",
				len(body), outs[0].code, all, slowest(outs), peak>>20, rss0>>20, outs[0].body)
			if peak > 1500<<20 {
				t.Errorf("peak RSS %d MB, limit 1500 MB", peak>>20)
			}
			if o := post(url, good); o.code != http.StatusOK {
				t.Errorf("a normal request after them: HTTP %d: %s", o.code, o.body)
			}
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
	m := testModel(t)
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
	o := post(url, b64Instances(small))
	if o.code != http.StatusServiceUnavailable || !strings.Contains(o.body, "resource exhausted") || o.took < 250*time.Millisecond || o.took > 2*time.Second {
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
// timeout; a header block over the limit gets 431.
func TestSlowClients(t *testing.T) {
	m := testModel(t)
	srv, err := New(m, Config{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, MaxHeaderBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(serveReal(t, srv), "http://")
	for _, c := range []struct {
		name, head string
		limit      time.Duration
	}{
		{"headers", "POST /v1/models/default:predict HTTP/1.1\r\nHost: x\r\nX-Slow: ", 500 * time.Millisecond},
		{"body", "POST /v1/models/default:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"instances\": ", time.Second},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := conn.Write([]byte(c.head)); err != nil {
			t.Fatal(err)
		}
		dropped := time.Duration(0)
		for i := 0; i < 10; i++ {
			time.Sleep(time.Second / 4) // 4 bytes a second
			if _, err := conn.Write([]byte("a")); err != nil {
				dropped = time.Since(start)
				break
			}
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [512]byte
			if n, err := conn.Read(b[:]); n > 0 || (err != nil && !errors.Is(err, errTimeout(err))) {
				dropped = time.Since(start)
				break
			}
		}
		conn.Close()
		if dropped == 0 || dropped > c.limit+time.Second {
			t.Errorf("slow %s: dropped after %v (0: not in 2.5 s), timeout %v", c.name, dropped, c.limit)
		} else {
			t.Logf("slow %s: dropped after %v (timeout %v)", c.name, dropped, c.limit)
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
	m := testModel(t)
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
