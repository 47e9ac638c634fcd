package dataset

import (
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/tfcat/tfcat/internal/parallel"
	"github.com/tfcat/tfcat/pixels"
)

// store holds the pixels of a Load-ed set, or decodes files for Open.
type store struct {
	pix    []uint8 // Load: image slot i is pix[i*imgLen:(i+1)*imgLen]
	imgLen int

	stream    bool // Open: decode per batch
	maxPixels int
	mode      pixels.ResizeMode
	workers   int
	strict    bool
	set       *Set
}

// Split is an ordered list of examples served in batches with the
// tutorial's next_batch semantics. A Split is not safe for concurrent use.
type Split struct {
	examples  []example
	store     *store
	classes   int
	size      int
	channels  int
	reshuffle bool
	rng       *rand.Rand

	index  int // the tutorial's _index_in_epoch
	epochs int // the tutorial's _epochs_done

	scratch []*scratch // per-worker buffers when streaming
}

// Len is the number of examples in the split.
func (s *Split) Len() int { return len(s.examples) }

// Epochs is the number of times NextBatch has wrapped around to the start
// (the tutorial's epochs_done).
func (s *Split) Epochs() int { return s.epochs }

// Index is the position of the next batch in the current epoch (the
// tutorial's index_in_epoch).
func (s *Split) Index() int { return s.index }

// Label returns the class index of example i (in the split's current order).
func (s *Split) Label(i int) int { return s.examples[i].label }

// Path returns the file of example i.
func (s *Split) Path(i int) string { return s.examples[i].path }

// Image returns example i as the 8-bit Size×Size image (decoding it when
// the set is streamed).
func (s *Split) Image(i int) (*Image, error) {
	if i < 0 || i >= len(s.examples) {
		return nil, fmt.Errorf("example %d out of range [0, %d)", i, len(s.examples))
	}
	out := NewImage(s.size, s.size, s.channels)
	e := s.examples[i]
	if !s.store.stream {
		copy(out.Pix, s.store.pix[e.slot*s.store.imgLen:])
		return out, nil
	}
	var sc scratch
	data, err := sc.readFile(e.path)
	if err == nil {
		_, err = sc.preprocessMode(data, s.size, s.channels, s.store.maxPixels, s.store.mode, out.Pix)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.path, err)
	}
	return out, nil
}

// NextBatch fills b with the next n examples, as the tutorial's next_batch:
// batches follow the split's order; when the next batch would run past the
// end, the epoch counter increments (and the split is reshuffled if
// Options.Reshuffle is set) and the batch starts again at the first
// example, so the last, shorter part of an epoch is never returned. n must
// be between 1 and Len().
func (s *Split) NextBatch(n int, b *pixels.Batch) error { return s.NextAugmented(n, b, nil) }

// NextAugmented is NextBatch with g's random transforms applied to each
// image as its pixels are converted to float32 (nil g: none). Training
// batches take this path: one pass over the pixels instead of a conversion
// and then a transform.
func (s *Split) NextAugmented(n int, b *pixels.Batch, g *Augmenter) error {
	return s.NextPart(n, 0, 1, b, g)
}

// NextPart is NextAugmented for one of several replicas that share each
// batch of n (data-parallel training): the split moves on by n examples on
// every replica alike, g draws the transforms of all n, and b gets the
// part-th of of equal shares of them (of must divide n). When the split is
// streamed only that share's files are decoded, so an unusable file is an
// error naming it: the other replicas could not drop it too.
func (s *Split) NextPart(n, part, of int, b *pixels.Batch, g *Augmenter) error {
	if g != nil && (g.size != s.size || g.ch != s.channels) {
		return fmt.Errorf("augment: augmenter for %dx%dx%d images, split of %dx%dx%d", g.size, g.size, g.ch, s.size, s.size, s.channels)
	}
	if len(s.examples) == 0 {
		return errEmpty
	}
	if n <= 0 || n > len(s.examples) {
		return fmt.Errorf("batch size %d out of range [1, %d]", n, len(s.examples))
	}
	if of <= 0 || part < 0 || part >= of || n%of != 0 {
		return fmt.Errorf("part %d of %d of a batch of %d: the parts must be equal", part, of, n)
	}
	for {
		start, index, epochs := s.index, s.index+n, s.epochs
		wrapped := false
		if index > len(s.examples) {
			epochs++
			start, index = 0, n
			wrapped = true
		}
		if wrapped && s.reshuffle {
			shuffle(s.rng, s.examples)
		}
		per := n / of
		// A share's unusable file is an error (strict): the other replicas
		// could not drop it too.
		bad, err := s.fill(s.examples[start:index], part*per, (part+1)*per, of > 1, b, g)
		if err != nil {
			return err
		}
		if len(bad) == 0 {
			s.index, s.epochs = index, epochs
			return nil
		}
		// Streaming found unusable files: drop them and try again.
		s.examples = deleteExamples(s.examples, start, bad)
		if n > len(s.examples) {
			return fmt.Errorf("batch size %d: only %d usable examples left", n, len(s.examples))
		}
		if s.index > len(s.examples) {
			s.index = len(s.examples)
		}
	}
}

