package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"sync"

	"github.com/tfcat/tfcat/dataset/internal/libm"
)

// PNG decoding. Pixels come from Go's image/png (lossless, so identical to
// libpng's); the transformations OpenCV 4.10 asks libpng for are reproduced
// here: png_set_strip_16 (high byte), png_set_strip_alpha (no compositing),
// palette and low-bit grey expansion, png_set_bgr, png_set_gray_to_rgb, and
// for IMREAD_GRAYSCALE of colour images png_set_rgb_to_gray(1, 0.299, 0.587)
// including libpng's gamma handling when the file has gAMA or sRGB.

// pngInfo is what decodePNG needs from the chunks that image/png ignores.
type pngInfo struct {
	width, height int
	depth         int
	colorType     int // 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
	gamma         int // libpng's colorspace.gamma (file gamma ×100000), 0 if none
	sigBit        int // sBIT value libpng uses for 16-bit gamma tables, 0 if none
	interlaced    bool
	idat          int64 // bytes of IDAT data (of a truncated last chunk, those present)
	exif          []byte
	// drop lists ancillary chunks with a bad CRC ([start, end) offsets):
	// libpng warns and discards them, image/png would fail on them.
	drop [][2]int
}

// scanPNG walks the chunk list without checking CRCs (image/png does that).
func scanPNG(data []byte) (pngInfo, error) {
	var info pngInfo
	pos := 8
	var (
		haveGamma, fromSRGB, fromGAMA, invalid, haveIntent bool
		seenPLTE, seenIDAT                                 bool
	)
	first := true
	for pos+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		start := pos + 8
		if n < 0 || n > len(data)-start {
			if typ == "IDAT" {
				info.idat += int64(len(data) - start)
			}
			break // truncated: image/png reports it
		}
		body := data[start : start+n]
		chunkStart := pos
		pos = start + n + 4
		if typ[0]&0x20 != 0 && pos <= len(data) &&
			crc32.ChecksumIEEE(data[chunkStart+4:start+n]) != binary.BigEndian.Uint32(data[start+n:]) {
			info.drop = append(info.drop, [2]int{chunkStart, pos})
			continue
		}
		if first {
			if typ != "IHDR" || n != 13 {
				return info, fmt.Errorf("%w: png: missing IHDR", ErrCorrupt)
			}
			first = false
			w := binary.BigEndian.Uint32(body[0:])
			h := binary.BigEndian.Uint32(body[4:])
			if w > math.MaxInt32 || h > math.MaxInt32 {
				return info, fmt.Errorf("%w: png: invalid dimensions %dx%d", ErrCorrupt, w, h)
			}
			info.width, info.height = int(w), int(h)
			info.depth, info.colorType = int(body[8]), int(body[9])
			info.interlaced = body[12] == 1
			continue
		}
		before := !seenPLTE && !seenIDAT // where libpng accepts gAMA, sRGB, sBIT
		switch typ {
		case "PLTE":
			seenPLTE = true
		case "IDAT":
			seenIDAT = true
			info.idat += int64(n)
		case "IEND":
			pos = len(data)
		case "IHDR":
		default:
			if typ[0]&0x20 == 0 { // critical, unknown to libpng
				return info, fmt.Errorf("%w: png: unhandled critical chunk %q", ErrCorrupt, typ)
			}
		case "eXIf":
			if info.exif == nil && n > 0 {
				info.exif = body
			}
		case "gAMA":
			if !before || n != 4 || invalid {
				break
			}
			g := int64(binary.BigEndian.Uint32(body))
			if g < 16 || g > 625000000 || fromGAMA {
				invalid = true
				break
			}
			ok := true
			if haveGamma {
				gtest, fits := pngMulDiv(int64(info.gamma), 100000, g)
				if !fits || pngGammaSignificant(gtest) {
					ok = !fromSRGB
				}
			}
			if ok {
				info.gamma = int(g)
				haveGamma, fromGAMA = true, true
			}
		case "sRGB":
			if !before || n != 1 || invalid {
				break
			}
			if haveIntent {
				invalid = true
				break
			}
			if body[0] > 3 {
				invalid = true
				break
			}
			haveIntent, fromSRGB, haveGamma = true, true, true
			info.gamma = 45455
		case "iCCP":
			if before && !invalid {
				if haveIntent {
					invalid = true
				}
				haveIntent = true
			}
		case "sBIT":
			if !before {
				break
			}
			want := map[int]int{0: 1, 2: 3, 3: 3, 4: 2, 6: 4}[info.colorType]
			if n != want {
				break
			}
			depth := info.depth
			if info.colorType == 3 {
				depth = 8
			}
			valid := true
			for _, b := range body {
				if b == 0 || int(b) > depth {
					valid = false
				}
			}
			if !valid {
				break
			}
			if info.colorType&2 != 0 {
				info.sigBit = int(max(body[0], body[1], body[2]))
			} else {
				info.sigBit = int(body[0])
			}
		}
	}
	if first {
		return info, fmt.Errorf("%w: png: missing IHDR", ErrCorrupt)
	}
	return info, nil
}

