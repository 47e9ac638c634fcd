package dataset

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoders (JPEG through libjpeg,
// PNG, BMP, GIF, EXIF) and the resize: they must return an image or an
// error, never panic, crash or hang. Run in CI as
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
			img, err := s.decode(data, ch, 1<<20)
			if err != nil {
				continue
			}
			if img.Channels != ch || img.Width <= 0 || img.Height <= 0 || len(img.Pix) != img.Width*img.Height*ch {
				t.Fatalf("inconsistent image %dx%dx%d with %d bytes", img.Width, img.Height, img.Channels, len(img.Pix))
			}
			small := NewImage(7, 5, ch)
			s.resizeInto(img, small.Pix, 7, 5)
		}
	})
}
