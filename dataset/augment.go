package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tfcat/tfcat/pixels"
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

// DefaultAugment is the set tfcat train --augment applies: flips and 10%
// brightness and contrast changes. They keep an object where it is; the
// geometric transforms (Rotation, Zoom, Translate) are left to the user,
// because on centred, size-normalised images they move training images away
// from the test images and lowered accuracy (BENCHMARKS.md), while on photos
// framed at random they are worth trying.
func DefaultAugment() Augment {
	return Augment{Flip: true, Brightness: 0.1, Contrast: 0.1}
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
// the same seed and the same batches give the same images. It allocates
// nothing per batch. It is not safe for concurrent use.
//
// Split.NextAugmented applies it while converting the stored uint8 pixels to
// float32, in the same pass, which is what training uses: the transform
// then costs about what the conversion alone did (BenchmarkAugment).
type Augmenter struct {
	a        Augment
	rng      *rand.Rand
	size, ch int
	src      []float32 // Apply: one image before its transform
	draws    []draw    // NextAugmented: one batch's parameters
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
	if a.Fill == "" {
		a.Fill = FillReflect
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

// draw is one image's transform.
type draw struct {
	flip                bool
	angle, zoom, tx, ty float64 // radians, scale, pixels
	bright, contrast    float32
}

// next draws one image's parameters, in a fixed order whatever is enabled,
// so that a seed's draws do not shift when one transform is turned off.
func (g *Augmenter) next() draw {
	a := g.a
	return draw{
		flip:     a.Flip && g.rng.Uint64()&1 == 1,
		angle:    g.uniform(a.Rotation) * 2 * math.Pi,
		zoom:     1 + g.uniform(a.Zoom),
		tx:       g.uniform(a.Translate) * float64(g.size),
		ty:       g.uniform(a.Translate) * float64(g.size),
		bright:   float32(g.uniform(a.Brightness)),
		contrast: float32(1 + g.uniform(a.Contrast)),
	}
}

// Apply transforms every image of b in place.
func (g *Augmenter) Apply(b *pixels.Batch) error {
	n := g.size * g.size * g.ch
	if len(b.X) < b.N*n {
		return fmt.Errorf("augment: batch of %d images needs %d values, has %d", b.N, b.N*n, len(b.X))
	}
	for i := range b.N {
		x := b.X[i*n : (i+1)*n]
		g.src = append(g.src[:0], x...)
		render(x, g.src, 1, g.size, g.ch, g.a.Fill, g.next())
	}
	return nil
}

// sample is the type of a source pixel: a stored uint8 or a float32.
type sample interface{ ~uint8 | ~float32 }

// render writes to dst the image src, whose values times scale lie in
// [0, 1], transformed by d: sampled bilinearly (beyond the edges as fill
// says) so that it shows src flipped, rotated by d.angle about its centre,
// scaled by d.zoom and shifted by (d.tx, d.ty), then with its contrast scaled
// about each channel's mean (the source's) and d.bright added, clipped to
// [0, 1]. One pass writes each output value once.
func render[T sample](dst []float32, src []T, scale float32, s, ch int, fill FillMode, d draw) {
	// Tone: out = v*mul + off[k], v the interpolated source value.
	mul := scale * d.contrast
	var off [3]float32
	if d.contrast != 1 {
		sum := channelSums(src, ch)
		for k := range ch {
			mean := float32(sum[k]/float64(len(src)/ch)) * scale
			off[k] = mean * (1 - d.contrast)
		}
	}
	for k := range ch {
		off[k] += d.bright
	}
	if d.angle == 0 && d.zoom == 1 && d.tx == 0 && d.ty == 0 {
		// Flip or nothing: whole pixels move; no interpolation.
		if src, ok := any(src).([]uint8); ok {
			flipTable(dst, src, s, ch, d.flip, mul, off)
			return
		}
		for y := range s {
			row, out := src[y*s*ch:(y+1)*s*ch], dst[y*s*ch:(y+1)*s*ch]
			for x := range s {
				sx := x
				if d.flip {
					sx = s - 1 - x
				}
				for k := range ch {
					out[x*ch+k] = clip(float32(row[sx*ch+k])*mul + off[k])
				}
			}
		}
		return
	}
	// Output pixel p maps to source pixel F·R⁻¹·(p - c - t)/zoom + c.
	c := float64(s-1) / 2
	cos, sin := math.Cos(d.angle)/d.zoom, math.Sin(d.angle)/d.zoom
	// Inverse rotation: [cos sin; -sin cos].
	a11, a12, a21, a22 := cos, sin, -sin, cos
	if d.flip {
		a11, a12 = -a11, -a12
	}
	// floor(v) is int(v+off)-off for v > -off: cheaper than math.Floor.
	const bias = 1 << 20
	var tap [4][]T // the 2×2 neighbourhood's pixels
	var zero [3]T  // FillConstant beyond the edges
	for y := range s {
		dy := float64(y) - c - d.ty
		dx0 := -c - d.tx
		sx := a11*dx0 + a12*dy + c + bias
		sy := a21*dx0 + a22*dy + c + bias
		out := dst[y*s*ch : (y+1)*s*ch]
		for x := range s {
			ix, iy := int(sx), int(sy)
			wx, wy := float32(sx-float64(ix)), float32(sy-float64(iy))
			sx += a11
			sy += a21
			x0, y0 := ix-bias, iy-bias
			o := out[x*ch : x*ch+ch]
			if x0 >= 0 && y0 >= 0 && x0 < s-1 && y0 < s-1 {
				p := (y0*s + x0) * ch
				if ch == 3 { // the common case, unrolled: about twice as fast
					r0, r1 := src[p:p+6:p+6], src[p+s*3:p+s*3+6:p+s*3+6]
					o := o[:3:3]
					o[0] = lerp4(r0[0], r0[3], r1[0], r1[3], wx, wy, mul, off[0])
					o[1] = lerp4(r0[1], r0[4], r1[1], r1[4], wx, wy, mul, off[1])
					o[2] = lerp4(r0[2], r0[5], r1[2], r1[5], wx, wy, mul, off[2])
					continue
				}
				o[0] = lerp4(src[p], src[p+1], src[p+s], src[p+s+1], wx, wy, mul, off[0])
				continue
			}
			for i, dxy := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				px, py := x0+dxy[0], y0+dxy[1]
				switch fill {
				case FillConstant:
					if px < 0 || py < 0 || px >= s || py >= s {
						tap[i] = zero[:ch]
						continue
					}
				case FillNearest:
					px, py = min(max(px, 0), s-1), min(max(py, 0), s-1)
				default:
					px, py = reflect(px, s), reflect(py, s)
				}
				tap[i] = src[(py*s+px)*ch:][:ch]
			}
			for k := range o {
				o[k] = lerp4(tap[0][k], tap[1][k], tap[2][k], tap[3][k], wx, wy, mul, off[k])
			}
		}
	}
}

// channelSums adds up each channel of an image; in integers for uint8
// pixels, which is several times faster than converting each value.
func channelSums[T sample](src []T, ch int) [3]float64 {
	var sum [3]float64
	if u, ok := any(src).([]uint8); ok {
		var n [3]uint64
		for i := 0; i+ch <= len(u); i += ch {
			for k, v := range u[i : i+ch] {
				n[k] += uint64(v)
			}
		}
		for k := range n {
			sum[k] = float64(n[k])
		}
		return sum
	}
	for i := 0; i+ch <= len(src); i += ch {
		for k, v := range src[i : i+ch] {
			sum[k] += float64(v)
		}
	}
	return sum
}

// flipTable is render's flip-or-nothing case for uint8 pixels: each
// channel's 256 possible values are toned once, then looked up.
func flipTable(dst []float32, src []uint8, s, ch int, flip bool, mul float32, off [3]float32) {
	var lut [3][256]float32
	for k := range ch {
		for v := range 256 {
			lut[k][v] = clip(float32(v)*mul + off[k])
		}
	}
	rowLen := s * ch
	for y := range s {
		row, out := src[y*rowLen:(y+1)*rowLen], dst[y*rowLen:(y+1)*rowLen]
		if ch == 1 {
			for x, v := range row {
				if flip {
					v = row[s-1-x]
				}
				out[x] = lut[0][v]
			}
			continue
		}
		for x := 0; x < rowLen; x += 3 {
			sx := x
			if flip {
				sx = rowLen - 3 - x
			}
			p, o := row[sx:sx+3:sx+3], out[x:x+3:x+3]
			o[0], o[1], o[2] = lut[0][p[0]], lut[1][p[1]], lut[2][p[2]]
		}
	}
}

// lerp4 interpolates bilinearly between a 2×2 neighbourhood (v00 v01 on the
// top row) at (wx, wy), applies the tone v*mul+off and clips to [0, 1].
func lerp4[T sample](v00, v01, v10, v11 T, wx, wy, mul, off float32) float32 {
	t0, t1 := float32(v00), float32(v10)
	top := t0 + (float32(v01)-t0)*wx
	bot := t1 + (float32(v11)-t1)*wx
	return clip((top+(bot-top)*wy)*mul + off)
}

// clip limits v to [0, 1]. Plain comparisons: the built-in min and max
// order NaNs and signed zeros, which costs more than the interpolation here.
func clip(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
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
