package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/servables"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
	"github.com/tfcat/tfcat/serving/kserve"
	"github.com/tfcat/tfcat/serving/monitoring"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve a model over HTTP with TensorFlow Serving's REST API",
		Description: help("serve"),
		Flags: []cli.Flag{
			modelFlag("SavedModel folder, model folder or checkpoint prefix, served as one version"),
			&cli.StringFlag{Name: "model-base-path", Usage: "folder of numbered version folders (1, 2, ...), each a SavedModel or a model folder: watched, the latest served (TensorFlow Serving's --model_base_path)"},
			&cli.StringFlag{Name: "model-config-file", Usage: "text-format ModelServerConfig: several models, their base paths, version policies and labels (TensorFlow Serving's --model_config_file)"},
			&cli.DurationFlag{Name: "model-config-file-poll", Usage: "how often --model-config-file is read again, a changed one applied (0: never; TensorFlow Serving's --model_config_file_poll_wait_seconds)"},
			&cli.DurationFlag{Name: "poll", Value: servables.DefaultPoll, Usage: "how often base paths are checked for new versions; 0 loads once (TensorFlow Serving's --file_system_poll_wait_seconds)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8501", Usage: "address of the REST API (host:port; port 0 picks a free one; TensorFlow Serving's --rest_api_port)"},
			&cli.StringFlag{Name: "grpc-addr", Value: "127.0.0.1:8500", Usage: "address of the gRPC API, TensorFlow Serving's PredictionService and ModelService (port 0 picks a free one; empty: none; TensorFlow Serving's --port)"},
			&cli.StringFlag{Name: "name", Aliases: []string{"model-name"}, Value: serving.DefaultName, Usage: "the model's name in URLs, for --model and --model-base-path (TensorFlow Serving's --model_name)"},
			&cli.Int64Flag{Name: "version", Value: 1, Usage: "the version number the server reports and accepts, for --model", Action: positive[int64]("--version")},
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
			cfg := serving.Config{
				MaxBatch: c.Int("max-batch"), BatchWait: wait,
				MaxBodyBytes: c.Int64("max-body"), MaxInstances: c.Int("max-instances"),
				MaxImagePixels: c.Int("max-image-pixels"), DecodeMemory: c.Int64("decode-memory"),
				RequestTimeout: c.Duration("request-timeout"), MaxConcurrentRequests: c.Int("max-requests"),
				MaxConnections: c.Int("max-connections"),
			}
			met := monitoring.New(monitoring.Options{})
			cfg.OnBatch = met.OnBatch
			given := 0
			for _, f := range []string{"model", "model-base-path", "model-config-file"} {
				if c.IsSet(f) {
					given++
				}
			}
			if given > 1 {
				return usagef("give one of --model, --model-base-path and --model-config-file")
			}
			if c.IsSet("model-base-path") || c.IsSet("model-config-file") {
				return serveVersions(c, cfg, met)
			}
			m, err := openModel(c, c.String("model"))
			if err != nil {
				return err
			}
			defer m.Close()
			cfg.Name, cfg.Version, cfg.Classes, cfg.Source = c.String("name"), c.Int64("version"), m.ClassNames(), m.Path
			srv, err := serving.New(m, cfg)
			if err != nil {
				return usagef("%v", err)
			}
			defer srv.Close()
			if fi, err := os.Stat(m.Path); err == nil && fi.IsDir() { // a SavedModel or model folder, not a prefix
				if err := warmUp(notes(c))(srv, m.Path); err != nil {
					return err
				}
			}
			met.OnVersionState(cfg.Name, cfg.Version, serving.StateAvailable, nil)
			met.DecodeMemory(func() int64 { return srv.Stats().DecodeMemory })
			logf := notes(c)
			announce := func(rest net.Addr) {
				logf("serving %s as %q on http://%s/v1/models/%s, a page to try it at http://%[3]s/ (Ctrl-C or SIGTERM stops)", c.String("model"), c.String("name"), rest, c.String("name"))
			}
			if err := serveModels(c, serving.One(srv), cfg, met, announce, nil); err != nil {
				return err
			}
			st := srv.Stats()
			logf("stopped; predicted %d images in %d batches", st.Images, st.Batches)
			return nil
		},
	}
}

