package trainer

import (
	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/pixels"
)

// prefetcher serves a split's batches to the training loop: a goroutine fills
// the next batch (decoding it, when streaming) while the session runs the
// current one. Two batches take turns, so nothing is allocated per step once
// both have grown to the batch size.
type prefetcher struct {
	ready chan filled
	free  chan *pixels.Batch
	stop  chan struct{}
	held  *pixels.Batch // the batch the loop is using
}

type filled struct {
	b   *pixels.Batch
	err error
}

func newPrefetcher(split *dataset.Split, n int) *prefetcher {
	return partPrefetcher(split, n, 0, 1, nil)
}

// partPrefetcher serves the part-th of of shares of split's batches of n
// (dataset.Split.NextPart; 0 of 1 is the whole batch); aug, when not nil,
// transforms each image as the goroutine fills the batch.
func partPrefetcher(split *dataset.Split, n, part, of int, aug *dataset.Augmenter) *prefetcher {
	p := &prefetcher{ready: make(chan filled, 1), free: make(chan *pixels.Batch, 2), stop: make(chan struct{})}
	p.free <- new(pixels.Batch)
	p.free <- new(pixels.Batch)
	go func() {
		for {
			var b *pixels.Batch
			select {
			case b = <-p.free:
			case <-p.stop:
				return
			}
			err := split.NextPart(n, part, of, b, aug)
			select {
			case p.ready <- filled{b, err}:
			case <-p.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// next returns the next batch, valid until the following call; the batch
// returned before goes back to be refilled.
func (p *prefetcher) next() (*pixels.Batch, error) {
	if p.held != nil {
		p.free <- p.held
		p.held = nil
	}
	r := <-p.ready
	if r.err != nil {
		return nil, r.err
	}
	p.held = r.b
	return r.b, nil
}

// close stops the goroutine.
func (p *prefetcher) close() { close(p.stop) }
