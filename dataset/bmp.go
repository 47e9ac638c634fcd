package dataset

import (
	"errors"
	"fmt"
)

// BMP decoding that follows OpenCV 4.10's BmpDecoder (imgcodecs grfmt_bmp.cpp)
// case by case: 1/4/8-bit palette (uncompressed, RLE4, RLE8), 15/16-bit
// (555, 565), 24-bit and 32-bit (alpha dropped; BITFIELDS masks ignored as
// OpenCV ignores them), bottom-up and top-down, BITMAPCOREHEADER palettes.
// Grey output uses OpenCV's integer BGR-to-grey formula.

var errBMPShort = errors.New("unexpected end of data")

// bmpReader reads little-endian values; past the end it records an error,
// as OpenCV's stream throws.
type bmpReader struct {
	data []byte
	pos  int
	err  error
}

func (r *bmpReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || r.pos < 0 || r.pos > len(r.data) || n > len(r.data)-r.pos {
		r.err = errBMPShort
		return nil
	}
	b := r.data[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *bmpReader) skip(n int) {
	if r.err == nil {
		r.pos += n // a position past the end fails at the next read
	}
}

func (r *bmpReader) byte() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *bmpReader) word() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(b[0]) | int(b[1])<<8
}

func (r *bmpReader) dword() int32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

// OpenCV's integer BGR to grey (imgcodecs utils.cpp): SCALE 14.
const (
	cvR = 4899 // (int)(0.299*(1 << 14) + 0.5)
	cvG = 9617 // (int)(0.587*(1 << 14) + 0.5)
	cvB = 16384 - cvR - cvG
)

func bgrToGray(b, g, r uint8) uint8 {
	return uint8((int(b)*cvB + int(g)*cvG + int(r)*cvR + 8192) >> 14)
}

const (
	bmpRGB       = 0
	bmpRLE8      = 1
	bmpRLE4      = 2
	bmpBitfields = 3
)

