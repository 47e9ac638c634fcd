package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Augment says which random transforms training applies to each image of a
// batch, as Keras's preprocessing layers do (RandomFlip("horizontal"),
// RandomRotation, RandomZoom, RandomTranslation, RandomBrightness,
// RandomContrast). The zero value applies none. Each image draws its own
// parameters; validation, evaluation and prediction never see them.
type Augment struct {
	// Flip mirrors an image left to right with probability 1/2.
	Flip bool
	// Rotation turns an image by an angle drawn from [-Rotation, Rotation]
	// of a full turn (Keras's RandomRotation factor): 0.1 is up to 36°.
	Rotation float64
	// Zoom scales an image by 1+z, z drawn from [-Zoom, Zoom]: above 1 it
	// zooms in, below it zooms out.
	Zoom float64
	// Translate shifts an image by up to this fraction of its width and
	// height, independently on each axis.
	Translate float64
	// Brightness adds a value drawn from [-Brightness, Brightness] to every
	// pixel (pixels lie in [0, 1]).
	Brightness float64
	// Contrast scales each channel's distance from its mean by a factor
	// drawn from [1-Contrast, 1+Contrast].
	Contrast float64
	// Fill is what the geometric transforms show beyond the image's edges:
	// FillReflect (default, as Keras), FillNearest or FillConstant (black).
	Fill FillMode
}

// FillMode is how pixels beyond an image's edges are filled.
type FillMode string

// The fill modes, as Keras's fill_mode names them.
const (
	FillReflect  FillMode = "reflect"  // d c b a | a b c d | d c b a
	FillNearest  FillMode = "nearest"  // a a a a | a b c d | d d d d
	FillConstant FillMode = "constant" // 0 0 0 0 | a b c d | 0 0 0 0
)

// DefaultAugment is the set tfcat train --augment applies: flips, rotations
// up to 1/20 of a turn (18°), 10% zoom and translation, and 10% brightness and
// contrast changes.
func DefaultAugment() Augment {
	return Augment{Flip: true, Rotation: 0.05, Zoom: 0.1, Translate: 0.1, Brightness: 0.1, Contrast: 0.1}
}

// Enabled reports whether a applies any transform.
func (a Augment) Enabled() bool { a.Fill = ""; return a != Augment{} }

// AugmentError is a value of Augment out of its range; Field names it.
type AugmentError struct {
	Field string
	Value float64
	Range string
}

func (e *AugmentError) Error() string {
	return fmt.Sprintf("augmentation %s %g must lie in %s", e.Field, e.Value, e.Range)
}

// Validate reports the first value out of range: Rotation beyond a full turn,
// Zoom of 1 or more, a negative or NaN value.
func (a Augment) Validate() error {
	for _, f := range []struct {
		name  string
		v     float64
		max   float64
		open  bool // max excluded
		rangs string
	}{
		{"Rotation", a.Rotation, 1, false, "[0, 1] (a fraction of a full turn)"},
		{"Zoom", a.Zoom, 1, true, "[0, 1)"},
		{"Translate", a.Translate, 1, false, "[0, 1]"},
		{"Brightness", a.Brightness, 1, false, "[0, 1]"},
		{"Contrast", a.Contrast, 1, false, "[0, 1]"},
	} {
		if !(f.v >= 0 && f.v <= f.max) || (f.open && f.v == f.max) {
			return &AugmentError{Field: f.name, Value: f.v, Range: f.rangs}
		}
	}
	switch a.Fill {
	case "", FillReflect, FillNearest, FillConstant:
	default:
		return fmt.Errorf("augmentation fill mode %q: use reflect, nearest or constant", a.Fill)
	}
	return nil
}

// Augmenter applies an Augment to batches, drawing from its own generator:
// the same seed and the same batches give the same images. It reuses its
// buffers, so at steady state it allocates nothing. It is not safe for
// concurrent use.
type Augmenter struct {
	a        Augment
	rng      *rand.Rand
	size, ch int
	src      []float32 // one image before the geometric transform
}

// NewAugmenter returns an Augmenter for size×size images of channels
// channels, seeded with seed.
func NewAugmenter(a Augment, size, channels int, seed int64) (*Augmenter, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if size <= 0 || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("augment: image size %dx%dx%d", size, size, channels)
	}
	return &Augmenter{a: a, rng: newRandStream(seed, 0x61756721), size: size, ch: channels}, nil
}

// uniform draws from [-r, r].
func (g *Augmenter) uniform(r float64) float64 {
	if r == 0 {
		return 0
	}
	return (2*g.rng.Float64() - 1) * r
}

// Apply transforms every image of b in place.
func (g *Augmenter) Apply(b *Batch) error {
	n := g.size * g.size * g.ch
	if len(b.X) < b.N*n {
		return fmt.Errorf("augment: batch of %d images needs %d values, has %d", b.N, b.N*n, len(b.X))
	}
	for i := range b.N {
		g.image(b.X[i*n : (i+1)*n])
	}
	return nil
}

// image transforms one image in place. The parameters are drawn in a fixed
// order whatever is enabled, so that a seed's draws do not shift when one
// transform is turned off.
func (g *Augmenter) image(x []float32) {
	a := g.a
	flip := a.Flip && g.rng.Uint64()&1 == 1
	angle := g.uniform(a.Rotation) * 2 * math.Pi
	zoom := 1 + g.uniform(a.Zoom)
	tx := g.uniform(a.Translate) * float64(g.size)
	ty := g.uniform(a.Translate) * float64(g.size)
	bright := float32(g.uniform(a.Brightness))
	contrast := float32(1 + g.uniform(a.Contrast))
	if flip || angle != 0 || zoom != 1 || tx != 0 || ty != 0 {
		g.warp(x, flip, angle, zoom, tx, ty)
	}
	if bright != 0 || contrast != 1 {
		g.tone(x, bright, contrast)
	}
}

