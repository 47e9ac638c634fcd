package dataset

import (
	"fmt"
	"math"
)

// Resize returns img resized to width×height exactly as
// cv2.resize(img, (width, height), 0, 0, cv2.INTER_LINEAR) does for 8-bit
// images on x86-64 (OpenCV's fixed-point resizeGeneric: float32 source
// coordinates, 11-bit weights, and the truncations of its vertical pass; a
// plain copy when the size is unchanged). No antialiasing: like OpenCV,
// each output pixel reads a 2×2 neighbourhood.
func Resize(img *Image, width, height int) (*Image, error) {
	if err := img.check(); err != nil {
		return nil, err
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("resize: invalid size %dx%d", width, height)
	}
	out := NewImage(width, height, img.Channels)
	var s scratch
	s.resizeInto(img, out.Pix, width, height)
	return out, nil
}

// check reports whether img's fields are consistent.
func (img *Image) check() error {
	if img == nil || img.Width <= 0 || img.Height <= 0 || img.Channels <= 0 ||
		len(img.Pix) != img.Width*img.Height*img.Channels {
		return fmt.Errorf("invalid image")
	}
	return nil
}

// axisCoef is OpenCV's source index and weights along one axis.
type axisCoef struct {
	src, dst int
	idx      []int
	w0, w1   []int32
}

// resizeCoefs caches the coefficients of the last resize.
type resizeCoefs struct{ x, y axisCoef }

// compute fills c for resizing src to dst samples. clampEnds applies the
// x-axis treatment of the borders (weights (2048, 0) on the clamped index);
// the y-axis keeps the unclamped weights and clamps only the row indices, as
// resizeGeneric_ does.
func (c *axisCoef) compute(src, dst int, clampEnds bool) {
	if c.src == src && c.dst == dst && len(c.idx) == dst {
		return
	}
	c.src, c.dst = src, dst
	if cap(c.idx) < dst {
		c.idx = make([]int, dst)
		c.w0 = make([]int32, dst)
		c.w1 = make([]int32, dst)
	}
	c.idx, c.w0, c.w1 = c.idx[:dst], c.w0[:dst], c.w1[:dst]
	scale := 1 / (float64(dst) / float64(src)) // hal::resize: scale_x = 1./inv_scale_x
	for d := 0; d < dst; d++ {
		// fx = (float)((dx+0.5)*scale_x - 0.5): the explicit float64
		// conversion keeps the compiler from fusing into an FMA.
		f := float32(float64((float64(d)+0.5)*scale) - 0.5)
		s := int(math.Floor(float64(f)))
		f -= float32(s)
		if clampEnds {
			if s < 0 {
				f, s = 0, 0
			}
			if s >= src-1 {
				f, s = 0, src-1
			}
		}
		c.idx[d] = s
		// saturate_cast<short>((1.f - fx) * INTER_RESIZE_COEF_SCALE): float32
		// arithmetic, rounded half to even.
		a := float32(1) - f
		c.w0[d] = int32(math.RoundToEven(float64(a * 2048)))
		c.w1[d] = int32(math.RoundToEven(float64(f * 2048)))
	}
}

// resizeInto writes img resized to dw×dh into dst (dw*dh*channels bytes),
// with buffers reused between calls.
func (sc *scratch) resizeInto(img *Image, dst []uint8, dw, dh int) {
	sw, sh, cn := img.Width, img.Height, img.Channels
	if sw == dw && sh == dh {
		copy(dst, img.Pix)
		return
	}
	sc.coef.x.compute(sw, dw, true)
	sc.coef.y.compute(sh, dh, false)
	xi, xw0, xw1 := sc.coef.x.idx, sc.coef.x.w0, sc.coef.x.w1
	yi, yw0, yw1 := sc.coef.y.idx, sc.coef.y.w0, sc.coef.y.w1
	n := dw * cn
	if cap(sc.rows) < 2*n {
		sc.rows = make([]int32, 2*n)
	}
	buf := sc.rows[:2*n]
	row := [2][]int32{buf[:n], buf[n:]}
	have := [2]int{-1, -1} // source row held in row[k]
	hresize := func(sy int, out []int32) {
		s := img.Pix[sy*sw*cn : (sy+1)*sw*cn]
		for dx := 0; dx < dw; dx++ {
			sx := xi[dx] * cn
			a0, a1 := xw0[dx], xw1[dx]
			o := out[dx*cn : dx*cn+cn]
			if xi[dx] >= sw-1 {
				for k := range o {
					o[k] = int32(s[sx+k]) * 2048
				}
				continue
			}
			for k := range o {
				o[k] = int32(s[sx+k])*a0 + int32(s[sx+cn+k])*a1
			}
		}
	}
	clip := func(y int) int { return min(max(y, 0), sh-1) }
	for dy := 0; dy < dh; dy++ {
		y0, y1 := clip(yi[dy]), clip(yi[dy]+1)
		var r [2][]int32
		need := [2]int{y0, y1}
		for k, sy := range need {
			switch sy {
			case have[0]:
				r[k] = row[0]
				continue
			case have[1]:
				r[k] = row[1]
				continue
			}
			// Compute into the buffer not holding the other row needed.
			slot := 0
			if have[0] == need[1-k] {
				slot = 1
			}
			hresize(sy, row[slot])
			have[slot] = sy
			r[k] = row[slot]
		}
		b0, b1 := yw0[dy], yw1[dy]
		h0, h1 := r[0], r[1]
		o := dst[dy*n : (dy+1)*n]
		for i := range o {
			// VResizeLinear<uchar, int, short, ...>: each product truncated
			// by 16 bits, then (sum + 2) >> 2; the cast keeps the low 8 bits.
			o[i] = uint8((((b0 * (h0[i] >> 4)) >> 16) + ((b1 * (h1[i] >> 4)) >> 16) + 2) >> 2)
		}
	}
}

// scale255 is float32(v) * float32(1.0/255.0) for every byte value: what
// np.multiply(img.astype(np.float32), 1.0/255.0) computes in NumPy 2 (the
// Python float is a weak scalar, so the product is float32 by float32).
var scale255 = func() (t [256]float32) {
	k := float32(1.0 / 255.0)
	for i := range t {
		t[i] = float32(i) * k
	}
	return t
}()

// Float32 converts pixels to float32 as the tutorial does
// (np.multiply(img.astype(np.float32), 1.0/255.0)), bit for bit, appending to
// dst[:0] and returning it; dst is reused when large enough.
func (img *Image) Float32(dst []float32) []float32 {
	n := len(img.Pix)
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	toFloat32(dst, img.Pix)
	return dst
}

func toFloat32(dst []float32, src []uint8) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = scale255[v]
	}
}
