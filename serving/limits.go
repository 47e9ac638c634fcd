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

	"github.com/tfcat/tfcat/dataset"
)

// What one request may cost, and how the server sheds load, in one place:
// bodies are read into DecodeMemory as they arrive (bodyChunk at a time),
// parsed tensors and decodes take their share while they live, and every
// wait ends at the request's deadline with 503.

// bodyChunk is how much of DecodeMemory a body takes at a time as it is read:
// a client that says it sends 32 MB and sends a byte a second holds 1 MB.
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
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.ReadHeaderTimeout + s.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
	}
}

// Listener wraps ln so that at most MaxConnections connections are open at
// once: Accept waits for one to close, leaving new clients in the listen
// backlog.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, s.cfg.MaxConnections), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// held is what one request holds of the server's budgets, released at its end.
type held struct {
	s     *Server
	mem   int64
	slot  bool
	large bool // it decoded a large image: free memory afterwards
}

func (h *held) take(ctx context.Context, n int64) error {
	if err := h.s.mem.acquire(ctx, n); err != nil {
		return err
	}
	h.mem += n
	return nil
}

func (h *held) release() {
	h.s.mem.release(h.mem)
	h.mem = 0
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

// readBody reads the request body within MaxBodyBytes, taking DecodeMemory as
// it arrives. It writes the error reply itself and returns nil when it fails.
func (s *Server) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request, h *held) []byte {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes))
		return nil
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	lr := http.MaxBytesReader(w, body, s.cfg.MaxBodyBytes)
	var buf []byte
	if r.ContentLength > 0 {
		if err := h.take(ctx, min(r.ContentLength, bodyChunk)); err != nil {
			s.budgetError(w, err)
			return nil
		}
		buf = make([]byte, 0, min(r.ContentLength, bodyChunk)+1)
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
