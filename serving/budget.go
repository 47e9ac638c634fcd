package serving

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// errExhausted is a wait for memory or a request slot that the request's
// deadline ended: TensorFlow Serving's RESOURCE_EXHAUSTED, HTTP 503.
var errExhausted = errors.New("resource exhausted")

// errTooBig is a request needing more than the whole budget: it can never
// be served (HTTP 413).
var errTooBig = errors.New("request too large")

// budget is a first-come-first-served weighted semaphore of bytes (or
// slots) with what the server's errors and Stats need around it: a request
// over the whole budget fails at once, and the amount in use is readable.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	used atomic.Int64
	what string // "bytes of decode memory" or "request slots", for errors
}

func newBudget(size int64, what string) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size, what: what}
}

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
	if err := b.sem.Acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: waited %s for %d of the server's %s (%d of %d in use): %w", errExhausted, describeWait(ctx), n, b.what, b.used.Load(), b.size, err)
	}
	b.used.Add(n)
	return nil
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
	b.used.Add(-n)
	b.sem.Release(n) // panics when released more than acquired: a server bug
}

// held reports the amount in use.
func (b *budget) held() int64 { return b.used.Load() }