// deflateMaxRatio is the most a deflate stream expands: a 258-byte match
// coded in two bits.
const deflateMaxRatio = 1032

// channelsOf is the samples per pixel of a PNG colour type.
func pngChannelsOf(colorType int) int {
	switch colorType {
	case 2:
		return 3
	case 4:
		return 2
	case 6:
		return 4
	}
	return 1
}

// rawSize is the size of the inflated image data: each row of each
// interlace pass is a filter byte and its packed samples.
func (info pngInfo) rawSize() int64 {
	bits := int64(info.depth * pngChannelsOf(info.colorType))
	rows := func(w, h int64) int64 {
		if w <= 0 || h <= 0 {
			return 0
		}
		return h * (1 + (w*bits+7)/8)
	}
	w, h := int64(info.width), int64(info.height)
	if !info.interlaced {
		return rows(w, h)
	}
	// Adam7 passes: x0, y0, dx, dy.
	var n int64
	for _, p := range [7][4]int64{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		n += rows((w-p[0]+p[2]-1)/p[2], (h-p[1]+p[3]-1)/p[3])
	}
	return n
}

// decodePNG decodes into s.a and returns the eXIf payload, if any.
func (s *scratch) decodePNG(data []byte, channels, maxPixels int) (*Image, []byte, error) {
	info, err := scanPNG(data)
	if err != nil {
		return nil, nil, err
	}
	if err := checkSize(info.width, info.height, maxPixels); err != nil {
		return nil, nil, fmt.Errorf("png: %w", err)
	}
	if raw := info.rawSize(); info.idat*deflateMaxRatio+deflateMaxRatio*64 < raw {
		// Deflate expands a byte to at most 1032: the data cannot hold the
		// image, so it is truncated. Refusing it here costs nothing, where
		// image/png would allocate the whole image first.
		return nil, nil, fmt.Errorf("%w: png: %d bytes of image data cannot hold %dx%d pixels (%d bytes once inflated): truncated",
			ErrCorrupt, info.idat, info.width, info.height, raw)
	}
	if len(info.drop) > 0 {
		clean := make([]byte, 0, len(data))
		last := 0
		for _, d := range info.drop {
			clean = append(clean, data[last:d[0]]...)
			last = d[1]
		}
		data = append(clean, data[last:]...)
	}
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "png:") {
			msg = "png: " + msg
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if w != info.width || h != info.height {
		return nil, nil, fmt.Errorf("%w: png: inconsistent dimensions", ErrCorrupt)
	}
	s.a = grow(s.a, w*h*channels)
	out := &Image{Width: w, Height: h, Channels: channels, Pix: s.a}
	isColor := info.colorType&2 != 0
	toGray := channels == 1 && isColor
	var g *pngGammaTables
	if toGray {
		g = pngGammaFor(info)
	}
	dst := out.Pix
	switch m := m.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			if channels == 1 {
				copy(dst[y*w:], row)
				continue
			}
			o := dst[y*w*3:]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			for x := 0; x < w; x++ {
				v := row[2*x]
				if channels == 1 {
					dst[y*w+x] = v
				} else {
					o := dst[(y*w+x)*3:]
					o[0], o[1], o[2] = v, v, v
				}
			}
		}
	case *image.RGBA:
		pngRows8(dst, m.Pix, m.Stride, w, h, channels, toGray, g)
	case *image.NRGBA:
		pngRows8(dst, m.Pix, m.Stride, w, h, channels, toGray, g)
	case *image.RGBA64:
		pngRows16(dst, m.Pix, m.Stride, w, h, channels, toGray, g)
	case *image.NRGBA64:
		pngRows16(dst, m.Pix, m.Stride, w, h, channels, toGray, g)
	case *image.Paletted:
		var pal [256][3]uint8 // entries past the palette are black, as in libpng 1.6
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			switch c := c.(type) {
			case color.RGBA:
				pal[i] = [3]uint8{c.R, c.G, c.B}
			case color.NRGBA:
				pal[i] = [3]uint8{c.R, c.G, c.B}
			default:
				return nil, nil, fmt.Errorf("%w: png: unexpected palette entry %T", ErrCorrupt, c)
			}
		}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, idx := range row {
				p := pal[idx]
				if channels == 3 {
					o := dst[(y*w+x)*3:]
					o[0], o[1], o[2] = p[2], p[1], p[0]
				} else {
					dst[y*w+x] = g.gray8(p[0], p[1], p[2])
				}
			}
		}
	default:
		return nil, nil, fmt.Errorf("%w: png: unexpected image type %T", ErrCorrupt, m)
	}
	return out, info.exif, nil
}

