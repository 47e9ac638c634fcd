// Package browser opens tfcat's pages in headless Chromium for the tests of
// report, serving and cmd/tfcat. github.com/chromedp/chromedp drives the
// browser; this package holds what those tests share: finding the installed
// Chromium (no browser is ever downloaded), starting it with the same flags
// for every test and stopping it when the test ends, and a record of every
// request a page makes, every dialog it opens and every message its console
// logs, which the tests check stays on the server, or empty.
//
// Chromium is Debian's chromium package (scripts/setup-debian.sh installs
// it), found as $TFCAT_CHROMIUM or chromium on the PATH. The browser runs
// with a dead proxy for everything but loopback, so a page that tries to
// reach the network fails there as well as in the request log.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each Run and Do, so that a page or a browser that stops
// answering fails its test instead of hanging it until go test's timeout.
const Timeout = 30 * time.Second

// Binary returns the Chromium executable: $TFCAT_CHROMIUM, else chromium
// (or chromium-browser) on the PATH. chromedp's own search would also find
// a Google Chrome; the tests use the one browser setup-debian.sh installs.
func Binary() (string, error) {
	if p := os.Getenv("TFCAT_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("browser: chromium not found: install Debian's chromium package (scripts/setup-debian.sh) or set TFCAT_CHROMIUM")
}

// Options configure Open.
type Options struct {
	// Width and Height are each page's viewport in CSS pixels (default
	// 1200×900).
	Width, Height int
}

// allocatorOptions start bin as the tests want it. The list is written out
// rather than taken from chromedp.DefaultExecAllocatorOptions so that the
// flags stay those the tests have always run with.
func allocatorOptions(bin string, opt Options) []chromedp.ExecAllocatorOption {
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless, // also hides scrollbars and mutes audio
		// chromedp adds --no-sandbox only for root; a CI container may run
		// the tests as another user without the namespaces the sandbox needs,
		// and the pages are the tests' own.
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.ProxyServer("http://127.0.0.1:9"), // nothing outside loopback is reachable
		chromedp.WindowSize(opt.Width, opt.Height),
	}
	for _, f := range []string{"disable-gpu", "disable-dev-shm-usage", "disable-background-networking",
		"disable-component-update", "disable-sync", "disable-extensions", "disable-default-apps"} {
		flags = append(flags, chromedp.Flag(f, true))
	}
	return append(flags, chromedp.Flag("force-device-scale-factor", "1"))
}

// Page is one tab and what it did so far: its requests, dialogs and console
// messages grow as the page runs; read them through its methods.
type Page struct {
	ctx context.Context // the tab's chromedp context
	opt Options

	mu       sync.Mutex
	requests []string
	dialogs  []string
	console  []string
}

// Open starts Chromium for a test (stopped, its profile removed, when the
// test ends), opens a page and loads url; a failure, a missing Chromium
// included, fails the test.
func Open(t testing.TB, url string, opt Options) *Page {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Width == 0 {
		opt.Width, opt.Height = 1200, 900
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), allocatorOptions(bin, opt)...)
	t.Cleanup(cancel)
	p := newPage(t, alloc, opt)
	if err := p.Do(chromedp.Navigate(url)); err != nil {
		t.Fatalf("browser: loading %s: %v", url, err)
	}
	return p
}

// NewPage opens another blank tab in p's browser, with its own record.
func (p *Page) NewPage(t testing.TB) *Page {
	t.Helper()
	return newPage(t, p.ctx, p.opt)
}

// newPage opens a tab of the Options' viewport size. The recorder is a
// chromedp listener from the tab's first message on, so that everything the
// page does is recorded from its first request on.
func newPage(t testing.TB, parent context.Context, opt Options) *Page {
	t.Helper()
	p := &Page{opt: opt}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(p.record))
	t.Cleanup(cancel)
	p.ctx = ctx
	// The first run on a context starts the browser (or opens the tab) and
	// ties its life to that context: it gets no timeout. The window's size
	// includes what headless Chromium keeps for its (invisible) frame, so
	// the viewport is set itself.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(opt.Width), int64(opt.Height))); err != nil {
		t.Fatalf("browser: opening a page: %v", err)
	}
	return p
}

