// Package browser drives headless Chromium for tfcat's tests: it opens pages,
// runs JavaScript in them, sets file inputs, takes screenshots and records
// every request a page makes, every dialog it opens and every message its
// console logs. It speaks the Chrome DevTools Protocol over a pipe
// (--remote-debugging-pipe: JSON messages ended by a NUL byte on file
// descriptors 3 and 4), so it needs no port, no WebSocket and no module
// beyond the standard library.
//
// Chromium is Debian's chromium package (scripts/setup-debian.sh installs
// it), found as $TFCAT_CHROMIUM or chromium on the PATH. The browser runs
// with a dead proxy for everything but loopback, so a page that tries to
// reach the network fails there as well as in the request log.
package browser

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Timeout bounds each protocol command and each wait.
const Timeout = 30 * time.Second

// Binary returns the Chromium executable: $TFCAT_CHROMIUM, else chromium
// (or chromium-browser) on the PATH.
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

// Options configure Launch.
type Options struct {
	// Width and Height are each page's viewport in CSS pixels (default
	// 1200×900).
	Width, Height int
}

// Browser is a running headless Chromium.
type Browser struct {
	cmd     *exec.Cmd
	w       *os.File // our end of Chromium's fd 3
	r       *os.File // our end of Chromium's fd 4
	profile string
	stderr  bytes.Buffer
	opt     Options

	mu       sync.Mutex
	nextID   int
	pending  map[int]chan message
	sessions map[string]*Page
	readErr  error
	done     chan struct{}
}

