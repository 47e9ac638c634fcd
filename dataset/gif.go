package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
)

// decodeGIF decodes the first frame of a GIF with image/gif. opencv-python
// 4.10 cannot read GIF (cv2.imread returns None), so there is no reference:
// the frame is placed on the logical screen, pixels outside the frame and
// transparent pixels are black, and grey uses OpenCV's BGR-to-grey formula.
func (s *scratch) decodeGIF(data []byte, channels, maxPixels int) (*Image, error) {
	cfg, err := gif.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: gif: %v", ErrCorrupt, err)
	}
	if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, fmt.Errorf("gif: %w", err)
	}
	m, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: gif: %v", ErrCorrupt, err)
	}
	w, h := cfg.Width, cfg.Height
	s.a = grow(s.a, w*h*channels)
	clear(s.a)
	out := &Image{Width: w, Height: h, Channels: channels, Pix: s.a}
	var pal [256][3]uint8
	var palGray [256]uint8
	if p, ok := m.ColorModel().(color.Palette); ok {
		for i, c := range p {
			if i >= 256 {
				break
			}
			r, g, b, _ := c.RGBA() // palette entries are opaque or fully transparent (zero)
			pal[i] = [3]uint8{uint8(b >> 8), uint8(g >> 8), uint8(r >> 8)}
			palGray[i] = bgrToGray(pal[i][0], pal[i][1], pal[i][2])
		}
	}
	pm, ok := m.(interface {
		ColorIndexAt(x, y int) uint8
	})
	if !ok {
		return nil, fmt.Errorf("%w: gif: unexpected image type %T", ErrCorrupt, m)
	}
	b := m.Bounds().Intersect(image.Rect(0, 0, w, h))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			idx := pm.ColorIndexAt(x, y)
			if channels == 3 {
				o := out.Pix[(y*w+x)*3:]
				o[0], o[1], o[2] = pal[idx][0], pal[idx][1], pal[idx][2]
			} else {
				out.Pix[y*w+x] = palGray[idx]
			}
		}
	}
	return out, nil
}