// pngRows8 converts 4-byte-per-pixel rows (RGBA or NRGBA, alpha ignored).
func pngRows8(dst, pix []uint8, stride, w, h, channels int, toGray bool, g *pngGammaTables) {
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+4*w]
		for x := 0; x < w; x++ {
			r, gr, b := row[4*x], row[4*x+1], row[4*x+2]
			switch {
			case channels == 3:
				o := dst[(y*w+x)*3:]
				o[0], o[1], o[2] = b, gr, r
			case toGray:
				dst[y*w+x] = g.gray8(r, gr, b)
			default: // grey+alpha source: R = G = B = grey
				dst[y*w+x] = r
			}
		}
	}
}

// pngRows16 converts 8-byte-per-pixel big-endian rows (RGBA64 or NRGBA64).
func pngRows16(dst, pix []uint8, stride, w, h, channels int, toGray bool, g *pngGammaTables) {
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+8*w]
		for x := 0; x < w; x++ {
			p := row[8*x : 8*x+8]
			switch {
			case channels == 3:
				o := dst[(y*w+x)*3:]
				o[0], o[1], o[2] = p[4], p[2], p[0]
			case toGray:
				r := uint32(p[0])<<8 | uint32(p[1])
				gr := uint32(p[2])<<8 | uint32(p[3])
				b := uint32(p[4])<<8 | uint32(p[5])
				dst[y*w+x] = g.gray16(r, gr, b)
			default:
				dst[y*w+x] = p[0]
			}
		}
	}
}

// libpng's png_set_rgb_to_gray(png_ptr, 1, 0.299, 0.587): the coefficients
// become (png_uint_32)red*32768/100000 with red = 29900, green = 58700.
const (
	pngRC = 29900 * 32768 / 100000 // 9797
	pngGC = 58700 * 32768 / 100000 // 19234
	pngBC = 32768 - pngRC - pngGC
)

// pngGammaTables holds libpng's gamma tables for rgb_to_gray; nil means the
// image has no significant gamma and the plain formulas apply.
type pngGammaTables struct {
	// 8-bit images
	table, to1, from1 [256]uint8
	// 16-bit images, indexed by value >> shift
	shift                     uint
	table16, to1_16, from1_16 []uint16
}

// gray8 is png_do_rgb_to_gray for 8-bit samples.
func (g *pngGammaTables) gray8(r, gr, b uint8) uint8 {
	if r == gr && r == b {
		if g != nil {
			return g.table[r]
		}
		return r
	}
	if g == nil {
		return uint8((pngRC*uint32(r) + pngGC*uint32(gr) + pngBC*uint32(b)) >> 15)
	}
	r1, g1, b1 := uint32(g.to1[r]), uint32(g.to1[gr]), uint32(g.to1[b])
	return g.from1[(pngRC*r1+pngGC*g1+pngBC*b1+16384)>>15]
}

// gray16 is png_do_rgb_to_gray for 16-bit samples followed by
// png_set_strip_16.
func (g *pngGammaTables) gray16(r, gr, b uint32) uint8 {
	if g == nil {
		return uint8(((pngRC*r + pngGC*gr + pngBC*b + 16384) >> 15) >> 8)
	}
	var w uint16
	if r == gr && r == b {
		w = g.table16[r>>g.shift]
	} else {
		r1, g1, b1 := uint32(g.to1_16[r>>g.shift]), uint32(g.to1_16[gr>>g.shift]), uint32(g.to1_16[b>>g.shift])
		gray := (pngRC*r1 + pngGC*g1 + pngBC*b1 + 16384) >> 15
		w = g.from1_16[gray>>g.shift]
	}
	return uint8(w >> 8)
}

// libpng's fixed-point gamma helpers (png.c, floating-point arithmetic build).

func pngGammaSignificant(g int64) bool { return g < 100000-5000 || g > 100000+5000 }

func pngFixed(r float64) (int64, bool) {
	if r <= 2147483647 && r >= -2147483648 {
		return int64(r), true
	}
	return 0, false
}

