package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/tfcat/tfcat/dataset"
)

// What one request may cost, and how the server sheds load, in one place:
// a body of known length takes its bytes of DecodeMemory, and the tensor it
// parses into, in one acquire before it is read; a body of unknown length
// (chunked) takes bodyChunk at a time as it arrives; decodes take their share
// while they run; every wait ends at the request's deadline with 503.
//
// Taking what a body will need in one go is what lets requests that each fit
// the budget but not all at once be served in turn: taken piece by piece,
// every request could hold part of the budget and wait for more that only
// the others could give back (found by loadtest: 32 clients sending 32
// float-tensor images each, 570 MB of bodies against 512 MB, all failed at
// their deadlines). The price: a client that declares a large body and sends
// it slowly holds its reservation until ReadTimeout ends the read.

// bodyChunk is how much of DecodeMemory a body of unknown length takes at a
// time as it is read.
const bodyChunk = 1 << 20

// freeThreshold and freeInterval: after a decode of at least freeThreshold
// bytes, once the server holds no decode memory, the Go heap's free pages go
// back to the OS (debug.FreeOSMemory), at most once per freeInterval. Without
// it a spike of large decodes leaves the process at its peak RSS: the Go
// runtime returns free memory only slowly.
const (
	freeThreshold = 64 << 20
	freeInterval  = time.Second
)

func (cfg *Config) limitDefaults() error {
	if cfg.MaxImagePixels == 0 {
		cfg.MaxImagePixels = DefaultMaxImagePixels
	}
	if cfg.DecodeMemory == 0 {
		cfg.DecodeMemory = DefaultDecodeMemory
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxConcurrentRequests == 0 {
		cfg.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxImagePixels < 0 || cfg.DecodeMemory < 0 || cfg.RequestTimeout < 0 || cfg.MaxConcurrentRequests < 0 ||
		cfg.MaxConnections < 0 || cfg.ReadHeaderTimeout < 0 || cfg.ReadTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxHeaderBytes < 0 {
		return errors.New("serving: the limits (max image pixels, decode memory, timeouts, max requests and connections, max header bytes) must be positive")
	}
	return nil
}

// HTTPServer returns an http.Server for s with the configured timeouts and
// header limit; its WriteTimeout leaves the handler its RequestTimeout.
// Serve it on Listener(ln) to bound the connections too; set ErrorLog as
// needed.
func (s *Server) HTTPServer() *http.Server { return httpServer(s.cfg, s) }

func httpServer(cfg Config, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadHeaderTimeout + cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}
}

// Listener wraps ln so that at most MaxConnections connections are open at
// once: Accept waits for one to close, leaving new clients in the listen
// backlog.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, s.cfg.MaxConnections)
}

// held is what one request holds of the server's budgets, released at its end.
type held struct {
	s     *Server
	mem   int64
	spare int64 // of mem, reserved for a later take (the parsed tensor)
	slot  bool
	large bool // it decoded a large image: free memory afterwards
}

// take takes n of the decode memory, from what the request reserved first.
func (h *held) take(ctx context.Context, n int64) error {
	from := min(n, h.spare)
	h.spare -= from
	if err := h.s.mem.acquire(ctx, n-from); err != nil {
		return err
	}
	h.mem += n - from
	return nil
}

// reserve takes n to be used by later takes.
func (h *held) reserve(ctx context.Context, n int64) error {
	if err := h.take(ctx, n); err != nil {
		return err
	}
	h.spare += n
	return nil
}

// unreserve returns what was reserved and not taken.
func (h *held) unreserve() {
	h.s.mem.release(h.spare)
	h.mem -= h.spare
	h.spare = 0
}

func (h *held) release() {
	h.s.mem.release(h.mem)
	h.mem, h.spare = 0, 0
	if h.slot {
		h.s.slots.release(1)
		h.slot = false
	}
	if h.large {
		h.s.freeMemory()
	}
}

