package tfsession

import (
	"errors"
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
)

// featureCache holds the backbone's features of each image by path, up to
// a byte budget; images beyond it have theirs computed at every step.
type featureCache struct {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = &featureCache{rows: map[string][]float32{}, max: maxBytes}
	return nil
}

// CachedFeatures reports how many images' features the cache holds.
func (s *Session) CachedFeatures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		return 0
	}
	return len(s.cache.rows)
}

// Features runs the backbone on n preprocessed images (tfcat's input: NHWC,
// BGR, scaled by 1/255) and returns n rows of features.
func (s *Session) Features(x []float32, n int) ([]float32, error) {
	if s.Model.Features.Op == nil {
		return nil, errors.New("the model has no backbone")
	}
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
	out, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.X: t}, []tf.Output{s.Model.Features}, nil)
	if err != nil {
		return nil, fmt.Errorf("computing features: %w", err)
	}
	defer tfc.FreeAll(out)
	f, err := tfc.Float32s(out[0])
	if err != nil {
		return nil, err
	}
	if len(f) != n*net.Base.Features {
		return nil, fmt.Errorf("the backbone gave %d values for %d images of %d features", len(f), n, net.Base.Features)
	}
	return append([]float32(nil), f...), nil
}

// runCached is run for a session that caches features: it looks up or
// computes b's features and feeds them, with the labels (and the learning
// rate when training and set) and extra, in place of the images.
func (s *Session) runCached(b *pixels.Batch, fetches []tf.Output, targets []*tf.Operation, out []float32, train bool, extra map[tf.Output]*tf.Tensor) error {
	net := s.Model.Net
	nf := net.Base.Features
	img := net.Height * net.Width * net.Channels
	switch {
	case b.N <= 0:
		return errors.New("empty batch")
	case len(b.X) < b.N*img || len(b.Y) < b.N*net.Classes:
		return fmt.Errorf("batch of %d images has %d image and %d label values", b.N, len(b.X), len(b.Y))
	}
	c := s.cache
	feats, err := tfc.NewFloat32(int64(b.N), int64(nf))
	if err != nil {
		return err
	}
	defer tfc.Free(feats)
	dst, _ := tfc.Float32s(feats)
	var missing []int
	for i := range b.N {
		if row, ok := c.rows[b.Paths[i]]; ok {
			copy(dst[i*nf:], row)
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
		f, err := s.Features(x, len(missing))
		if err != nil {
			return err
		}
		for j, i := range missing {
			row := f[j*nf : (j+1)*nf]
			copy(dst[i*nf:], row)
			c.miss++
			if c.used+int64(4*nf) <= c.max {
				c.rows[b.Paths[i]] = row
				c.used += int64(4 * nf)
			}
		}
	}
	y, err := tfc.NewFloat32(int64(b.N), int64(net.Classes))
	if err != nil {
		return err
	}
	defer tfc.Free(y)
	ys, _ := tfc.Float32s(y)
	copy(ys, b.Y[:b.N*net.Classes])
	feeds := map[tf.Output]*tf.Tensor{s.Model.Features: feats, s.Model.Labels: y}
	for k, v := range extra {
		feeds[k] = v
	}
	if train && s.steps.in[2] != nil {
		feeds[s.Model.LearningRate] = s.steps.in[2]
	}
	res, err := s.s.Run(feeds, fetches, targets)
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