func (s *scratch) decodeBMP(data []byte, channels, maxPixels int) (*Image, error) {
	bad := func(msg string) error { return fmt.Errorf("%w: bmp: %s", ErrCorrupt, msg) }
	r := &bmpReader{data: data}
	r.skip(10)
	offset := int(r.dword())
	size := int(r.dword())
	if r.err != nil {
		return nil, bad("truncated header")
	}
	if size <= 0 {
		return nil, bad("invalid header size")
	}
	var (
		width, height, bpp, rle int
		palette                 [256][4]uint8 // b, g, r, a
		ok                      bool
	)
	switch {
	case size >= 36:
		width = int(r.dword())
		height = int(r.dword())
		bpp = int(r.dword() >> 16)
		rle = int(r.dword())
		r.skip(12)
		clrused := int(r.dword())
		r.skip(size - 36)
		if r.err != nil {
			return nil, bad("truncated header")
		}
		if width > 0 && height != 0 &&
			(((bpp == 1 || bpp == 4 || bpp == 8 || bpp == 24 || bpp == 32) && rle == bmpRGB) ||
				((bpp == 16 || bpp == 32) && (rle == bmpRGB || rle == bmpBitfields)) ||
				(bpp == 4 && rle == bmpRLE4) || (bpp == 8 && rle == bmpRLE8)) {
			ok = true
			switch {
			case bpp <= 8:
				if clrused < 0 || clrused > 256 {
					return nil, bad("invalid palette size")
				}
				n := clrused
				if n == 0 {
					n = 1 << bpp
				}
				p := r.bytes(n * 4)
				for i := 0; i < n && p != nil; i++ {
					copy(palette[i][:], p[4*i:4*i+4])
				}
			case bpp == 16 && rle == bmpBitfields:
				red, green, blue := r.dword(), r.dword(), r.dword()
				switch {
				case blue == 0x1f && green == 0x3e0 && red == 0x7c00:
					bpp = 15
				case blue == 0x1f && green == 0x7e0 && red == 0xf800:
				default:
					ok = false
				}
			case bpp == 16 && rle == bmpRGB:
				bpp = 15
			}
		}
	case size == 12:
		width = r.word()
		height = r.word()
		bpp = int(r.dword() >> 16)
		rle = bmpRGB
		if width > 0 && height != 0 && (bpp == 1 || bpp == 4 || bpp == 8 || bpp == 24 || bpp == 32) {
			if bpp <= 8 {
				n := 1 << bpp
				p := r.bytes(n * 3)
				for i := 0; i < n && p != nil; i++ {
					palette[i] = [4]uint8{p[3*i], p[3*i+1], p[3*i+2], 0}
				}
			}
			ok = true
		}
	}
	if r.err != nil {
		return nil, bad("truncated header")
	}
	if !ok {
		return nil, fmt.Errorf("%w: bmp: unsupported variant (header %d bytes, %d bits, compression %d)", ErrFormat, size, bpp, rle)
	}
	bottomUp := height > 0
	if height < 0 {
		if height == -1<<31 {
			return nil, bad("invalid height")
		}
		height = -height
	}
	if err := checkSize(width, height, maxPixels); err != nil {
		return nil, fmt.Errorf("bmp: %w", err)
	}
	if offset < 0 {
		return nil, bad("invalid pixel data offset")
	}
	var grayPal [256]uint8
	for i := range grayPal {
		p := palette[i]
		grayPal[i] = bgrToGray(p[0], p[1], p[2])
	}

	nch := channels
	width3 := width * nch
	s.a = grow(s.a, width3*height)
	clear(s.a)
	out := &Image{Width: width, Height: height, Channels: channels, Pix: s.a}
	// rowAt maps the y-th row of the file to its output row.
	rowAt := func(y int) []uint8 {
		if y < 0 || y >= height {
			return nil
		}
		if bottomUp {
			y = height - 1 - y
		}
		return out.Pix[y*width3 : (y+1)*width3]
	}
	bits := bpp
	if bpp == 15 {
		bits = 16
	}
	pitch := ((width*bits+7)/8 + 3) &^ 3
	r.pos = offset
	if offset > len(data) {
		return nil, bad("pixel data offset past the end of the file")
	}

	setPal := func(row []uint8, x int, idx int) { // x in pixels
		p := palette[idx]
		if nch == 3 {
			row[3*x], row[3*x+1], row[3*x+2] = p[0], p[1], p[2]
		} else {
			row[x] = grayPal[idx]
		}
	}

	switch bpp {
	case 1, 4, 8:
		if rle != bmpRGB {
			if err := s.bmpRLE(r, out, rowAt, width, height, bpp, &palette, &grayPal); err != nil {
				return nil, err
			}
			break
		}
		for y := 0; y < height; y++ {
			src := r.bytes(pitch)
			if src == nil {
				return nil, bad("truncated pixel data")
			}
			row := rowAt(y)
			for x := 0; x < width; x++ {
				var idx int
				switch bpp {
				case 1:
					idx = int(src[x>>3]>>(7-uint(x&7))) & 1
				case 4:
					idx = int(src[x>>1]>>(4-4*uint(x&1))) & 15
				default:
					idx = int(src[x])
				}
				setPal(row, x, idx)
			}
		}
	case 15, 16, 24, 32:
		for y := 0; y < height; y++ {
			src := r.bytes(pitch)
			if src == nil {
				return nil, bad("truncated pixel data")
			}
			row := rowAt(y)
			for x := 0; x < width; x++ {
				var b, g, rr uint8
				switch bpp {
				case 15:
					v := int(src[2*x]) | int(src[2*x+1])<<8
					b, g, rr = uint8(v<<3&0xf8), uint8(v>>2&0xf8), uint8(v>>7&0xf8)
				case 16:
					v := int(src[2*x]) | int(src[2*x+1])<<8
					b, g, rr = uint8(v<<3&0xf8), uint8(v>>3&0xfc), uint8(v>>8&0xf8)
				case 24:
					b, g, rr = src[3*x], src[3*x+1], src[3*x+2]
				case 32:
					b, g, rr = src[4*x], src[4*x+1], src[4*x+2]
				}
				if nch == 3 {
					row[3*x], row[3*x+1], row[3*x+2] = b, g, rr
				} else {
					row[x] = bgrToGray(b, g, rr)
				}
			}
		}
	}
	return out, nil
}

