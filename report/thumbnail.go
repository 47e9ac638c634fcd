package report

import (
	"bytes"
	"image"
	"image/jpeg"
	"runtime"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/parallel"
)

// thumbnailQuality is the JPEG quality of the embedded thumbnails.
const thumbnailQuality = 85

// thumbnails fills each image's Thumbnail, decoding on all cores. A file
// that no longer decodes keeps a nil thumbnail.
func thumbnails(ms []Misclassified, size int) {
	parallel.For(len(ms), runtime.GOMAXPROCS(0), func(_, i int) bool {
		ms[i].Thumbnail, _ = thumbnail(ms[i].Path, size)
		return true
	})
}

// thumbnail decodes an image file as training does (EXIF orientation
// included) and returns it as a JPEG whose longest side is at most size:
// shrunk by averaging, never enlarged (the page scales small images up).
func thumbnail(path string, size int) ([]byte, error) {
	src, err := dataset.DecodeFile(path, 3, 0)
	if err != nil {
		return nil, err
	}
	w, h := src.Width, src.Height
	if w > size || h > size {
		if w >= h {
			w, h = size, max(1, h*size/w)
		} else {
			w, h = max(1, w*size/h), size
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		y0, y1 := y*src.Height/h, max((y+1)*src.Height/h, y*src.Height/h+1)
		for x := range w {
			x0, x1 := x*src.Width/w, max((x+1)*src.Width/w, x*src.Width/w+1)
			var b, g, r, n int
			for sy := y0; sy < y1; sy++ {
				row := src.Pix[(sy*src.Width)*3:]
				for sx := x0; sx < x1; sx++ {
					b += int(row[sx*3])
					g += int(row[sx*3+1])
					r += int(row[sx*3+2])
					n++
				}
			}
			o := dst.PixOffset(x, y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = uint8(r/n), uint8(g/n), uint8(b/n), 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: thumbnailQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
