package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/serving"
)

// shutdownGrace is how long SIGTERM waits for requests in flight.
const shutdownGrace = 30 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve a model over HTTP with TensorFlow Serving's REST API",
		Description: "Answers TensorFlow Serving's REST API for one model, so clients written for TensorFlow Serving\n" +
			"work unchanged:\n" +
			"   POST /v1/models/NAME[/versions/V]:predict   {\"instances\": [...]} or {\"inputs\": ...}\n" +
			"   GET  /v1/models/NAME[/versions/V]           model status\n" +
			"   GET  /v1/models/NAME[/versions/V]/metadata  the serving_default signature\n" +
			"   POST /v1/models/NAME:classify-image         a raw JPEG/PNG/BMP body (tfcat's own)\n" +
			"An instance is a preprocessed float tensor [H][W][C] or {\"b64\": \"<base64 JPEG/PNG/BMP>\"}, which\n" +
			"tfcat preprocesses exactly as the tutorial does. Replies are {\"predictions\": [{\"probabilities\":\n" +
			"[...], \"classes\": k}, ...]} (row) or {\"outputs\": {...}} (columnar); errors are {\"error\": \"...\"}\n" +
			"with TensorFlow Serving's status codes (400 bad request, 404 unknown model, 405 wrong method, 413\n" +
			"body over --max-body). Concurrent requests are batched into one Session.Run of up to --max-batch\n" +
			"images, the first waiting up to --batch-wait. --model is a SavedModel folder, a model folder or a\n" +
			"checkpoint prefix. The server listens on loopback unless --addr says otherwise, and stops\n" +
			"gracefully on SIGINT or SIGTERM, answering the requests in flight.\n\n" +
			"Examples:\n" +
			"   tfcat serve --model export/1 --name cats\n" +
			"   curl -d '{\"instances\": [{\"b64\": \"'$(base64 -w0 cat.jpg)'\"}]}' localhost:8501/v1/models/cats:predict\n" +
			"   curl --data-binary @cat.jpg localhost:8501/v1/models/cats:classify-image\n" +
			"   tfcat serve --model . --addr 0.0.0.0:8501 --max-batch 64 --batch-wait 5ms",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: "SavedModel folder, model folder or checkpoint prefix"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8501", Usage: "address to listen on (host:port; port 0 picks a free one)"},
			&cli.StringFlag{Name: "name", Value: serving.DefaultName, Usage: "the model's name in URLs"},
			&cli.Int64Flag{Name: "version", Value: 1, Usage: "the version number the server reports and accepts"},
			&cli.IntFlag{Name: "max-batch", Value: serving.DefaultMaxBatch, Usage: "most images per Session.Run (1 turns batching off)"},
			&cli.DurationFlag{Name: "batch-wait", Value: serving.DefaultBatchWait, Usage: "how long a batch's first request waits for others (0: no wait)"},
			&cli.Int64Flag{Name: "max-body", Value: serving.DefaultMaxBodyBytes, Usage: "largest request body in bytes (larger: 413)"},
			&cli.IntFlag{Name: "max-instances", Value: serving.DefaultMaxInstances, Usage: "most images in one request"},
			&cli.IntFlag{Name: "max-image-pixels", Value: serving.DefaultMaxImagePixels, Usage: "largest image (width×height, from its header; larger: 400)"},
			&cli.Int64Flag{Name: "decode-memory", Value: serving.DefaultDecodeMemory, Usage: "bytes all requests in flight may hold for bodies, tensors and decodes (waiting past the deadline: 503)"},
			&cli.DurationFlag{Name: "request-timeout", Value: serving.DefaultRequestTimeout, Usage: "each request's deadline"},
			&cli.IntFlag{Name: "max-requests", Value: serving.DefaultMaxConcurrentRequests, Usage: "requests parsed, decoded or predicted at once"},
			&cli.IntFlag{Name: "max-connections", Value: serving.DefaultMaxConnections, Usage: "open connections at once"},
			classesFlag, deviceFlag, threadsFlag, trustFlag,
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on stderr"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("serve takes no arguments (got %q); use --model", c.Args().First())
			}
			if c.Int("max-batch") <= 0 || c.Int64("max-body") <= 0 || c.Int("max-instances") <= 0 || c.Int64("version") <= 0 ||
				c.Int("max-image-pixels") <= 0 || c.Int64("decode-memory") <= 0 || c.Duration("request-timeout") <= 0 ||
				c.Int("max-requests") <= 0 || c.Int("max-connections") <= 0 {
				return usagef("--max-batch, --max-body, --max-instances, --version, --max-image-pixels, --decode-memory, --request-timeout, --max-requests and --max-connections must be positive")
			}
			if c.Duration("batch-wait") < 0 {
				return usagef("--batch-wait %v must not be negative", c.Duration("batch-wait"))
			}
			wait := c.Duration("batch-wait")
			if wait == 0 {
				wait = -1 // serving.Config: negative is no wait, zero the default
			}
			m, err := openModel(c)
			if err != nil {
				return err
			}
			defer m.Close()
			srv, err := serving.New(m, serving.Config{
				Name: c.String("name"), Version: c.Int64("version"), Classes: m.Classes,
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
	quiet := c.Bool("quiet")
	hs := srv.HTTPServer()
	hs.ErrorLog = log.New(c.App.ErrWriter, "tfcat: http: ", 0)
	if !quiet {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			fmt.Fprintf(c.App.ErrWriter, "tfcat: listening on %s, which is not loopback: anyone who reaches it can use the model\n", ln.Addr())
		}
		fmt.Fprintf(c.App.ErrWriter, "tfcat: serving %s as %q on http://%s/v1/models/%s (Ctrl-C or SIGTERM stops)\n",
			c.String("model"), c.String("name"), ln.Addr(), c.String("name"))
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(srv.Listener(ln)) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the usual way
	if !quiet {
		fmt.Fprintln(c.App.ErrWriter, "tfcat: shutting down: answering the requests in flight")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	st := srv.Stats()
	if !quiet {
		fmt.Fprintf(c.App.ErrWriter, "tfcat: stopped; predicted %d images in %d batches\n", st.Images, st.Batches)
	}
	return nil
}
