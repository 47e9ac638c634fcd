package serving

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tfcat/tfcat/internal/browser"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
)

// xssClass is a class name that runs script if a page pastes it as HTML.
const xssClass = "<img src=x onerror=alert(1)>"

// writePNG writes a side×side grey PNG with a gradient in dir.
func writePNG(t *testing.T, dir, name string, seed int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			img.SetGray(x, y, color.Gray{uint8((x*5 + y*seed*3) % 256)})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// classifyDirect asks :classify-image for file's answer, as the page should.
func classifyDirect(t *testing.T, url, file string) (int, map[string]any) {
	t.Helper()
	data, _ := os.ReadFile(file)
	resp, err := http.Post(url+"/v1/models/pets:classify-image", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, body
}

// TestPageInBrowser opens GET / in headless Chromium and uses it as a person
// would: the model's facts are shown (a hostile class name as text), an
// image picked in the form gets the server's prediction, a dropped one too,
// a corrupt one the server's error; no request leaves the server, no
// script but the page's runs, and the policy allows nothing else.
func TestPageInBrowser(t *testing.T) {
	classes := []string{"cat", xssClass, "dog"}
	_, url := start(t, testmodel.Serving(t, side, 1), Config{Name: "pets", Classes: classes, Source: "/models/<b>pets</b>"})
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != PageContentSecurityPolicy {
		t.Errorf("Content-Security-Policy %q", got)
	}

	dir := t.TempDir()
	good := writePNG(t, dir, "good.png", 1)
	corrupt := filepath.Join(dir, "corrupt.png")
	data, _ := os.ReadFile(good)
	os.WriteFile(corrupt, data[:len(data)/2], 0o644)

	p := browser.Open(t, url+"/", browser.Options{Width: 1000, Height: 900})
	if err := p.Do(browser.WaitFor(`document.getElementById('app').dataset.ready === 'true'`, 10*time.Second)); err != nil {
		t.Fatalf("the page's script did not run: %v; console %q", err, p.Console())
	}
	type pageFacts struct {
		Name, Input, Source string
		Classes             []string
		Images              int
		Unnamed             bool
	}
	facts, err := browser.Run(p, chromedp.Evaluate[pageFacts](`({name: document.getElementById('name').textContent,
		input: document.getElementById('input').textContent,
		source: document.getElementById('source').textContent,
		classes: [...document.querySelectorAll('#classes li')].map(li => li.textContent),
		images: document.querySelectorAll('img').length,
		unnamed: !!document.getElementById('unnamed')})`))
	if err != nil {
		t.Fatal(err)
	}
	if facts.Name != "pets" || !strings.HasPrefix(facts.Input, "28×28×1") || facts.Source != "/models/<b>pets</b>" ||
		!slices.Equal(facts.Classes, classes) || facts.Unnamed {
		t.Errorf("facts %+v", facts)
	}
	if facts.Images != 1 { // the (empty) preview only: the class name made no <img>
		t.Errorf("%d <img> elements, want the preview's only", facts.Images)
	}

	// Pick an image: the page shows what the API answers for it.
	if err := p.Do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{good})); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(browser.WaitFor(`!document.getElementById('result').hidden`, 20*time.Second)); err != nil {
		t.Fatalf("no prediction shown: %v; status %q", err, evalString(t, p, `document.getElementById('status').textContent`))
	}
	code, want := classifyDirect(t, url, good)
	if code != 200 {
		t.Fatalf("classify-image: %d %v", code, want)
	}
	type shownPrediction struct {
		Class  string
		Rows   []string
		Widths []float64
	}
	shown, err := browser.Run(p, chromedp.Evaluate[shownPrediction](`({class: document.getElementById('class').textContent,
		rows: [...document.querySelectorAll('#probabilities li')].map(li => li.querySelector('.label').textContent + '=' + li.querySelector('.value').textContent),
		widths: [...document.querySelectorAll('#probabilities .bar')].map(b => b.getBoundingClientRect().width)})`))
	if err != nil {
		t.Fatal(err)
	}
	if shown.Class != want["class"] || len(shown.Rows) != 3 {
		t.Errorf("page shows %+v; the API answers %v", shown, want)
	}
	if !slices.IsSortedFunc(shown.Widths, func(a, b float64) int { return int(math.Round(b - a)) }) || shown.Widths[0] <= 0 {
		t.Errorf("probability bars %v: want widths in decreasing order, the first visible", shown.Widths)
	}
	p.CheckedScreenshot(t, "serve-page-test.png", 1000, 600)

	// A corrupt image: the server's error message, as the API gives it.
	if err := p.Do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{corrupt})); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(browser.WaitFor(`document.getElementById('status').className === 'error'`, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	code, refusal := classifyDirect(t, url, corrupt)
	msg := evalString(t, p, `document.getElementById('status').textContent`)
	if code != 400 || !strings.Contains(msg, refusal["error"].(string)) || !strings.Contains(msg, "(400)") {
		t.Errorf("page says %q; the API answers %d %v", msg, code, refusal)
	}

	// Drop an image made in the page: the drop target classifies it too.
	if err := p.Do(chromedp.Evaluate[chromedp.Void](`(async () => {
		const c = document.createElement('canvas'); c.width = c.height = 32;
		const g = c.getContext('2d'); g.fillStyle = '#888'; g.fillRect(0, 0, 32, 16);
		const blob = await new Promise(r => c.toBlob(r, 'image/png'));
		const dt = new DataTransfer(); dt.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(browser.WaitFor(`!document.getElementById('result').hidden && document.getElementById('status').className === ''`, 20*time.Second)); err != nil {
		t.Fatalf("a dropped image got no prediction: %v", err)
	}

	if out := p.RequestsOutside(url+"/", "blob:"+url+"/"); len(out) > 0 {
		t.Errorf("the page requested %q, outside the server", out)
	}
	if !slices.Contains(p.Requests(), url+"/v1/models/pets:classify-image") {
		t.Errorf("requests %q: the page did not call the API", p.Requests())
	}
	if d := p.Dialogs(); len(d) > 0 {
		t.Errorf("dialogs opened: %q", d)
	}
	for _, c := range p.Console() {
		if strings.Contains(c, "Content Security Policy") || strings.Contains(c, "exception") {
			t.Errorf("console: %s", c)
		}
	}
}

// TestPageEscapesWithoutCSP: with the page's policy turned off in the
// browser, the hostile class name is still text — escaping alone keeps it
// inert — and the page still works.
func TestPageEscapesWithoutCSP(t *testing.T) {
	_, url := start(t, testmodel.Serving(t, side, 1), Config{Name: "pets", Classes: []string{"cat", xssClass, "dog"}})
	p := browser.Open(t, "about:blank", browser.Options{})
	if err := p.Do(browser.BypassCSP(), chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{writePNG(t, t.TempDir(), "x.png", 2)})); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(browser.WaitFor(`!document.getElementById('result').hidden`, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := browser.Run(p, chromedp.Evaluate[int](`[...document.querySelectorAll('#classes li, #probabilities .label')].filter(e => e.textContent === `+browser.Quote(xssClass)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("the class name appears as text %d times, want 2 (list and probabilities)", n)
	}
	if n, err = browser.Run(p, chromedp.Evaluate[int](`document.querySelectorAll('img[src="x"]').length`)); err != nil || n != 0 {
		t.Errorf("%d <img src=x> elements (%v)", n, err)
	}
	for _, u := range p.Requests() {
		if strings.HasSuffix(u, "/x") {
			t.Errorf("the injected image was requested: %s", u)
		}
	}
	if d := p.Dialogs(); len(d) > 0 {
		t.Errorf("dialogs opened: %q", d)
	}
}

// TestPageUnnamedClasses: a model without class names (the Python
// tutorial's checkpoints) gets a page that says so.
func TestPageUnnamedClasses(t *testing.T) {
	_, url := start(t, testmodel.Serving(t, side, 1), Config{})
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `id="unnamed"`) || !strings.Contains(string(body), "<li>0</li><li>1</li><li>2</li>") {
		t.Errorf("page without class names:\n%s", body)
	}
	for path, ctype := range map[string]string{"/page.js": "text/javascript", "/page.css": "text/css"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	resp, err = http.Post(url+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
	if resp, err = http.Get(url + "/other"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /other: %d, want 404", resp.StatusCode)
		}
	}
}

func evalString(t *testing.T, p *browser.Page, expr string) string {
	t.Helper()
	s, err := browser.Run(p, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
