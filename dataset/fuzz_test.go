package dataset

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
)

// fuzzMaxPixels is FuzzDecode's pixel limit: the 16 MP the server allows by
// default, so that the time and memory limits are checked at that size.
const fuzzMaxPixels = 1 << 24

// FuzzDecode feeds arbitrary bytes to the decoders (JPEG through libjpeg,
// PNG, BMP, GIF, EXIF) and the resize: they must return an image or an
// error, never panic, crash or hang, and each decode must stay within
// fuzzlimit's time and memory limits. Run in CI as
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=20s ./dataset/
func FuzzDecode(f *testing.F) {
	gray := image.NewGray(image.Rect(0, 0, 5, 3))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 40)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.RGBA{255, 0, 0, 255}, color.NRGBA{0, 9, 200, 100}})
	pal.Pix[3] = 1
	g16 := image.NewRGBA64(image.Rect(0, 0, 3, 2))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(i * 17)
	}
	for _, b := range [][]byte{
		encPNG(f, testRGBA(6, 4, 1)),
		encPNG(f, gray),
		encPNG(f, pal),
		encPNG(f, g16),
		encJPEG(f, testRGBA(17, 9, 2)),
		encJPEG(f, gray),
		encBMP(5, 3, 3),
		encGIF(f, testRGBA(4, 4, 4)),
		hugePNG(3, 3),
	} {
		f.Add(b)
	}
	for _, dir := range []string{"testdata/seeds", "testdata/pets/cats"} {
		files, _ := os.ReadDir(dir)
		for _, e := range files {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s scratch
		for _, ch := range []int{3, 1} {
			var img *Image
			var err error
			fuzzlimit.Check(t, fmt.Sprintf("decoding %d bytes to %d channels", len(data), ch), func() {
				img, err = s.decode(data, ch, fuzzMaxPixels)
				if err == nil {
					small := NewImage(7, 5, ch)
					s.resizeInto(img, small.Pix, 7, 5)
				}
			})
			if err != nil {
				continue
			}
			if img.Channels != ch || img.Width <= 0 || img.Height <= 0 || len(img.Pix) != img.Width*img.Height*ch {
				t.Fatalf("inconsistent image %dx%dx%d with %d bytes", img.Width, img.Height, img.Channels, len(img.Pix))
			}
		}
	})
}
