package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/tfsession"
)

// Flags shared by several commands: each is defined once here.
var (
	trustFlag   = &cli.BoolFlag{Name: "trust-graph", Usage: "run a checkpoint's graph even if it holds ops beyond what restoring and predicting need (only for files you trust)"}
	classesFlag = &cli.StringFlag{Name: "classes", Usage: "comma-separated class names in label order (for checkpoints that store none, such as the Python tutorial's)"}
	deviceFlag  = &cli.StringFlag{Name: "device", Value: "auto", Usage: "where to run: auto, /cpu:0 or /gpu:N"}
	threadsFlag = &cli.IntFlag{Name: "threads", Usage: "TensorFlow intra-op threads (0: one per core)"}
	// precisionFlag picks the compute ops' arithmetic (tfsession.ResolvePrecision);
	// variables and checkpoints stay float32. TensorFlow Serving's
	// --mixed_precision=bfloat16 is --precision bf16.
	precisionFlag = &cli.StringFlag{Name: "precision", Value: "f32",
		Usage: "compute in f32, bf16 (oneDNN's bfloat16 rewrite, CPUs with AVX512_BF16 or AMX), fp16 (CUDA's float16 rewrite, GPUs) or auto (bf16 for training where the CPU has it, else f32); variables and checkpoints stay float32"}
	batchFlag = &cli.IntFlag{Name: "batch", Value: 32, Usage: "images per Session.Run", Action: positive[int]("--batch")}
	quietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on stderr"}
)

// modelFlag is --model with the usage that says which kinds the command reads.
func modelFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: usage}
}

// formatFlag is --format limited to the given formats, the first the
// default; commands read it with format(c).
func formatFlag(formats ...string) *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: formats[0],
		Usage: "output format: " + strings.Join(formats, ", "),
		Action: func(_ *cli.Context, v string) error {
			if !slices.Contains(formats, strings.ToLower(v)) {
				return usagef("--format %q: use one of %s", v, strings.Join(formats, ", "))
			}
			return nil
		}}
}

func format(c *cli.Context) string { return strings.ToLower(c.String("format")) }

// printJSON writes v as indented JSON, the form of every --format json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// sessionConfig reads --device and --threads, resolving "auto" and checking an
// explicit GPU. note says whether to tell the user that auto fell back to the
// CPU: training and version do, where the device matters.
func sessionConfig(c *cli.Context, note bool) (tfsession.SessionConfig, error) {
	want := c.String("device")
	dev, err := tfsession.ResolveDevice(want)
	if err != nil {
		return tfsession.SessionConfig{}, err
	}
	if note && strings.EqualFold(want, tfsession.DeviceAuto) && dev == tfsession.DeviceCPU && !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, "tfcat: no GPU visible; running on /cpu:0")
	}
	threads := c.Int("threads")
	if threads < 0 {
		return tfsession.SessionConfig{}, usagef("--threads %d must not be negative", threads)
	}
	prec, err := tfsession.ResolvePrecision(c.String("precision"), dev, c.Command.Name == "train")
	if err != nil {
		return tfsession.SessionConfig{}, usagef("--precision: %w", err)
	}
	return tfsession.SessionConfig{Device: dev, IntraOpThreads: threads, Precision: prec}, nil
}

// openModel loads path with --device, --threads (sessionConfig),
// --trust-graph and --classes.
func openModel(c *cli.Context, path string) (*model.Model, error) {
	if path == "" {
		return nil, usagef("--model is required")
	}
	cfg, err := sessionConfig(c, false)
	if err != nil {
		return nil, err
	}
	m, err := model.Open(path, model.Options{Session: cfg, Trust: c.Bool("trust-graph"), Classes: splitList(c.String("classes"))})
	var cc *model.ClassCountError
	if errors.As(err, &cc) {
		return nil, usagef("--classes names %d classes, but the model has %d", cc.Given, cc.Model)
	}
	return m, err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// positive is a flag action refusing values of zero or less.
func positive[T int | int64 | float64 | time.Duration](name string) func(*cli.Context, T) error {
	return func(_ *cli.Context, v T) error {
		if v <= 0 {
			return usagef("%s %v must be positive", name, v)
		}
		return nil
	}
}
