package serving

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
)

// errExhausted is a wait for memory or a request slot that the request's
// deadline ended: TensorFlow Serving's RESOURCE_EXHAUSTED, HTTP 503.
var errExhausted = errors.New("resource exhausted")

// errTooBig is a request needing more than the whole budget: it can never
// be served (HTTP 413).
var errTooBig = errors.New("request too large")

// budget is a weighted semaphore: requests acquire bytes (or slots) and wait,
// first come first served, until enough is free or their context ends.
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters list.List // of *waiter
	what    string    // "bytes of decode memory" or "request slots", for errors
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

func newBudget(size int64, what string) *budget { return &budget{size: size, what: what} }

// acquire takes n, waiting while others hold the rest or wait before it. It
// fails at once when n exceeds the whole budget, and with errExhausted when
// ctx ends first.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if n > b.size {
		return fmt.Errorf("%w: %d of the server's %s needed, and it has %d in all", errTooBig, n, b.what, b.size)
	}
	b.mu.Lock()
	if b.size-b.used >= n && b.waiters.Len() == 0 {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Granted just as ctx ended: give it back.
		b.used -= n
	default:
		b.waiters.Remove(e)
	}
	// Its place in the queue may have held others back.
	b.grant()
	used := b.used
	b.mu.Unlock()
	return fmt.Errorf("%w: waited %s for %d of the server's %s (%d of %d in use): %w", errExhausted, describeWait(ctx), n, b.what, used, b.size, ctx.Err())
}

func describeWait(ctx context.Context) string {
	if _, ok := ctx.Deadline(); ok {
		return "until the request's deadline"
	}
	return "until the request ended"
}

// release returns n.
func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("serving: budget released more than acquired")
	}
	b.grant()
	b.mu.Unlock()
}

// grant wakes waiters in order while they fit; called with mu held.
func (b *budget) grant() {
	for {
		e := b.waiters.Front()
		if e == nil {
			return
		}
		w := e.Value.(*waiter)
		if b.size-b.used < w.n {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// held reports the amount in use.
func (b *budget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
