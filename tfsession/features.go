package tfsession

import (
	"errors"
	"fmt"
	"maps"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
)

// featureCache holds, for each image by path, the tensors a step reads in
// place of the image (outs: the frozen backbone's features, or a
// fine-tuned backbone's cut), up to a byte budget; images beyond it have
// theirs computed at every step.
type featureCache struct {
	outs       []tf.Output // fed to a step
	fetch      []tf.Output // what computes outs: the same, or Identities of them
	shapes     [][]int64   // each out's shape without the batch dimension
	width      int         // float32 values per image over all outs
	rows       map[string][]float32
	used, max  int64
	hits, miss int
}

// CacheFeatures makes Step and Evaluate keep the backbone's features of
// every image they see, by path, up to maxBytes in all, and train or
// evaluate the head on them: the frozen backbone then runs once per image
// rather than once per epoch. Only for images that are the same at every
// step: not with augmentation. The model must have a backbone.
func (s *Session) CacheFeatures(maxBytes int64) error {
	if s.Model.Features.Op == nil {
		return errors.New("caching features needs a model on a backbone")
	}
	nf := s.Model.Net.Base.Features
	f := []tf.Output{s.Model.Features}
	return s.startCache(&featureCache{outs: f, fetch: f, shapes: [][]int64{{int64(nf)}}, width: nf, max: maxBytes})
}

// CacheCut makes Step and Evaluate keep the cut's tensors of every image
// they see, by path, up to maxBytes in all, and feed them in place of the
// image: TensorFlow then skips the frozen part below the cut, which runs
// once per image, while the fine-tuned layers above it, the head and their
// gradients run at every step. cut is the model's FrozenCut. As with
// CacheFeatures, only for images that are the same at every step.
func (s *Session) CacheCut(cut *tfgraph.Cut, maxBytes int64) error {
	if cut == nil || len(cut.Tensors) == 0 || len(cut.Shapes) != len(cut.Tensors) || len(cut.Fetch) != len(cut.Tensors) {
		return errors.New("caching a cut needs its tensors, their fetches and their shapes")
	}
	return s.startCache(&featureCache{outs: cut.Tensors, fetch: cut.Fetch, shapes: cut.Shapes, width: cut.Values, max: maxBytes})
}

func (s *Session) startCache(c *featureCache) error {
	c.rows = map[string][]float32{}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = c
	return nil
}

// CachedFeatures reports how many images' features (or cut tensors) the
// cache holds.
func (s *Session) CachedFeatures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		return 0
	}
	return len(s.cache.rows)
}

// CacheStats reports how many images' cached tensors steps have read
// (hits) and how many they computed (misses) since the cache started.
func (s *Session) CacheStats() (hits, misses int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		return 0, 0
	}
	return s.cache.hits, s.cache.miss
}

// Features runs the backbone on n preprocessed images (tfcat's input: NHWC,
// BGR, scaled by 1/255) and returns n rows of features.
func (s *Session) Features(x []float32, n int) ([]float32, error) {
	if s.Model.Features.Op == nil {
		return nil, errors.New("the model has no backbone")
	}
	nf := s.Model.Net.Base.Features
	f, err := s.compute([]tf.Output{s.Model.Features}, []int{nf}, x, n)
	if err != nil {
		return nil, fmt.Errorf("computing features: %w", err)
	}
	return f, nil
}