// record keeps what the page did. chromedp calls it on the goroutine that
// reads the tab's messages, so it must not wait for the browser itself.
func (p *Page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, ev.Request.URL)
	case *page.EventJavascriptDialogOpening:
		p.dialogs = append(p.dialogs, string(ev.Type)+": "+ev.Message)
		// A dialog blocks the page until it is answered.
		go chromedp.Call(p.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
	case *runtime.EventConsoleAPICalled:
		p.console = append(p.console, "console."+string(ev.Type)+": "+argsText(ev.Args))
	case *runtime.EventExceptionThrown:
		e := ev.ExceptionDetails
		desc := ""
		if e.Exception != nil {
			desc = e.Exception.Description
		}
		p.console = append(p.console, "exception: "+e.Text+" "+desc)
	case *log.EventEntryAdded:
		e := ev.Entry
		p.console = append(p.console, "log."+string(e.Level)+" ("+string(e.Source)+"): "+e.Text)
	}
}

// argsText joins a console call's arguments as the console shows them:
// primitive values as themselves, objects by their description.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, len(args))
	for i, a := range args {
		var v any
		if len(a.Value) > 0 && json.Unmarshal(a.Value, &v) == nil {
			parts[i] = fmt.Sprint(v)
		} else {
			parts[i] = a.Description
		}
	}
	return strings.Join(parts, " ")
}

// Run runs a chromedp action in the page within Timeout and returns its
// value.
func Run[T any](p *Page, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Do runs chromedp actions that return nothing in the page, in order, within
// Timeout.
func (p *Page) Do(steps ...chromedp.Action[chromedp.Void]) error {
	_, err := Run(p, chromedp.Steps(steps...))
	return err
}

// WaitFor waits until the JavaScript expression expr is true, or fails
// after timeout. It evaluates expr every 50 ms rather than on chromedp's
// default animation frames, which a tab that is not shown does not get.
func WaitFor(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := poll(ctx, t)
		if err != nil {
			err = fmt.Errorf("browser: waiting %v for %s: %w", timeout, expr, err)
		}
		return v, err
	}
}

// BypassCSP turns the page's content security policy off from the next
// navigation on, for checking that escaping alone keeps injected markup
// inert.
func BypassCSP() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
		return err
	})
}

// Requests returns the URL of every request the page made so far, the
// document's own included.
func (p *Page) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Dialogs returns the alert, confirm and prompt dialogs the page opened
// ("alert: 1"); each was dismissed.
func (p *Page) Dialogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dialogs...)
}

// Console returns what the page logged: console calls, uncaught
// exceptions, and the browser's own log entries (blocked requests, content
// security policy violations).
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// RequestsOutside returns the requests the page made to URLs that start
// with none of allowed (data: URIs are always allowed).
func (p *Page) RequestsOutside(allowed ...string) []string {
	var out []string
	for _, u := range p.Requests() {
		ok := strings.HasPrefix(u, "data:")
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(u, a)
		}
		if !ok {
			out = append(out, u)
		}
	}
	return out
}

// CheckedScreenshot takes a PNG of the whole page, beyond the window's
// height, and checks it: at least minW×minH pixels, and not blank (at least
// 50 colours in a sample). With $TFCAT_SCREENSHOTS set it keeps the picture
// there as name (how the README's pictures are made).
func (p *Page) CheckedScreenshot(t testing.TB, name string, minW, minH int) []byte {
	t.Helper()
	shot, err := Run(p, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bd := img.Bounds()
	if bd.Dx() < minW || bd.Dy() < minH {
		t.Errorf("screenshot %v, want at least %d×%d", bd, minW, minH)
	}
	colours := map[color.RGBA]bool{}
	for y := bd.Min.Y; y < bd.Max.Y; y += 3 {
		for x := bd.Min.X; x < bd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d colours: blank?", len(colours))
	}
	if dir := os.Getenv("TFCAT_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Error(err)
		}
	}
	return shot
}

// Quote returns s as a JavaScript string literal.
func Quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
