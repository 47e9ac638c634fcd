package browser

import (
	"bytes"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Open launches a browser for a test (closed when the test ends), opens a
// page and loads url; a failure fails the test.
func Open(t testing.TB, url string, opt Options) *Page {
	t.Helper()
	b, err := Launch(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p, err := b.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate(url); err != nil {
		t.Fatal(err)
	}
	return p
}

// Browser is the browser the page is in.
func (p *Page) Browser() *Browser { return p.b }

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

// CheckedScreenshot takes a screenshot of the page and checks it: a PNG at least
// minW×minH pixels, and not blank (at least 50 colours in a sample). With
// $TFCAT_SCREENSHOTS set it keeps the picture there as name (how the
// README's pictures are made).
func (p *Page) CheckedScreenshot(t testing.TB, name string, minW, minH int) []byte {
	t.Helper()
	shot, err := p.Screenshot()
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
func Quote(s string) string { return jsString(s) }
