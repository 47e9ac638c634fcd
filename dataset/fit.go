package dataset

import (
	"fmt"
	"math"

	"github.com/tfcat/tfcat/pixels"
)

// fitSize is the size an image of w×h is resized to before padding or
// cropping to size×size.
func fitSize(w, h, size int, mode pixels.ResizeMode) (int, int) {
	var scale float64
	switch mode {
	case pixels.Pad:
		scale = float64(size) / float64(max(w, h))
	case pixels.Crop:
		scale = float64(size) / float64(min(w, h))
	default:
		return size, size
	}
	fw := max(int(math.Round(float64(w)*scale)), 1)
	fh := max(int(math.Round(float64(h)*scale)), 1)
	if mode == pixels.Pad {
		fw, fh = min(fw, size), min(fh, size)
	} else {
		fw, fh = max(fw, size), max(fh, size)
	}
	return fw, fh
}

// fitInto writes img brought to size×size by mode into dst
// (size*size*channels bytes).
func (sc *scratch) fitInto(img *Image, dst []uint8, size int, mode pixels.ResizeMode) {
	fw, fh := fitSize(img.Width, img.Height, size, mode)
	if fw == size && fh == size {
		sc.resizeInto(img, dst, size, size)
		return
	}
	cn := img.Channels
	sc.fit = grow(sc.fit, fw*fh*cn)
	sc.resizeInto(img, sc.fit, fw, fh)
	if mode == pixels.Pad {
		clear(dst)
		x0, y0 := (size-fw)/2, (size-fh)/2
		for y := range fh {
			copy(dst[((y0+y)*size+x0)*cn:], sc.fit[y*fw*cn:(y+1)*fw*cn])
		}
		return
	}
	x0, y0 := (fw-size)/2, (fh-size)/2
	for y := range size {
		src := sc.fit[((y0+y)*fw+x0)*cn:]
		copy(dst[y*size*cn:(y+1)*size*cn], src[:size*cn])
	}
}

// Fit returns img brought to size×size by mode: Stretch is Resize(img,
// size, size); Pad and Crop keep the aspect ratio.
func Fit(img *Image, size int, mode pixels.ResizeMode) (*Image, error) {
	if err := img.check(); err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, fmt.Errorf("fit: invalid size %d", size)
	}
	mode, err := pixels.ParseResizeMode(string(mode))
	if err != nil {
		return nil, err
	}
	out := NewImage(size, size, img.Channels)
	var s scratch
	s.fitInto(img, out.Pix, size, mode)
	return out, nil
}
