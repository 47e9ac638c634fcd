package serving

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tfcat/tfcat/tfsession"
)

// errClosed answers predictions asked for after Close.
var errClosed = errors.New("the model server is shutting down")

// job is one request's images on their way through the batcher.
type job struct {
	x    []float32
	n    int
	done chan result // buffered: the batcher never waits for a reader
}

type result struct {
	probs []float32
	err   error
}

// batcher merges concurrent requests into one Predict call: the first job of
// a batch waits up to wait for others, until maxBatch images are collected.
// A job is never split; one larger than maxBatch runs alone.
type batcher struct {
	m        tfsession.Classifier
	size, k  int // values per image, classes
	maxBatch int
	wait     time.Duration

	queue chan *job // unbuffered: after quit, no job can be left in it
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	batches, images atomic.Int64
	largest         atomic.Int64

	// onBatch, when set, is told of each batch run (Config.OnBatch).
	onBatch func(images, requests int, d time.Duration, err error)
}

func newBatcher(m tfsession.Classifier, maxBatch int, wait time.Duration, onBatch func(images, requests int, d time.Duration, err error)) *batcher {
	h, w, c := m.InputSize()
	b := &batcher{m: m, size: h * w * c, k: m.NumClasses(), maxBatch: maxBatch, wait: wait,
		queue: make(chan *job), quit: make(chan struct{}), onBatch: onBatch}
	b.wg.Add(1)
	go b.loop()
	return b
}

// predict runs n images through the model with other requests' images. It
// returns early, with ctx's error, when ctx ends first.
func (b *batcher) predict(ctx context.Context, x []float32, n int) ([]float32, error) {
	j := &job{x: x, n: n, done: make(chan result, 1)}
	select {
	case b.queue <- j:
	case <-b.quit:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-j.done:
		return r.probs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close stops the batcher once the batch in progress is answered.
func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	var next *job // a job that did not fit the previous batch
	var buf []float32
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.quit:
				return
			}
		}
		batch := []*job{first}
		n := first.n
		var timer *time.Timer
		var timeout <-chan time.Time
		if b.wait > 0 && n < b.maxBatch {
			timer = time.NewTimer(b.wait)
			timeout = timer.C
		}
	collect:
		for n < b.maxBatch {
			var j *job
			if timeout == nil {
				select {
				case j = <-b.queue:
				default:
					break collect
				}
			} else {
				select {
				case j = <-b.queue:
				case <-timeout:
					break collect
				}
			}
			if n+j.n > b.maxBatch {
				next = j
				break
			}
			batch = append(batch, j)
			n += j.n
		}
		if timer != nil {
			timer.Stop()
		}
		buf = b.run(batch, n, buf)
	}
}

// run predicts one batch and answers its jobs.
func (b *batcher) run(batch []*job, n int, buf []float32) []float32 {
	var x []float32
	if len(batch) == 1 {
		x = batch[0].x
	} else {
		buf = buf[:0]
		for _, j := range batch {
			buf = append(buf, j.x[:j.n*b.size]...)
		}
		x = buf
	}
	t0 := time.Now()
	probs, err := b.safePredict(x, n)
	d := time.Since(t0)
	if err == nil && len(probs) != n*b.k {
		err = fmt.Errorf("the model returned %d probabilities for %d images of %d classes", len(probs), n, b.k)
	}
	if b.onBatch != nil {
		b.onBatch(n, len(batch), d, err)
	}
	b.batches.Add(1)
	b.images.Add(int64(n))
	for {
		l := b.largest.Load()
		if int64(n) <= l || b.largest.CompareAndSwap(l, int64(n)) {
			break
		}
	}
	off := 0
	for _, j := range batch {
		if err != nil {
			j.done <- result{err: err}
			continue
		}
		j.done <- result{probs: probs[off*b.k : (off+j.n)*b.k : (off+j.n)*b.k]}
		off += j.n
	}
	return buf
}

// safePredict turns a panic of the model into an error: one bad batch must
// not take the server down.
func (b *batcher) safePredict(x []float32, n int) (p []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the model panicked: %v", r)
		}
	}()
	return b.m.Predict(x, n)
}