// compute runs outs on n preprocessed images and returns n rows of their
// values, each row the image's widths[k] values of each outs[k] in turn.
func (s *Session) compute(outs []tf.Output, widths []int, x []float32, n int) ([]float32, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	net := s.Model.Net
	t, err := tfc.NewFloat32(int64(n), int64(net.Height), int64(net.Width), int64(net.Channels))
	if err != nil {
		return nil, err
	}
	defer tfc.Free(t)
	dst, _ := tfc.Float32s(t)
	if len(x) < len(dst) {
		return nil, fmt.Errorf("%d images need %d values, have %d", n, len(dst), len(x))
	}
	copy(dst, x)
	res, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.X: t}, outs, nil)
	if err != nil {
		return nil, err
	}
	defer tfc.FreeAll(res)
	width := 0
	for _, w := range widths {
		width += w
	}
	rows := make([]float32, n*width)
	at := 0 // where outs[k] starts in a row
	for k, r := range res {
		v, err := tfc.Float32s(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", outs[k].Op.Name(), err)
		}
		w := widths[k]
		if len(v) != n*w {
			return nil, fmt.Errorf("%s gave %d values for %d images of %d", outs[k].Op.Name(), len(v), n, w)
		}
		for i := range n {
			copy(rows[i*width+at:], v[i*w:(i+1)*w])
		}
		at += w
	}
	return rows, nil
}

// runCached is run for a session that caches features: it looks up or
// computes the cached tensors of b's images and feeds them, with the labels
// (and the learning rate when training and set) and extra, in place of the
// images.
func (s *Session) runCached(b *pixels.Batch, fetches []tf.Output, targets []*tf.Operation, out []float32, train bool, extra map[tf.Output]*tf.Tensor) error {
	net := s.Model.Net
	c := s.cache
	img := net.Height * net.Width * net.Channels
	switch {
	case b.N <= 0:
		return errors.New("empty batch")
	case len(b.X) < b.N*img || len(b.Y) < b.N*net.Classes:
		return fmt.Errorf("batch of %d images has %d image and %d label values", b.N, len(b.X), len(b.Y))
	}
	widths := make([]int, len(c.outs))
	feeds := map[tf.Output]*tf.Tensor{}
	defer func() {
		for _, t := range feeds {
			tfc.Free(t)
		}
	}()
	dst := make([][]float32, len(c.outs))
	for k, o := range c.outs {
		w := 1
		for _, d := range c.shapes[k] {
			w *= int(d)
		}
		widths[k] = w
		t, err := tfc.NewFloat32(append([]int64{int64(b.N)}, c.shapes[k]...)...)
		if err != nil {
			return err
		}
		feeds[o] = t
		dst[k], _ = tfc.Float32s(t)
	}
	// put copies image i's row into the feeds.
	put := func(i int, row []float32) {
		at := 0
		for k, w := range widths {
			copy(dst[k][i*w:(i+1)*w], row[at:at+w])
			at += w
		}
	}
	var missing []int
	for i := range b.N {
		if row, ok := c.rows[b.Paths[i]]; ok {
			put(i, row)
			c.hits++
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		x := make([]float32, len(missing)*img)
		for j, i := range missing {
			copy(x[j*img:(j+1)*img], b.X[i*img:(i+1)*img])
		}
		f, err := s.compute(c.fetch, widths, x, len(missing))
		if err != nil {
			return fmt.Errorf("computing the cached tensors: %w", err)
		}
		for j, i := range missing {
			row := f[j*c.width : (j+1)*c.width]
			put(i, row)
			c.miss++
			if c.used+int64(4*c.width) <= c.max {
				c.rows[b.Paths[i]] = row
				c.used += int64(4 * c.width)
			}
		}
	}
	y, err := tfc.NewFloat32(int64(b.N), int64(net.Classes))
	if err != nil {
		return err
	}
	feeds[s.Model.Labels] = y
	ys, _ := tfc.Float32s(y)
	copy(ys, b.Y[:b.N*net.Classes])
	run := maps.Clone(feeds) // feeds holds what this call frees
	for k, v := range extra {
		run[k] = v
	}
	if train && s.steps.in[2] != nil {
		run[s.Model.LearningRate] = s.steps.in[2]
	}
	res, err := s.s.Run(run, fetches, targets)
	if err != nil {
		return err
	}
	defer tfc.FreeAll(res)
	for i := range out {
		v, err := tfc.Float32s(res[i])
		if err != nil || len(v) != 1 {
			return fmt.Errorf("fetch %d is not a scalar", i)
		}
		out[i] = v[0]
	}
	return nil
}
