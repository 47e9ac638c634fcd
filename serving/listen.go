package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// ShutdownGrace is how long Serve waits for the requests in flight once its
// context is done.
const ShutdownGrace = 30 * time.Second

// ServeOptions are Serve's hooks.
type ServeOptions struct {
	// ErrorLog receives the HTTP server's own error log (default: discarded).
	ErrorLog io.Writer
	// OnShutdown, when set, is called once ctx is done, before the shutdown.
	OnShutdown func()
	// Logf, when set, receives the server's notes: a warning when ln is not
	// on loopback, the shutdown, and what was served.
	Logf func(format string, args ...any)
}

// Serve answers HTTP on ln with srv until ctx is done, then shuts down
// gracefully: it stops accepting, answers the requests in flight (for up to
// ShutdownGrace) and returns nil. The HTTP server and the connection bound
// are srv's (Server.HTTPServer, Server.Listener). It is ServeHandler with
// srv's own Config, and a last note of what was predicted.
func Serve(ctx context.Context, ln net.Listener, srv *Server, opt ServeOptions) error {
	if err := serveHTTP(ctx, ln, srv, srv.cfg, "the model", opt); err != nil {
		return err
	}
	if opt.Logf != nil {
		st := srv.Stats()
		opt.Logf("stopped; predicted %d images in %d batches", st.Images, st.Batches)
	}
	return nil
}

// serveHTTP is Serve and ServeHandler: h on ln, with cfg's HTTP server
// (httpServer) and connection bound, until ctx is done, then a graceful
// shutdown. cfg has its defaults. what names what the server gives access to.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, cfg Config, what string, opt ServeOptions) error {
	logw := opt.ErrorLog
	if logw == nil {
		logw = io.Discard
	}
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logf("listening on %s, which is not loopback: anyone who reaches it can use %s", ln.Addr(), what)
	}
	hs := httpServer(cfg, h)
	hs.ErrorLog = log.New(logw, "tfcat: http: ", 0)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(netutil.LimitListener(ln, cfg.MaxConnections)) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	if opt.OnShutdown != nil {
		opt.OnShutdown()
	}
	logf("shutting down: answering the requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