// serveVersions serves --model-base-path or --model-config-file: versions
// loaded, swapped and unloaded as they come and go (package servables).
func serveVersions(c *cli.Context, cfg serving.Config, met *monitoring.Metrics) error {
	if c.IsSet("version") {
		return usagef("--version is for --model; with --model-base-path and --model-config-file the versions are the folders' numbers")
	}
	poll := c.Duration("poll")
	if poll < 0 {
		return usagef("--poll %v must not be negative", poll)
	}
	if poll == 0 {
		poll = -1 // servables.Options: negative loads once, zero is the default
	}
	file, base := c.String("model-config-file"), c.String("model-base-path")
	if c.Duration("model-config-file-poll") < 0 || (c.IsSet("model-config-file-poll") && file == "") {
		return usagef("--model-config-file-poll takes a duration of 0 or more, with --model-config-file")
	}
	if file != "" && c.IsSet("classes") {
		return usagef("--classes names one model's classes; the models of --model-config-file must store their own")
	}
	var mc *configpb.ModelServerConfig
	if file != "" {
		var err error
		if mc, err = servables.ReadConfig(file); err != nil {
			return err
		}
		if err := servables.CheckConfig(mc); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	} else {
		if fi, err := os.Stat(base); err != nil {
			return fmt.Errorf("--model-base-path: %w", err)
		} else if !fi.IsDir() {
			return fmt.Errorf("--model-base-path: %s is not a folder", base)
		}
		if err := servables.CheckConfig(servables.SingleModel(c.String("name"), base)); err != nil {
			return usagef("%v", err)
		}
		mc = servables.SingleModel(c.String("name"), base)
	}
	sc, err := sessionConfig(c, false)
	if err != nil {
		return err
	}
	logf := notes(c)
	mgr, err := servables.New(mc, servables.Options{
		Model:   model.Options{Session: sc, Trust: c.Bool("trust-graph"), Classes: splitList(c.String("classes"))},
		Serving: cfg, Poll: poll, Logf: logf, OnState: met.OnVersionState,
		WarmUp: warmUp(logf),
	})
	if err != nil {
		return err
	}
	defer mgr.Close()
	met.DecodeMemory(monitoring.DecodeMemoryOf(mgr))

	var watch func(context.Context)
	if every := c.Duration("model-config-file-poll"); every > 0 {
		watch = func(ctx context.Context) { watchConfig(ctx, file, every, mgr, logf) }
	}
	announce := func(rest net.Addr) {
		names := mgr.Names()
		every := "loaded once"
		if poll > 0 {
			every = "checked every " + poll.String()
		}
		switch {
		case file != "" && len(names) == 0:
			logf("serving no models yet from %s on http://%s/v1/models/NAME (Ctrl-C or SIGTERM stops)", file, rest)
		case file != "":
			logf("serving %s from %s (base paths %s) on http://%s/v1/models/NAME, a page to try %s at http://%[4]s/ (Ctrl-C or SIGTERM stops)",
				strings.Join(names, ", "), file, every, rest, names[0])
		default:
			logf("serving the versions of %s as %q (%s) on http://%s/v1/models/%[2]s, a page to try it at http://%[4]s/ (Ctrl-C or SIGTERM stops)",
				base, names[0], every, rest)
		}
	}
	if err := serveModels(c, mgr, cfg, met, announce, watch); err != nil {
		return err
	}
	logf("stopped")
	return nil
}

// watchConfig reads file every period until ctx is done and applies it when
// it has changed; a config that is wrong is logged once and the last one
// keeps serving.
func watchConfig(ctx context.Context, file string, every time.Duration, mgr *servables.Manager, logf func(string, ...any)) {
	last, _ := os.ReadFile(file) // what New applied, near enough: a change is applied at the next tick
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		text, err := os.ReadFile(file)
		if err == nil && bytes.Equal(text, last) {
			continue
		}
		last = text
		var cfg *configpb.ModelServerConfig
		if err == nil {
			if cfg, err = servables.ParseConfig(text); err == nil {
				err = servables.CheckConfig(cfg)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", file, err)
			}
		}
		if err == nil {
			err = mgr.Reload(cfg) // what fails now is a version's load, naming its folder
		}
		if err != nil {
			logf("%v; the models already loaded keep serving", err)
			continue
		}
		logf("%s changed: serving %s", file, strings.Join(mgr.Names(), ", "))
	}
}