// bmpRLE decodes RLE8 and RLE4 data with OpenCV's state machine, including
// its treatment of deltas, end-of-line and end-of-bitmap codes (skipped
// pixels take palette entry 0) and its rejection of runs past a line's end.
func (s *scratch) bmpRLE(r *bmpReader, out *Image, rowAt func(int) []uint8, width, height, bpp int, pal *[256][4]uint8, gray *[256]uint8) error {
	nch := out.Channels
	width3 := width * nch
	y, x := 0, 0 // current row (file order) and byte offset in it; x == width3 is line_end
	put := func(idx int) {
		if row := rowAt(y); row != nil && x+nch <= width3 {
			if nch == 3 {
				p := pal[idx]
				row[x], row[x+1], row[x+2] = p[0], p[1], p[2]
			} else {
				row[x] = gray[idx]
			}
		}
	}
	// fillUni is OpenCV's FillUniColor/FillUniGray: count bytes of colour
	// idx, wrapping to following lines.
	fillUni := func(count, idx int) {
		for {
			end := x + count
			if end > width3 {
				end = width3
			}
			count -= end - x
			for ; x < end; x += nch {
				put(idx)
			}
			if x >= width3 {
				x = 0
				y++
				if y >= height {
					break
				}
			}
			if count <= 0 {
				break
			}
		}
	}
	bad := func(msg string) error { return fmt.Errorf("%w: bmp: %s", ErrCorrupt, msg) }
	lineEndFlag := 0
	for {
		code := r.word()
		if r.err != nil {
			return bad("truncated RLE data")
		}
		n := code & 255
		code >>= 8
		switch {
		case n != 0: // encoded run
			if bpp == 8 {
				prevY := y
				n *= nch
				if x+n > width3 {
					return bad("RLE run past the end of a line")
				}
				fillUni(n, code)
				lineEndFlag = y - prevY
				if y >= height {
					return nil
				}
			} else {
				c := [2]int{code >> 4, code & 15}
				end := x + n*nch
				if end > width3 {
					return bad("RLE run past the end of a line")
				}
				for t := 0; ; t ^= 1 {
					put(c[t])
					x += nch
					if x >= end {
						break
					}
				}
			}
		case code > 2: // absolute run
			prevY := y
			if x+code*nch > width3 {
				return bad("RLE run past the end of a line")
			}
			var sz int
			if bpp == 8 {
				sz = (code + 1) &^ 1
			} else {
				sz = ((code+1)>>1 + 1) &^ 1
			}
			src := r.bytes(sz)
			if src == nil {
				return bad("truncated RLE data")
			}
			for i := 0; i < code; i++ {
				idx := int(src[i>>1]>>(4-4*uint(i&1))) & 15
				if bpp == 8 {
					idx = int(src[i])
				}
				put(idx)
				x += nch
			}
			if bpp == 8 {
				lineEndFlag = y - prevY
			}
		default: // escape: 0 end of line, 1 end of bitmap, 2 delta
			xShift := width3 - x
			yShift := height - y
			if bpp == 8 {
				if code != 0 || lineEndFlag == 0 || xShift < width3 {
					if code == 2 {
						xShift = r.byte() * nch
						yShift = r.byte()
						if r.err != nil {
							return bad("truncated RLE data")
						}
					}
					if code != 0 {
						xShift += yShift * width3
					}
					if y >= height {
						return nil
					}
					fillUni(xShift, 0)
					if y >= height {
						return nil
					}
				}
				lineEndFlag = 0
				if y >= height {
					return nil
				}
			} else {
				if code == 2 {
					xShift = r.byte() * nch
					r.byte() // OpenCV reads the vertical offset but does not use it
					if r.err != nil {
						return bad("truncated RLE data")
					}
				}
				fillUni(xShift, 0)
				if y >= height {
					return nil
				}
			}
		}
	}
}
