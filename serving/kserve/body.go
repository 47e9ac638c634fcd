package kserve

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bodyChunk is the most memory a body of unknown length takes from the
// budget at a time as it arrives.
const bodyChunk = 1 << 20

// readBody reads r's body, decoding a gzip or deflate Content-Encoding,
// within Options.MaxBodyBytes, taking Options.BodyMemory as it arrives.
// release returns the memory; call it once the body is no longer used (also
// after an error).
func (h *handler) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	var taken int64
	release = func() { h.bodies.release(taken) }
	limit := h.opt.MaxBodyBytes
	tooBig := func() error {
		return status.Errorf(codes.ResourceExhausted, "the request body exceeds the limit of %d bytes", limit)
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	encoding := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	known := r.ContentLength // the decoded length, when known
	switch encoding {
	case "", "identity":
		if known > limit {
			return nil, release, status.Errorf(codes.ResourceExhausted, "the request body of %d bytes exceeds the limit of %d", known, limit)
		}
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, release, invalid("the gzip request body: %v", err)
		}
		src, known = zr, -1
	case "deflate":
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, release, invalid("the deflate request body: %v", err)
		}
		src, known = zr, -1
	default:
		return nil, release, unsupportedEncoding(encoding)
	}
	// Decoded data are limited here too: one byte past the limit tells a
	// body over it.
	src = io.LimitReader(src, limit+1)
	take := func(n int64) error {
		if err := h.bodies.acquire(ctx, n); err != nil {
			return err
		}
		taken += n
		return nil
	}
	var buf []byte
	if known > 0 {
		if err := take(known + 1); err != nil {
			return nil, release, err
		}
		buf = make([]byte, 0, known+1)
	}
	for {
		if len(buf) == cap(buf) {
			// Grow by up to a chunk, taking its memory first (with the
			// copy, the old buffer is held too until the next GC).
			grow := min(max(int64(cap(buf)), 512), bodyChunk)
			if err := take(grow); err != nil {
				return nil, release, err
			}
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, release, tooBig()
		}
		var mb *http.MaxBytesError
		switch {
		case err == io.EOF:
			return buf, release, nil
		case errors.As(err, &mb):
			return nil, release, tooBig()
		case err != nil:
			return nil, release, invalid("reading the request body: %v", err)
		}
	}
}

// unsupportedEncoding is 415 over REST.
type unsupportedEncoding string

func (e unsupportedEncoding) Error() string {
	return fmt.Sprintf("Content-Encoding %q: the request body may be gzip, deflate or not encoded", string(e))
}

// budget is the bytes request bodies may hold at once: a first-come,
// first-served weighted semaphore.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	used atomic.Int64
}

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// acquire takes n bytes, waiting while ctx lasts: RESOURCE_EXHAUSTED for n
// over the whole budget at once, or with ctx's error (HTTP 503) when the
// wait runs out.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if n > b.size {
		return status.Errorf(codes.ResourceExhausted, "the request body needs %d bytes of the %d that request bodies may hold at once", n, b.size)
	}
	if err := b.sem.Acquire(ctx, n); err != nil {
		return exhausted{fmt.Errorf("waited for %d bytes of memory for the request body (%d of %d in use): %w", n, b.used.Load(), b.size, err)}
	}
	b.used.Add(n)
	return nil
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	b.sem.Release(n)
}

// exhausted is a wait for memory that ran out of time: RESOURCE_EXHAUSTED,
// HTTP 503.
type exhausted struct{ error }

func (e exhausted) Unwrap() error { return e.error }