// notes prints a line on stderr unless --quiet.
func notes(c *cli.Context) func(format string, args ...any) {
	return func(format string, args ...any) {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "tfcat: "+format+"\n", args...)
		}
	}
}

// serveModels answers models on --addr (TensorFlow Serving's REST API, v2
// REST, the metrics) and on --grpc-addr until SIGINT or SIGTERM, then shuts
// both down gracefully; after the first signal a second kills the process the
// usual way. announce is told the REST address once both ports listen. watch,
// when set, runs beside the servers from then until the shutdown starts.
// Everything started here has stopped when serveModels returns, so the
// caller may close models then.
func serveModels(c *cli.Context, models serving.Models, cfg serving.Config, met *monitoring.Metrics, announce func(rest net.Addr), watch func(context.Context)) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := c.String("addr")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	logf := notes(c)
	stopGRPC, err := startGRPC(c, models, cfg, met, logf)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopGRPC()
	if watch != nil {
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() {
			defer close(done)
			watch(ctx)
		}()
	}
	announce(ln.Addr())
	return serving.ServeHandler(ctx, ln, frontEnds(met, models, cfg), cfg, serving.ServeOptions{ErrorLog: c.App.ErrWriter, OnShutdown: stop, Logf: logf})
}

// frontEnds answers tfcat serve's HTTP port: TensorFlow Serving's REST API
// over models and the metrics at monitoring.Path, each request counted and
// timed by met. No ServeMux in front: it would clean and redirect the paths
// the REST router answers as TensorFlow Serving does.
func frontEnds(met *monitoring.Metrics, models serving.Models, cfg serving.Config) http.Handler {
	rest := met.HTTP(monitoring.APIREST, serving.NewHandler(models))
	v2 := met.HTTP(monitoring.APIV2, kserve.NewHandler(models, kserveOptions(cfg)))
	metrics := met.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == monitoring.Path:
			metrics.ServeHTTP(w, r)
		case p == "/v2" || strings.HasPrefix(p, "/v2/"):
			v2.ServeHTTP(w, r)
		default:
			rest.ServeHTTP(w, r)
		}
	})
}

// kserveOptions gives KServe's v2 protocol the REST API's bounds.
func kserveOptions(cfg serving.Config) kserve.Options {
	return kserve.Options{ServerVersion: version, MaxBodyBytes: cfg.MaxBodyBytes, BodyMemory: cfg.DecodeMemory, RequestTimeout: cfg.RequestTimeout}
}

// startGRPC serves TensorFlow Serving's gRPC API for models on --grpc-addr
// (nothing when it is empty), with cfg's bounds: messages up to the REST body
// limit, at most MaxConnections connections. stop ends it gracefully: the
// RPCs in flight are answered, for up to serving.ShutdownGrace.
func startGRPC(c *cli.Context, models serving.Models, cfg serving.Config, met *monitoring.Metrics, logf func(string, ...any)) (stop func(), err error) {
	addr := c.String("grpc-addr")
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (--grpc-addr): %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logf("gRPC on %s, which is not loopback: anyone who reaches it can use the models", ln.Addr())
	}
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	gs := grpcapi.NewServer(models, grpcapi.Options{MaxRecvMsgSize: int(cfg.MaxBodyBytes),
		ServerOptions: []grpc.ServerOption{grpc.ChainUnaryInterceptor(met.GRPCUnary())}})
	kserve.Register(gs, models, kserveOptions(cfg)) // KServe's v2 gRPC service on the same port
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	logf("gRPC (tensorflow.serving.PredictionService, ModelService; inference.GRPCInferenceService) on %s", ln.Addr())
	return func() {
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(serving.ShutdownGrace):
			gs.Stop()
		}
		<-served
	}, nil
}

// warmUp replays a version's assets.extra/tf_serving_warmup_requests, as
// TensorFlow Serving does, before the version serves; a replay that fails
// refuses the version.
func warmUp(logf func(string, ...any)) func(*serving.Server, string) error {
	return func(srv *serving.Server, dir string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		n, err := grpcapi.WarmUp(ctx, srv, dir)
		if err == nil && n > 0 {
			logf("model %s: %s: replayed %d warm-up requests", srv.Name(), dir, n)
		}
		return err
	}
}