func pngMulDiv(a, times, divisor int64) (int64, bool) {
	if divisor == 0 {
		return 0, false
	}
	if a == 0 || times == 0 {
		return 0, true
	}
	r := float64(a)
	r *= float64(times)
	r /= float64(divisor)
	return pngFixed(math.Floor(r + .5))
}

func pngReciprocal(a int64) int64 {
	v, ok := pngFixed(math.Floor(1e10/float64(a) + .5))
	if !ok {
		return 0
	}
	return v
}

func pngProduct2(a, b int64) int64 {
	r := float64(a) * 1e-5
	r *= float64(b)
	v, ok := pngFixed(math.Floor(r + .5))
	if !ok {
		return 0
	}
	return v
}

func pngReciprocal2(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	r := 1e15 / float64(a)
	r /= float64(b)
	v, ok := pngFixed(math.Floor(r + .5))
	if !ok {
		return 0
	}
	return v
}

func pngGamma8(v int, g int64) uint8 {
	if v > 0 && v < 255 {
		return uint8(math.Floor(255*libm.Pow(float64(v)/255., float64(g)*.00001) + .5))
	}
	return uint8(v)
}

func pngGamma16(v uint32, g int64) uint32 {
	if v > 0 && v < 65535 {
		return uint32(math.Floor(65535*libm.Pow(float64(v)/65535., float64(g)*.00001) + .5))
	}
	return v
}

func pngTable8(t *[256]uint8, g int64) {
	for i := range t {
		if pngGammaSignificant(g) {
			t[i] = pngGamma8(i, g)
		} else {
			t[i] = uint8(i)
		}
	}
}

func pngTable16(shift uint, g int64) []uint16 {
	n := 1 << (16 - shift)
	t := make([]uint16, n)
	fmax := 1. / float64(int64(1)<<(16-shift)-1)
	max := uint32(1)<<(16-shift) - 1
	maxBy2 := uint32(1) << (15 - shift)
	sig := pngGammaSignificant(g)
	for ig := range t {
		if sig {
			t[ig] = uint16(math.Floor(65535.*libm.Pow(float64(ig)*fmax, float64(g)*.00001) + .5))
		} else {
			v := uint32(ig)
			if shift != 0 {
				v = (v*65535 + maxBy2) / max
			}
			t[ig] = uint16(v)
		}
	}
	return t
}

func pngTable16to8(shift uint, g int64) []uint16 {
	n := uint32(1) << (16 - shift)
	max := uint32(1)<<(16-shift) - 1
	t := make([]uint16, n)
	last := uint32(0)
	for i := uint32(0); i < 255; i++ {
		out := uint16(i * 257)
		bound := pngGamma16(uint32(out)+128, g)
		bound = (bound*max+32768)/65535 + 1
		for last < bound && last < n {
			t[last] = out
			last++
		}
	}
	for last < n {
		t[last] = 65535
		last++
	}
	return t
}

var pngGammaCache sync.Map // key [3]int{gamma, depth>8, shift} -> *pngGammaTables

// pngGammaFor returns the tables png_init_read_transformations builds for
// rgb_to_gray on this image, or nil when it builds none.
func pngGammaFor(info pngInfo) *pngGammaTables {
	gamma := int64(info.gamma)
	var screen int64
	if gamma != 0 {
		screen = pngReciprocal(gamma)
	} else {
		gamma, screen = 100000, 100000
	}
	if !pngGammaSignificant(gamma) && !pngGammaSignificant(screen) {
		return nil
	}
	var shift uint
	if info.depth == 16 {
		sig := info.sigBit
		if sig > 0 && sig < 16 {
			shift = uint(16 - sig)
		}
		if shift < 16-11 { // PNG_MAX_GAMMA_8 is 11, with strip_16
			shift = 16 - 11
		}
		if shift > 8 {
			shift = 8
		}
	}
	key := [3]int64{gamma, int64(info.depth), int64(shift)}
	if t, ok := pngGammaCache.Load(key); ok {
		return t.(*pngGammaTables)
	}
	t := &pngGammaTables{shift: shift}
	if info.depth <= 8 {
		pngTable8(&t.table, pngReciprocal2(gamma, screen))
		pngTable8(&t.to1, pngReciprocal(gamma))
		pngTable8(&t.from1, pngReciprocal(screen))
	} else {
		t.table16 = pngTable16to8(shift, pngProduct2(gamma, screen))
		t.to1_16 = pngTable16(shift, pngReciprocal(gamma))
		t.from1_16 = pngTable16(shift, pngReciprocal(screen))
	}
	pngGammaCache.Store(key, t)
	return t
}
