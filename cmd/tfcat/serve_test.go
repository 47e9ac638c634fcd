package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe to write from the server and read from
// the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs tfcat serve in-process on a free loopback port and returns
// its base URL, its stderr and a channel with its exit status.
func startServe(t *testing.T, args ...string) (string, *lockedBuffer, chan int) {
	t.Helper()
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(append([]string{"tfcat", "serve", "--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--device", "/cpu:0"}, args...), io.Discard, stderr)
	}()
	re := regexp.MustCompile(`on (http://127\.0\.0\.1:[0-9]+)/`)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr, done
		}
		select {
		case code := <-done:
			t.Fatalf("tfcat serve exited %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("tfcat serve did not start: %s", stderr.String())
	return "", nil, nil
}

func grayPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8(x * y)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func httpDo(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Errorf("%s %s: reply is not JSON: %v", method, url, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, v
}

// TestServeCommand exports a checkpoint, serves the SavedModel and the
// checkpoint, and stops the server with SIGTERM.
func TestServeCommand(t *testing.T) {
	ckpt := smallCheckpoint(t, []string{"cat", "dog"})
	out := filepath.Join(t.TempDir(), "sm")
	if code := run([]string{"tfcat", "export", "-q", "--model", ckpt, "--out", out}, io.Discard, os.Stderr); code != 0 {
		t.Fatalf("export exited %d", code)
	}
	img := base64.StdEncoding.EncodeToString(grayPNG(t, 40, 40))
	var first []any
	for _, model := range []string{out, ckpt} {
		t.Run(filepath.Base(model), func(t *testing.T) {
			url, stderr, done := startServe(t, "--model", model, "--name", "pets", "--max-batch", "4")
			code, v := httpDo(t, "POST", url+"/v1/models/pets:predict", `{"instances": [{"b64": "`+img+`"}]}`)
			preds, _ := v["predictions"].([]any)
			if code != 200 || len(preds) != 1 {
				t.Errorf("predict: %d %v", code, v)
			} else if first == nil {
				first = preds
			} else if p, _ := json.Marshal(preds); string(p) != mustJSON(first) {
				t.Errorf("the checkpoint predicts %s, the SavedModel %s", p, mustJSON(first))
			}
			if code, v := httpDo(t, "GET", url+"/v1/models/pets", ""); code != 200 || !strings.Contains(mustJSON(v), "AVAILABLE") {
				t.Errorf("status: %d %v", code, v)
			}
			if code, v := httpDo(t, "GET", url+"/v1/models/pets/metadata", ""); code != 200 || !strings.Contains(mustJSON(v), "serving_default") {
				t.Errorf("metadata: %d %v", code, v)
			}
			if code, _ := httpDo(t, "GET", url+"/v1/models/cats", ""); code != 404 {
				t.Errorf("unknown model: %d", code)
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("exit %d after SIGTERM: %s", code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("tfcat serve did not stop on SIGTERM")
			}
			if s := stderr.String(); !strings.Contains(s, "shutting down") || !strings.Contains(s, "stopped; predicted 1 images in 1 batches") {
				t.Errorf("stderr: %s", s)
			}
		})
	}
}

func TestServeUsage(t *testing.T) {
	ckpt := smallCheckpoint(t, []string{"cat", "dog"})
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--max-batch", "0"}, 2, "must be positive"},
		{[]string{"--batch-wait", "-1s"}, 2, "must not be negative"},
		{[]string{"--name", "a/b"}, 2, "model name"},
		{[]string{"--classes", "a,b,c"}, 2, "--classes names 3 classes"},
		{[]string{"extra"}, 2, "takes no arguments"},
		{[]string{"--addr", "127.0.0.1:99999"}, 1, "listening on 127.0.0.1:99999"},
	} {
		var stderr bytes.Buffer
		code := run(append([]string{"tfcat", "serve", "-q", "--grpc-addr", "127.0.0.1:0", "--device", "/cpu:0", "--model", ckpt}, c.args...), io.Discard, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