// freeMemory returns the Go heap's free pages to the OS once no decode memory
// is held, at most once per freeInterval, off the request's path.
func (s *Server) freeMemory() {
	if s.mem.held() > 0 {
		return // the last large decode to finish frees
	}
	now := time.Now().UnixNano()
	if last := s.lastFree.Load(); now-last < int64(freeInterval) || !s.lastFree.CompareAndSwap(last, now) {
		return
	}
	if !s.freeing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.freeing.Store(false)
		debug.FreeOSMemory()
	}()
}

// readBody reads the request body within MaxBodyBytes, taking DecodeMemory
// for it and reserving parsed(its length) more for what the caller parses
// it into (nil: nothing), in one acquire when the length is known. It writes
// the error reply itself and returns nil when it fails.
func (s *Server) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request, h *held, parsed func(n int64) int64) []byte {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes))
		return nil
	}
	if parsed == nil {
		parsed = func(int64) int64 { return 0 }
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	lr := http.MaxBytesReader(w, body, s.cfg.MaxBodyBytes)
	var buf []byte
	if r.ContentLength > 0 {
		// The body and its tensor in one acquire (see the top of the
		// file); one byte more lets the read see EOF without growing.
		if err := h.reserve(ctx, r.ContentLength+1+parsed(r.ContentLength)); err != nil {
			s.budgetError(w, err)
			return nil
		}
		if err := h.take(ctx, r.ContentLength+1); err != nil { // reserved: no wait
			s.budgetError(w, err)
			return nil
		}
		buf = make([]byte, 0, r.ContentLength+1)
	}
	for {
		if len(buf) == cap(buf) {
			// Grow by up to a chunk, taking its memory first (with the
			// copy, the old buffer is held too until the next GC).
			grow := min(max(int64(cap(buf)), 512), bodyChunk)
			if err := h.take(ctx, grow); err != nil {
				s.budgetError(w, err)
				return nil
			}
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if r.ContentLength <= 0 {
				if err := h.reserve(ctx, parsed(int64(len(buf)))); err != nil {
					s.budgetError(w, err)
					return nil
				}
			}
			return buf
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			s.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
			return nil
		case err != nil:
			s.reject(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return nil
		}
	}
}

// budgetError answers a failed wait for memory or a request slot.
func (s *Server) budgetError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errTooBig):
		s.reject(w, http.StatusRequestEntityTooLarge, err.Error())
	default:
		s.rejected[rejectedBusy].Add(1)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	}
}

// Reasons a request was turned away, counted for Stats.
const (
	rejectedLimit   = iota // over a size limit: 400 or 413
	rejectedBusy           // no memory or slot within the deadline: 503
	rejectedTimeout        // deadline passed while predicting: 504
)

func (s *Server) reject(w http.ResponseWriter, code int, msg string) {
	s.rejected[rejectedLimit].Add(1)
	writeError(w, code, msg)
}

// decodeImage preprocesses one encoded image within the pixel limit, holding
// its decode memory while it decodes.
func (s *Server) decodeImage(ctx context.Context, data []byte, h *held, mu *sync.Mutex) ([]float32, error) {
	hdr, err := dataset.ReadHeader(data)
	if err != nil {
		return nil, err
	}
	if px := hdr.Pixels(); px > int64(s.cfg.MaxImagePixels) {
		return nil, fmt.Errorf("%w: %s of %dx%d is %d pixels, the server's limit is %d", dataset.ErrTooLarge, hdr.Format, hdr.Width, hdr.Height, px, s.cfg.MaxImagePixels)
	}
	need := hdr.DecodeMemory(s.c)
	if err := s.mem.acquire(ctx, need); err != nil {
		return nil, err
	}
	defer s.mem.release(need)
	if need >= freeThreshold {
		mu.Lock()
		h.large = true
		mu.Unlock()
	}
	return dataset.PreprocessMode(data, s.h, s.c, s.cfg.MaxImagePixels, s.resize)
}
