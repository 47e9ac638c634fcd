package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/trainer"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:        "train",
		Usage:       "train the tutorial's CNN on a folder of class folders",
		Description: help("train"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "folder with one sub-folder of images per class"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated class folders, in label order (default: all, sorted)"},
			&cli.IntFlag{Name: "size", Value: trainer.DefaultSize, Usage: "image height and width", Action: positive[int]("--size")},
			&cli.IntFlag{Name: "channels", Value: 3, Usage: "3 (BGR, as the tutorial) or 1 (grayscale)"},
			&cli.IntFlag{Name: "batch", Value: trainer.DefaultBatchSize, Usage: "batch size", Action: positive[int]("--batch")},
			&cli.IntFlag{Name: "iterations", Value: 3000, Usage: "training steps in all"},
			&cli.IntFlag{Name: "epochs", Usage: "train this many epochs in all instead of --iterations"},
			&cli.Float64Flag{Name: "lr", Value: 1e-4, Usage: "Adam learning rate"},
			&cli.Float64Flag{Name: "validation", Value: 0.2, Usage: "validation split: a fraction below 1, or a count"},
			&cli.StringFlag{Name: "model-dir", Value: ".", Usage: "where checkpoints go"},
			&cli.StringFlag{Name: "name", Value: tfgraph.DefaultCheckpointName, Usage: "checkpoint file name prefix"},
			&cli.BoolFlag{Name: "step-suffix", Usage: "name checkpoints <name>-<step>, like Python's global_step="},
			&cli.IntFlag{Name: "max-to-keep", Value: tfgraph.DefaultMaxToKeep, Usage: "checkpoints kept; older ones are deleted"},
			&cli.Int64Flag{Name: "seed", Value: 2, Usage: "seed of the initial weights and the shuffle"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from the latest checkpoint in --model-dir"},
			&cli.BoolFlag{Name: "reshuffle", Usage: "reshuffle the training images every epoch (the tutorial does not)"},
			&cli.BoolFlag{Name: "stream", Usage: "decode images per batch instead of holding them all in memory"},
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image instead of skipping it"},
			&cli.IntFlag{Name: "early-stop", Usage: "stop when the validation loss has not improved for this many epochs (0: never)"},
			&cli.StringFlag{Name: "logdir", Usage: "write TensorBoard event files here"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON event per line on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only errors"},
			deviceFlag, threadsFlag,
		}, modelFlags...),
		Action: trainAction,
	}
}

// trainOutput prints the trainer's events as the user asked: JSON events, a
// progress bar on a terminal, or plain lines.
type trainOutput struct {
	stdout, stderr io.Writer
	json, quiet    bool
	bar            bool
	lastBar        time.Time
}

// printJSON prints v as one line, with --json.
func (o *trainOutput) printJSON(v any) {
	if o.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(o.stdout, string(b))
	}
}

func (o *trainOutput) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if o.json {
		o.printJSON(map[string]string{"event": "note", "message": msg}) // keys sorted: event first
		return
	}
	if !o.quiet {
		o.clearBar()
		fmt.Fprintln(o.stderr, msg)
	}
}

func (o *trainOutput) clearBar() {
	if o.bar {
		fmt.Fprint(o.stderr, "\r\033[K")
	}
}

func (o *trainOutput) progress(e trainer.Event) {
	if !o.bar || o.quiet || o.json {
		return
	}
	if time.Since(o.lastBar) < 100*time.Millisecond && e.Step < e.Steps {
		return
	}
	o.lastBar = time.Now()
	rate := e.StepsPerSecond()
	eta := "--"
	if rate > 0 {
		eta = (time.Duration(float64(e.Steps-e.Step)/rate) * time.Second).Round(time.Second).String()
	}
	const width = 30
	filled := width * e.Step / max(e.Steps, 1)
	fmt.Fprintf(o.stderr, "\r\033[K[%s%s] %d/%d  %.2f steps/s  ETA %s  loss %.4f",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), e.Step, e.Steps, rate, eta, e.Loss)
}