// message is one protocol message: a reply (ID set) or an event (Method).
type message struct {
	ID        int             `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Launch starts headless Chromium with a fresh profile.
func Launch(opt Options) (*Browser, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opt.Width == 0 {
		opt.Width, opt.Height = 1200, 900
	}
	profile, err := os.MkdirTemp("", "tfcat-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: profile folder: %w", err)
	}
	toChrome, ours, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("browser: pipe: %w", err)
	}
	theirs, fromChrome, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("browser: pipe: %w", err)
	}
	b := &Browser{w: ours, r: theirs, profile: profile, opt: opt, pending: map[int]chan message{},
		sessions: map[string]*Page{}, done: make(chan struct{})}
	b.cmd = exec.Command(bin,
		"--headless", "--remote-debugging-pipe", "--user-data-dir="+profile,
		"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--proxy-server=http://127.0.0.1:9", // nothing outside loopback is reachable
		fmt.Sprintf("--window-size=%d,%d", opt.Width, opt.Height), "about:blank")
	b.cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("browser: starting %s: %w", bin, err)
	}
	toChrome.Close()
	fromChrome.Close()
	go b.read()
	return b, nil
}

// read dispatches replies to their callers and events to their pages.
func (b *Browser) read() {
	defer close(b.done)
	r := bufio.NewReaderSize(b.r, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = fmt.Errorf("browser: chromium closed the pipe: %w (stderr: %s)", err, lastLines(b.stderr.String(), 5))
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m message
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else if p := b.sessions[m.SessionID]; p != nil {
			p.event(m)
		}
		b.mu.Unlock()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// call sends a command (to a page's session when session is set) and
// decodes its result into out (when not nil).
func (b *Browser) call(session, method string, params, out any) error {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.nextID++
	id := b.nextID
	ch := make(chan message, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	msg, err := json.Marshal(struct {
		ID        int    `json:"id"`
		SessionID string `json:"sessionId,omitempty"`
		Method    string `json:"method"`
		Params    any    `json:"params"`
	}{id, session, method, params})
	if err != nil {
		return fmt.Errorf("browser: %s: %w", method, err)
	}
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("browser: %s: writing to chromium: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.readErr
		}
		if m.Error != nil {
			return fmt.Errorf("browser: %s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				return fmt.Errorf("browser: %s: decoding the result: %w", method, err)
			}
		}
		return nil
	case <-time.After(Timeout):
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("browser: %s: no answer within %v", method, Timeout)
	}
}

// Close ends Chromium and removes its profile.
func (b *Browser) Close() error {
	b.call("", "Browser.close", nil, nil)
	b.w.Close()
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-exited
	}
	b.r.Close()
	return os.RemoveAll(b.profile)
}

// Page is one tab. Its records (requests, dialogs, console) grow as the
// page runs; read them through its methods.
type Page struct {
	b       *Browser
	session string

	// guarded by b.mu
	requests []string
	dialogs  []string
	console  []string
	loaded   chan struct{}
}

// NewPage opens a blank tab of the Options' viewport size with the Page,
// Network, Runtime and Log domains enabled, so that everything the page does
// is recorded from its first request on.
func (b *Browser) NewPage() (*Page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return nil, err
	}
	p := &Page{b: b, session: att.SessionID}
	b.mu.Lock()
	b.sessions[p.session] = p
	b.mu.Unlock()
	for _, d := range []string{"Page.enable", "Network.enable", "Runtime.enable", "Log.enable"} {
		if err := p.call(d, nil, nil); err != nil {
			return nil, err
		}
	}
	// The window's size includes what headless Chromium keeps for its
	// (invisible) frame: set the viewport itself.
	err := p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": b.opt.Width, "height": b.opt.Height,
		"deviceScaleFactor": 1, "mobile": false}, nil)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Page) call(method string, params, out any) error {
	return p.b.call(p.session, method, params, out)
}

// event records what the page did; called with b.mu held.
func (p *Page) event(m message) {
	switch m.Method {
	case "Network.requestWillBeSent":
		var e struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(m.Params, &e) == nil {
			p.requests = append(p.requests, e.Request.URL)
		}
	case "Page.javascriptDialogOpening":
		var e struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		json.Unmarshal(m.Params, &e)
		p.dialogs = append(p.dialogs, e.Type+": "+e.Message)
		// A dialog blocks the page until it is answered.
		go p.call("Page.handleJavaScriptDialog", map[string]any{"accept": false}, nil)
	case "Page.loadEventFired":
		if p.loaded != nil {
			close(p.loaded)
			p.loaded = nil
		}
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		json.Unmarshal(m.Params, &e)
		var parts []string
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, fmt.Sprint(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		p.console = append(p.console, "console."+e.Type+": "+strings.Join(parts, " "))
	case "Runtime.exceptionThrown":
		var e struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(m.Params, &e)
		p.console = append(p.console, "exception: "+e.Details.Text+" "+e.Details.Exception.Description)
	case "Log.entryAdded":
		var e struct {
			Entry struct {
				Source, Level, Text, URL string
			} `json:"entry"`
		}
		json.Unmarshal(m.Params, &e)
		p.console = append(p.console, "log."+e.Entry.Level+" ("+e.Entry.Source+"): "+e.Entry.Text)
	}
}

// Navigate loads url and waits for its load event.
func (p *Page) Navigate(url string) error {
	loaded := make(chan struct{})
	p.b.mu.Lock()
	p.loaded = loaded
	p.b.mu.Unlock()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call("Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("browser: loading %s: %s", url, res.ErrorText)
	}
	select {
	case <-loaded:
		return nil
	case <-time.After(Timeout):
		return fmt.Errorf("browser: %s did not finish loading within %v", url, Timeout)
	}
}

// SetBypassCSP turns the page's content security policy off (for checking
// that escaping alone keeps injected markup inert) or back on; it applies
// from the next navigation.
func (p *Page) SetBypassCSP(bypass bool) error {
	return p.call("Page.setBypassCSP", map[string]any{"enabled": bypass}, nil)
}

// Eval runs a JavaScript expression in the page, awaiting it when it is a
// promise, and decodes its JSON-able value into out (when not nil). A thrown
// exception is an error.
func (p *Page) Eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("browser: %s: %s %s", expr, res.Exception.Text, res.Exception.Exception.Description)
	}
	if out != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			return fmt.Errorf("browser: %s: decoding %s: %w", expr, res.Result.Value, err)
		}
	}
	return nil
}

// WaitFor evaluates expr until it is true, or fails after timeout.
func (p *Page) WaitFor(expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := p.Eval("!!("+expr+")", &ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("browser: %s still false after %v", expr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetFiles sets the files of the <input type=file> that selector finds, as a
// person picking them would (input and change events fire).
func (p *Page) SetFiles(selector string, files ...string) error {
	var res struct {
		Result struct {
			ObjectID string `json:"objectId"`
		} `json:"result"`
	}
	expr := "document.querySelector(" + jsString(selector) + ")"
	if err := p.call("Runtime.evaluate", map[string]any{"expression": expr}, &res); err != nil {
		return err
	}
	if res.Result.ObjectID == "" {
		return fmt.Errorf("browser: no element matches %s", selector)
	}
	abs := make([]string, len(files))
	for i, f := range files {
		var err error
		if abs[i], err = filepath.Abs(f); err != nil { // Chromium reads relative paths from nowhere
			return fmt.Errorf("browser: %w", err)
		}
	}
	return p.call("DOM.setFileInputFiles", map[string]any{"files": abs, "objectId": res.Result.ObjectID}, nil)
}

// Screenshot returns a PNG of the whole page, beyond the window's height.
func (p *Page) Screenshot() ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := p.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return nil, fmt.Errorf("browser: screenshot: %w", err)
	}
	return png, nil
}

// Requests returns the URL of every request the page made so far, the
// document's own included.
func (p *Page) Requests() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Dialogs returns the alert, confirm and prompt dialogs the page opened
// ("alert: 1"); each was dismissed.
func (p *Page) Dialogs() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.dialogs...)
}

// Console returns what the page logged: console calls, uncaught
// exceptions, and the browser's own log entries (blocked requests, content
// security policy violations).
func (p *Page) Console() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.console...)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
