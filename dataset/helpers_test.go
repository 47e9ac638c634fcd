package dataset

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/internal/hostile"
)

// Small image files built in Go, for tests that need no reference values.

func testRGBA(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return m
}

func encPNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encBMP writes an uncompressed bottom-up 24-bit BMP.
func encBMP(w, h int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	pitch := (w*3 + 3) &^ 3
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("BM")
	binary.Write(&b, le, uint32(54+pitch*h))
	binary.Write(&b, le, uint32(0))
	binary.Write(&b, le, uint32(54))
	binary.Write(&b, le, []int32{40, int32(w), int32(h)})
	binary.Write(&b, le, []uint16{1, 24})
	binary.Write(&b, le, []uint32{0, uint32(pitch * h), 2835, 2835, 0, 0})
	row := make([]byte, pitch)
	for y := 0; y < h; y++ {
		for i := 0; i < w*3; i++ {
			row[i] = uint8(r.IntN(256))
		}
		b.Write(row)
	}
	return b.Bytes()
}

// hugePNG is a tiny file whose header claims w×h pixels.
func hugePNG(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, hostile.PNGChunk("IHDR", ihdr)...)
	out = append(out, hostile.PNGChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(out, hostile.PNGChunk("IEND", nil)...)
}

// hugeJPEG patches the dimensions in a small JPEG's SOF0 marker.
func hugeJPEG(t testing.TB, w, h uint16) []byte {
	data := encJPEG(t, testRGBA(16, 16, 1))
	for i := 2; i+9 < len(data); i++ {
		if data[i] == 0xFF && data[i+1] == 0xC0 {
			binary.BigEndian.PutUint16(data[i+5:], h)
			binary.BigEndian.PutUint16(data[i+7:], w)
			return data
		}
	}
	t.Fatal("no SOF0")
	return nil
}

// writeFiles creates files (content nil: a directory) under dir.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if data == nil {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goodTree writes n valid images per class (alternating PNG, JPEG, BMP).
func goodTree(t testing.TB, dir string, classes []string, n int) {
	t.Helper()
	files := map[string][]byte{}
	for ci, c := range classes {
		for i := range n {
			seed := uint64(ci*1000 + i)
			w, h := 20+i%7, 15+i%5
			switch i % 3 {
			case 0:
				files[c+"/"+name("img", i, ".png")] = encPNG(t, testRGBA(w, h, seed))
			case 1:
				files[c+"/"+name("img", i, ".JPG")] = encJPEG(t, testRGBA(w, h, seed))
			case 2:
				files[c+"/"+name("img", i, ".bmp")] = encBMP(w, h, seed)
			}
		}
	}
	writeFiles(t, dir, files)
}

func name(prefix string, i int, ext string) string {
	return prefix + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ext
}

var _ = color.Gray{}