// event prints one trainer event.
func (o *trainOutput) event(e trainer.Event) error {
	switch e.Kind {
	case trainer.Resumed:
		o.note("resuming from %s at step %d", e.Checkpoint, e.Step)
	case trainer.Start:
		if n := len(e.Skipped); n > 0 {
			o.note("skipped %d unreadable image(s):", n)
			for i, p := range e.Skipped {
				if i == 10 {
					o.note("  ... and %d more", n-10)
					break
				}
				o.note("  %s", p)
			}
		}
		o.note("%s: %d classes (%s), %d training and %d validation images, loaded in %s",
			e.Data, len(e.Classes), strings.Join(e.Classes, ", "), e.Train, e.Validation, e.LoadTime.Round(time.Millisecond))
		o.printJSON(e)
	case trainer.Step:
		o.progress(e)
		if o.json && (e.Step%10 == 0 || e.Step == e.Steps) {
			o.printJSON(e)
		}
	case trainer.Epoch:
		if !o.json && !o.quiet {
			o.clearBar()
			fmt.Fprintln(o.stdout, e.String())
		}
		o.printJSON(e)
	case trainer.Checkpoint:
		o.printJSON(e)
	case trainer.Stopping:
		switch e.Reason {
		case trainer.Interrupted:
			o.note("interrupted at step %d; saving", e.Step)
		case trainer.EarlyStop:
			o.note("early stop at step %d: validation loss has not improved for %d epochs (best %.4f)", e.Step, e.Patience, e.BestLoss)
		}
	case trainer.Done:
		o.printJSON(e)
		if !o.json && !o.quiet {
			abs, _ := filepath.Abs(e.Checkpoint)
			fmt.Fprintf(o.stdout, "model saved: %s (step %d)\n", abs, e.Step)
		}
	}
	return nil
}

func trainAction(c *cli.Context) error {
	out := &trainOutput{stdout: c.App.Writer, stderr: c.App.ErrWriter, json: c.Bool("json"), quiet: c.Bool("quiet")}
	if f, ok := c.App.ErrWriter.(*os.File); ok {
		out.bar = term.IsTerminal(int(f.Fd())) // where a progress bar belongs
	}
	size, channels, batch := c.Int("size"), c.Int("channels"), c.Int("batch")
	if err := checkChannels(channels); err != nil {
		return err
	}
	switch {
	case c.Int("iterations") < 0 || c.Int("epochs") < 0:
		return usagef("--iterations and --epochs must not be negative")
	case c.Float64("lr") <= 0:
		return usagef("--lr %g must be positive", c.Float64("lr"))
	case c.Int("early-stop") < 0:
		return usagef("--early-stop %d must not be negative", c.Int("early-stop"))
	}
	dataDir := c.String("data")
	if fi, err := os.Stat(dataDir); err != nil {
		return fmt.Errorf("%s: %w (give --data a folder with one sub-folder of images per class)", dataDir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a folder (give --data a folder with one sub-folder of images per class)", dataDir)
	}
	cfg, err := sessionConfig(c, true)
	if err != nil {
		return err
	}
	opt := trainer.Options{
		Data: dataDir, Classes: splitList(c.String("classes")), Validation: c.Float64("validation"), Seed: c.Int64("seed"),
		Reshuffle: c.Bool("reshuffle"), Stream: c.Bool("stream"), Strict: c.Bool("strict"),
		BatchSize: batch, Steps: c.Int("iterations"), Epochs: c.Int("epochs"), LearningRate: c.Float64("lr"), EarlyStop: c.Int("early-stop"),
		ModelDir: c.String("model-dir"), Name: c.String("name"), StepSuffix: c.Bool("step-suffix"), MaxToKeep: c.Int("max-to-keep"),
		Resume: c.Bool("resume"), LogDir: c.String("logdir"), Session: cfg, OnEvent: out.event,
	}
	// Resuming takes the checkpoint's input size unless the flags say otherwise.
	if !opt.Resume || c.IsSet("size") {
		opt.Size = size
	}
	if !opt.Resume || c.IsSet("channels") {
		opt.Channels = channels
	}
	if err := modelOptions(c, &opt); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := trainer.Train(ctx, opt)
	out.clearBar()
	var re *trainer.ResumeError
	var oe *trainer.OptionError
	if errors.As(err, &re) && !errors.As(err, &oe) {
		return fmt.Errorf("--resume: %w", re.Err)
	}
	err = trainError(err)
	if err != nil && res != nil && res.Checkpoint != "" && res.CheckpointStep == res.Step && res.Step > res.StartStep {
		out.note("saved %s at step %d before stopping", res.Checkpoint, res.Step)
	}
	return err
}
