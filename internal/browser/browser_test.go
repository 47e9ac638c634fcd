package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPage checks what this package adds to chromedp, on which the page
// tests' assertions rest: the viewport, the record of requests, dialogs and
// console messages (a record that missed them would make "no dialog, no
// request outside the server" checks pass vacuously), WaitFor on a page
// whose policy forbids eval, and the screenshot.
func TestPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Security-Policy", "script-src 'self'") // no eval
			fmt.Fprint(w, `<!doctype html><title>t</title><body style="background:#fff">
<div id=box style="width:300px;height:200px;background:#c00"></div>
<p>Some text, for the colours of its anti-aliased edges.</p>
<script src="/page.js"></script><script>console.log("an inline script: the policy blocks it")</script>`)
		case "/page.js":
			fmt.Fprint(w, `console.log('hello', 42);
fetch('/data').then(r => r.text()).then(t => { document.title = t; });`)
		case "/data":
			fmt.Fprint(w, "fetched")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	p := Open(t, srv.URL+"/", Options{Width: 800, Height: 600})
	if err := p.Do(WaitFor(`document.title === "fetched"`, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(WaitFor(`false`, 200*time.Millisecond)); err == nil {
		t.Error("WaitFor of false did not fail")
	}
	rect, err := Run(p, chromedp.Evaluate[struct{ Width, Height float64 }](`(() => {
		const r = document.getElementById('box').getBoundingClientRect(); return {width: r.width, height: r.height}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if rect.Width != 300 || rect.Height != 200 {
		t.Errorf("box is %v×%v, want 300×200", rect.Width, rect.Height)
	}

	// The alert is answered (else the evaluation would not return) and kept.
	if err := p.Do(chromedp.Evaluate[chromedp.Void](`alert("hi")`)); err != nil {
		t.Fatal(err)
	}
	if d := p.Dialogs(); !slices.Equal(d, []string{"alert: hi"}) {
		t.Errorf("dialogs %q, want the alert", d)
	}
	// An uncaught exception; the inline script's policy violation is in the
	// browser's log.
	p.Do(chromedp.Evaluate[chromedp.Void](`setTimeout(() => { throw new Error("boom"); })`))
	if err := p.Do(WaitFor(`new Promise(r => setTimeout(() => r(true), 100))`, time.Second)); err != nil {
		t.Fatal(err)
	}
	console := p.Console()
	for _, want := range []string{"console.log: hello 42", "exception: Uncaught Error: boom"} {
		if !slices.ContainsFunc(console, func(c string) bool { return strings.HasPrefix(c, want) }) {
			t.Errorf("console %q lacks %q", console, want)
		}
	}
	if !slices.ContainsFunc(console, func(c string) bool { return strings.Contains(c, "Content Security Policy") }) {
		t.Errorf("console %q lacks the policy violation", console)
	}

	// A request outside loopback is recorded (and fails: the proxy is dead).
	p.Do(chromedp.Evaluate[chromedp.Void](`fetch("http://example.invalid/x").catch(() => {})`, chromedp.EvalAwaitPromise))
	reqs := p.Requests()
	for _, want := range []string{srv.URL + "/", srv.URL + "/data", "http://example.invalid/x"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("requests %q lack %s", reqs, want)
		}
	}
	if out := p.RequestsOutside(srv.URL + "/"); !slices.Equal(out, []string{"http://example.invalid/x"}) {
		t.Errorf("requests outside the server: %q", out)
	}

	shot := p.CheckedScreenshot(t, "browser-test.png", 800, 600)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 800 || img.Bounds().Dy() != 600 {
		t.Errorf("screenshot is %v, want 800×600", img.Bounds())
	}
	r, g, bl, _ := img.At(100, 100).RGBA()
	if r>>8 != 0xcc || g>>8 != 0 || bl>>8 != 0 {
		t.Errorf("the red box's pixel is %d,%d,%d", r>>8, g>>8, bl>>8)
	}
}