// warp resamples x (bilinear; beyond the edges as Augment.Fill says) so
// that it shows the image flipped, rotated by angle about its centre,
// scaled by zoom and shifted by (tx, ty) pixels.
func (g *Augmenter) warp(x []float32, flip bool, angle, zoom, tx, ty float64) {
	s, ch := g.size, g.ch
	g.src = append(g.src[:0], x...)
	src := g.src
	// Output pixel p maps to source pixel F·R⁻¹·(p - c - t)/zoom + c.
	c := float64(s-1) / 2
	cos, sin := math.Cos(angle)/zoom, math.Sin(angle)/zoom
	// Inverse rotation: [cos sin; -sin cos].
	a11, a12, a21, a22 := cos, sin, -sin, cos
	if flip {
		a11, a12 = -a11, -a12
	}
	// floor(v) is int(v+off)-off for v > -off: cheaper than math.Floor.
	const off = 1 << 20
	for y := range s {
		dy := float64(y) - c - ty
		dx0 := -c - tx
		sx := a11*dx0 + a12*dy + c + off
		sy := a21*dx0 + a22*dy + c + off
		row := x[y*s*ch : (y+1)*s*ch]
		for xo := range s {
			ix, iy := int(sx), int(sy)
			wx, wy := float32(sx-float64(ix)), float32(sy-float64(iy))
			x0, y0 := ix-off, iy-off
			x1, y1 := x0+1, y0+1
			o := row[xo*ch : xo*ch+ch]
			if x0 < 0 || y0 < 0 || x1 >= s || y1 >= s {
				if g.a.Fill == FillConstant {
					g.edge(o, x0, y0, wx, wy)
				} else {
					if g.a.Fill == FillNearest {
						x0, x1, y0, y1 = min(max(x0, 0), s-1), min(max(x1, 0), s-1), min(max(y0, 0), s-1), min(max(y1, 0), s-1)
					} else {
						x0, x1, y0, y1 = reflect(x0, s), reflect(x1, s), reflect(y0, s), reflect(y1, s)
					}
					r00, r01 := src[(y0*s+x0)*ch:][:ch], src[(y0*s+x1)*ch:][:ch]
					r10, r11 := src[(y1*s+x0)*ch:][:ch], src[(y1*s+x1)*ch:][:ch]
					for k := range o {
						top := r00[k] + (r01[k]-r00[k])*wx
						bot := r10[k] + (r11[k]-r10[k])*wx
						o[k] = top + (bot-top)*wy
					}
				}
				sx += a11
				sy += a21
				continue
			}
			p00 := (y0*s + x0) * ch
			p10 := p00 + s*ch
			r0, r1 := src[p00:p00+2*ch], src[p10:p10+2*ch]
			for k := range o {
				top := r0[k] + (r0[ch+k]-r0[k])*wx
				bot := r1[k] + (r1[ch+k]-r1[k])*wx
				o[k] = top + (bot-top)*wy
			}
			sx += a11
			sy += a21
		}
	}
}

// edge samples g.src bilinearly at a point whose 2×2 neighbourhood, from
// (x0, y0), reaches beyond the image, filling as Augment.Fill says (warp
// handles reflect and nearest itself, faster).
func (g *Augmenter) edge(o []float32, x0, y0 int, wx, wy float32) {
	s, ch := g.size, g.ch
	var tap [4]int // source offsets, -1 for the constant fill
	for i, d := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
		x, y := x0+d[0], y0+d[1]
		switch g.a.Fill {
		case FillConstant:
			if x < 0 || y < 0 || x >= s || y >= s {
				tap[i] = -1
				continue
			}
		case FillNearest:
			x, y = min(max(x, 0), s-1), min(max(y, 0), s-1)
		default:
			x, y = reflect(x, s), reflect(y, s)
		}
		tap[i] = (y*s + x) * ch
	}
	for k := range o {
		var v [4]float32
		for i, p := range tap {
			if p >= 0 {
				v[i] = g.src[p+k]
			}
		}
		top := v[0] + (v[1]-v[0])*wx
		bot := v[2] + (v[3]-v[2])*wx
		o[k] = top + (bot-top)*wy
	}
}

// reflect maps an index outside [0, n) back inside, mirroring at the edges
// (d c b a | a b c d | d c b a).
func reflect(i, n int) int {
	switch {
	case i >= 0 && i < n:
		return i
	case i < 0 && i >= -n:
		return -1 - i
	case i >= n && i < 2*n:
		return 2*n - 1 - i
	}
	p := 2 * n
	i %= p
	if i < 0 {
		i += p
	}
	if i >= n {
		i = p - 1 - i
	}
	return i
}

// tone applies the contrast factor about each channel's mean, adds the
// brightness delta and clips to [0, 1].
func (g *Augmenter) tone(x []float32, bright, contrast float32) {
	ch := g.ch
	var sum [3]float64
	if ch == 1 {
		for _, v := range x {
			sum[0] += float64(v)
		}
	} else {
		for i := 0; i+2 < len(x); i += 3 {
			sum[0] += float64(x[i])
			sum[1] += float64(x[i+1])
			sum[2] += float64(x[i+2])
		}
	}
	var off [3]float32
	for k := range ch {
		mean := float32(sum[k] / float64(len(x)/ch))
		off[k] = mean*(1-contrast) + bright
	}
	for i := 0; i+ch <= len(x); i += ch {
		for k, o := range off[:ch] {
			v := x[i+k]*contrast + o
			x[i+k] = min(max(v, 0), 1)
		}
	}
}
