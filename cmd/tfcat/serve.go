package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/serving"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve a model over HTTP with TensorFlow Serving's REST API",
		Description: help("serve"),
		Flags: []cli.Flag{
			modelFlag("SavedModel folder, model folder or checkpoint prefix"),
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8501", Usage: "address to listen on (host:port; port 0 picks a free one)"},
			&cli.StringFlag{Name: "name", Value: serving.DefaultName, Usage: "the model's name in URLs"},
			&cli.Int64Flag{Name: "version", Value: 1, Usage: "the version number the server reports and accepts", Action: positive[int64]("--version")},
			&cli.IntFlag{Name: "max-batch", Value: serving.DefaultMaxBatch, Usage: "most images per Session.Run (1 turns batching off)", Action: positive[int]("--max-batch")},
			&cli.DurationFlag{Name: "batch-wait", Value: serving.DefaultBatchWait, Usage: "how long a batch's first request waits for others (0: no wait)"},
			&cli.Int64Flag{Name: "max-body", Value: serving.DefaultMaxBodyBytes, Usage: "largest request body in bytes (larger: 413)", Action: positive[int64]("--max-body")},
			&cli.IntFlag{Name: "max-instances", Value: serving.DefaultMaxInstances, Usage: "most images in one request", Action: positive[int]("--max-instances")},
			&cli.IntFlag{Name: "max-image-pixels", Value: serving.DefaultMaxImagePixels, Usage: "largest image (width×height, from its header; larger: 400)", Action: positive[int]("--max-image-pixels")},
			&cli.Int64Flag{Name: "decode-memory", Value: serving.DefaultDecodeMemory, Usage: "bytes all requests in flight may hold for bodies, tensors and decodes (waiting past the deadline: 503)", Action: positive[int64]("--decode-memory")},
			&cli.DurationFlag{Name: "request-timeout", Value: serving.DefaultRequestTimeout, Usage: "each request's deadline", Action: positive[time.Duration]("--request-timeout")},
			&cli.IntFlag{Name: "max-requests", Value: serving.DefaultMaxConcurrentRequests, Usage: "requests parsed, decoded or predicted at once", Action: positive[int]("--max-requests")},
			&cli.IntFlag{Name: "max-connections", Value: serving.DefaultMaxConnections, Usage: "open connections at once", Action: positive[int]("--max-connections")},
			classesFlag, deviceFlag, threadsFlag, precisionFlag, trustFlag, quietFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("serve takes no arguments (got %q); use --model", c.Args().First())
			}
			if wait := c.Duration("batch-wait"); wait < 0 {
				return usagef("--batch-wait %v must not be negative", wait)
			}
			wait := c.Duration("batch-wait")
			if wait == 0 {
				wait = -1 // serving.Config: negative is no wait, zero the default
			}
			m, err := openModel(c, c.String("model"))
			if err != nil {
				return err
			}
			defer m.Close()
			srv, err := serving.New(m, serving.Config{
				Name: c.String("name"), Version: c.Int64("version"), Classes: m.ClassNames(), Source: m.Path,
				MaxBatch: c.Int("max-batch"), BatchWait: wait,
				MaxBodyBytes: c.Int64("max-body"), MaxInstances: c.Int("max-instances"),
				MaxImagePixels: c.Int("max-image-pixels"), DecodeMemory: c.Int64("decode-memory"),
				RequestTimeout: c.Duration("request-timeout"), MaxConcurrentRequests: c.Int("max-requests"),
				MaxConnections: c.Int("max-connections"),
			})
			if err != nil {
				return usagef("%v", err)
			}
			defer srv.Close()
			return listenAndServe(c, srv)
		},
	}
}

// listenAndServe runs srv until SIGINT or SIGTERM, then shuts down gracefully.
func listenAndServe(c *cli.Context, srv *serving.Server) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := c.String("addr")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	logf := func(format string, args ...any) {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "tfcat: "+format+"\n", args...)
		}
	}
	logf("serving %s as %q on http://%s/v1/models/%s, a page to try it at http://%[3]s/ (Ctrl-C or SIGTERM stops)", c.String("model"), c.String("name"), ln.Addr(), c.String("name"))
	// After the first signal, a second kills the process the usual way.
	return serving.Serve(ctx, ln, srv, serving.ServeOptions{ErrorLog: c.App.ErrWriter, OnShutdown: stop, Logf: logf})
}
