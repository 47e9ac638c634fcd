package serving

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
)

// The page GET / answers, its script and its style sheet.
var (
	//go:embed page/index.html.tmpl
	pageText string
	//go:embed page/page.js
	pageJS []byte
	//go:embed page/page.css
	pageCSS []byte

	pageTmpl = template.Must(template.New("page").Parse(pageText))
)

// PageContentSecurityPolicy is the policy of the page and its files:
// scripts, styles and requests only from the server itself, images also from
// the page's own blob: previews, no frames, no forms sent anywhere.
const PageContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageData is what the page shows.
type pageData struct {
	Name, Source, Endpoint  string
	Version                 int64
	Height, Width, Channels int
	Classes                 []string
	Named                   bool
	MaxPixels, MaxBody      string
}

// renderPage renders the page once, when the server is made: it shows only
// the configuration.
func (s *Server) renderPage() ([]byte, error) {
	d := pageData{Name: s.cfg.Name, Source: s.cfg.Source, Version: s.cfg.Version,
		Endpoint: "/v1/models/" + s.cfg.Name + ":classify-image",
		Height:   s.h, Width: s.w, Channels: s.c, Classes: s.cfg.Classes, Named: s.named,
		MaxPixels: fmt.Sprintf("%.3g megapixels", float64(s.cfg.MaxImagePixels)/1e6), MaxBody: byteSize(s.cfg.MaxBodyBytes)}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("serving: the page: %w", err)
	}
	return b.Bytes(), nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// servePage answers GET / and the page's files; it reports whether path
// was one of them.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) bool {
	var body []byte
	var ctype string
	switch r.URL.Path {
	case "/":
		body, ctype = s.page, "text/html; charset=utf-8"
	case "/page.js":
		body, ctype = pageJS, "text/javascript; charset=utf-8"
	case "/page.css":
		body, ctype = pageCSS, "text/css; charset=utf-8"
	default:
		return false
	}
	h := w.Header()
	h.Set("Content-Security-Policy", PageContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use GET", r.Method, r.URL.Path))
		return true
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
	return true
}