func deleteExamples(ex []example, start int, bad []int) []example {
	out := ex[:start]
	j := 0
	for i := start; i < len(ex); i++ {
		if j < len(bad) && bad[j] == i-start {
			j++
			continue
		}
		out = append(out, ex[i])
	}
	return out
}

// fill converts all[lo:hi] into b, transformed by g when not nil (g draws
// for all of them). When streaming, it returns the indexes (in all[lo:hi])
// of unusable files, or, in strict mode or with strict, an error.
func (s *Split) fill(all []example, lo, hi int, strict bool, b *pixels.Batch, g *Augmenter) (bad []int, err error) {
	ex := all[lo:hi]
	n := len(ex)
	imgLen := s.store.imgLen
	b.N = n
	b.X = growFloat(b.X, n*imgLen)
	b.Y = growFloat(b.Y, n*s.classes)
	clear(b.Y)
	if cap(b.Labels) < n {
		b.Labels = make([]int, n)
	}
	b.Labels = b.Labels[:n]
	if cap(b.Paths) < n {
		b.Paths = make([]string, n)
	}
	b.Paths = b.Paths[:n]
	for k, e := range ex {
		b.Labels[k] = e.label
		b.Paths[k] = e.path
		b.Y[k*s.classes+e.label] = 1
	}
	if g != nil {
		// Each image's transform is drawn here, in order, so that the batch
		// does not depend on which decoding worker takes which image (nor
		// on which replica takes which share).
		g.draws = g.draws[:0]
		for range all {
			g.draws = append(g.draws, g.next())
		}
	}
	if !s.store.stream {
		for k, e := range ex {
			dst, src := b.X[k*imgLen:(k+1)*imgLen], s.store.pix[e.slot*imgLen:(e.slot+1)*imgLen]
			if g != nil {
				render(dst, src, 1.0/255, s.size, s.channels, g.a.Fill, g.draws[lo+k])
			} else {
				toFloat32(dst, src)
			}
		}
		return nil, nil
	}
	convert := func(k int, dst []float32, src []uint8) { toFloat32(dst, src) }
	if g != nil {
		convert = func(k int, dst []float32, src []uint8) {
			render(dst, src, 1.0/255, s.size, s.channels, g.a.Fill, g.draws[lo+k])
		}
	}
	for len(s.scratch) < min(s.store.workers, n) {
		s.scratch = append(s.scratch, &scratch{})
	}
	return s.store.decodeBatch(ex, b.X, s.size, s.channels, s.scratch, strict, convert)
}

func growFloat(f []float32, n int) []float32 {
	if cap(f) < n {
		return make([]float32, n)
	}
	return f[:n]
}

// decodeBatch decodes ex in parallel into x, one goroutine per scratch,
// each image's pixels converted by convert; an unusable file is an error
// in strict mode or with strict, else skipped and its index returned.
func (st *store) decodeBatch(ex []example, x []float32, size, channels int, scr []*scratch, strict bool, convert func(k int, dst []float32, src []uint8)) ([]int, error) {
	n := len(ex)
	errs := make([]error, n)
	parallel.For(n, len(scr), func(w, k int) bool {
		sc := scr[w]
		sc.pix = grow(sc.pix, st.imgLen)
		data, err := sc.readFile(ex[k].path)
		if err == nil {
			_, err = sc.preprocessMode(data, size, channels, st.maxPixels, st.mode, sc.pix)
		}
		if err != nil {
			errs[k] = err
			return true
		}
		convert(k, x[k*st.imgLen:(k+1)*st.imgLen], sc.pix)
		return true
	})
	var bad []int
	for k, err := range errs {
		if err == nil {
			continue
		}
		if st.strict || strict {
			return nil, fmt.Errorf("%s: %w", ex[k].path, err)
		}
		st.set.skip(ex[k], err)
		bad = append(bad, k)
	}
	return bad, nil
}

// newRand returns the generator that shuffles a set: PCG seeded from seed,
// so that shuffles do not depend on the Go version's global generator.
func newRand(seed int64) *rand.Rand { return newRandStream(seed, 0) }

func newRandStream(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x7466636174_0000+stream))
}

// shuffle is a Fisher–Yates shuffle with its own bounded draws (Lemire's
// method), fixed so that a seed gives the same order in every Go version.
func shuffle(r *rand.Rand, ex []example) {
	for i := len(ex) - 1; i > 0; i-- {
		j := bounded(r, uint64(i+1))
		ex[i], ex[j] = ex[j], ex[i]
	}
}

func bounded(r *rand.Rand, n uint64) int {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return int(hi)
}
