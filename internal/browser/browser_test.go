package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPage drives one page through everything the package does: load,
// evaluate, pick a file, record requests, dialogs and console messages, take
// a screenshot.
func TestPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, `<!doctype html><title>t</title><body style="background:#fff">
<div id=box style="width:300px;height:200px;background:#c00"></div>
<input type=file id=f><p id=out></p>
<script>
document.getElementById('f').addEventListener('change', e => {
  document.getElementById('out').textContent = e.target.files[0].name + ' ' + e.target.files[0].size;
});
console.log('hello', 42);
fetch('/data').then(r => r.text()).then(t => { document.title = t; });
</script>`)
		case "/data":
			fmt.Fprint(w, "fetched")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	p := Open(t, srv.URL+"/", Options{Width: 800, Height: 600})
	if err := p.WaitFor(`document.title === "fetched"`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var rect struct{ Width, Height float64 }
	if err := p.Eval(`(() => { const r = document.getElementById('box').getBoundingClientRect(); return {width: r.width, height: r.height}; })()`, &rect); err != nil {
		t.Fatal(err)
	}
	if rect.Width != 300 || rect.Height != 200 {
		t.Errorf("box is %v×%v, want 300×200", rect.Width, rect.Height)
	}

	file := filepath.Join(t.TempDir(), "pick.txt")
	os.WriteFile(file, []byte("12345"), 0o644)
	if err := p.SetFiles("#f", file); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(`document.getElementById('out').textContent === "pick.txt 5"`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.SetFiles("#nothing", file); err == nil {
		t.Error("SetFiles on a missing element did not fail")
	}

	if err := p.Eval(`alert("hi")`, nil); err != nil {
		t.Fatal(err)
	}
	if d := p.Dialogs(); !slices.Equal(d, []string{"alert: hi"}) {
		t.Errorf("dialogs %q, want the alert", d)
	}
	if err := p.Eval(`throw new Error("boom")`, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a thrown exception gave %v", err)
	}
	if c := p.Console(); !slices.Contains(c, "console.log: hello 42") {
		t.Errorf("console %q lacks the log call", c)
	}
	// A request outside loopback is recorded (and fails: the proxy is dead).
	p.Eval(`fetch("http://example.invalid/x").catch(() => {})`, nil)
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
