package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/tensorboard"
	"github.com/tfcat/tfcat/tfgraph"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train the tutorial's CNN on a folder of class folders",
		Description: "Trains as the tutorial's train.py does: images from one sub-folder per class, resized to\n" +
			"--size and scaled by 1/255 exactly as OpenCV does, shuffled with --seed, the first --validation\n" +
			"of them held out; three conv layers, fc 128, Adam at --lr, batches of --batch. After the first\n" +
			"step of every epoch it prints the tutorial's line and saves a checkpoint (dogs-cats-model.meta,\n" +
			".index, .data-00000-of-00001 and checkpoint in --model-dir) that Python's import_meta_graph +\n" +
			"restore read; it saves again at the end. Ctrl-C (SIGINT) or SIGTERM saves and exits cleanly;\n" +
			"a kill at any moment leaves the last checkpoint loadable. --resume continues from the latest\n" +
			"checkpoint in --model-dir, tfcat's or the Python tutorial's, Adam state included; --iterations\n" +
			"and --epochs count the steps taken before.\n\n" +
			"Examples:\n" +
			"   tfcat train --data training_data\n" +
			"   tfcat train --data fmnist --size 28 --channels 1 --epochs 5 --model-dir model --logdir runs\n" +
			"   tfcat train --data training_data --resume --iterations 6000 --json > train.jsonl",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "folder with one sub-folder of images per class"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated class folders, in label order (default: all, sorted)"},
			&cli.IntFlag{Name: "size", Value: 128, Usage: "image height and width"},
			&cli.IntFlag{Name: "channels", Value: 3, Usage: "3 (BGR, as the tutorial) or 1 (grayscale)"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "batch size"},
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
		},
		Action: trainAction,
	}
}

// trainEvent is one line of --json output.
type trainEvent struct {
	Event         string   `json:"event"`
	Step          int      `json:"step,omitempty"`
	Steps         int      `json:"steps,omitempty"`
	Epoch         int      `json:"epoch,omitempty"`
	Loss          *float32 `json:"loss,omitempty"`
	TrainAccuracy *float32 `json:"train_accuracy,omitempty"`
	ValAccuracy   *float32 `json:"val_accuracy,omitempty"`
	ValLoss       *float32 `json:"val_loss,omitempty"`
	StepsPerSec   float64  `json:"steps_per_sec,omitempty"`
	Elapsed       float64  `json:"elapsed_s,omitempty"` // seconds since training started
	Checkpoint    string   `json:"checkpoint,omitempty"`
	Classes       []string `json:"classes,omitempty"`
	Train         int      `json:"train_images,omitempty"`
	Validation    int      `json:"validation_images,omitempty"`
	Skipped       []string `json:"skipped,omitempty"`
	LoadSeconds   float64  `json:"load_seconds,omitempty"` // decoding and resizing the data
	Message       string   `json:"message,omitempty"`
}

func f32(v float32) *float32 { return &v }

// splitSource serves a dataset split to tfgraph's training loop. A goroutine
// assembles the next batch (decoding it, when streaming) while the session
// runs the current step; two batch buffers take turns.
type splitSource struct {
	ready chan prefetched
	free  chan *dataset.Batch
	stop  chan struct{}
	held  *dataset.Batch // the batch the training loop is using
}

type prefetched struct {
	b   *dataset.Batch
	err error
}

func newSplitSource(split *dataset.Split, n int) *splitSource {
	s := &splitSource{ready: make(chan prefetched, 1), free: make(chan *dataset.Batch, 2), stop: make(chan struct{})}
	s.free <- new(dataset.Batch)
	s.free <- new(dataset.Batch)
	go func() {
		for {
			var b *dataset.Batch
			select {
			case b = <-s.free:
			case <-s.stop:
				return
			}
			err := split.NextBatch(n, b)
			select {
			case s.ready <- prefetched{b, err}:
			case <-s.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// NextBatch hands the next prefetched batch to the training loop; the batch it
// handed out before goes back to be refilled.
func (s *splitSource) NextBatch(b *tfgraph.Batch) error {
	if s.held != nil {
		s.free <- s.held
		s.held = nil
	}
	r := <-s.ready
	if r.err != nil {
		return r.err
	}
	s.held = r.b
	b.X, b.Y, b.N = r.b.X, r.b.Y, r.b.N
	return nil
}

// Close stops the prefetching goroutine.
func (s *splitSource) Close() { close(s.stop) }

// trainOutput prints progress as the user asked: JSON events, a progress bar
// on a terminal, or plain lines.
type trainOutput struct {
	stdout, stderr io.Writer
	json, quiet    bool
	bar            bool
	total          int
	lastBar        time.Time
}

func (o *trainOutput) event(e trainEvent) {
	if o.json {
		b, _ := json.Marshal(e)
		fmt.Fprintln(o.stdout, string(b))
	}
}

func (o *trainOutput) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if o.json {
		o.event(trainEvent{Event: "note", Message: msg})
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

func (o *trainOutput) progress(r tfgraph.StepResult, start int) {
	if !o.bar || o.quiet || o.json {
		return
	}
	if time.Since(o.lastBar) < 100*time.Millisecond && r.Step < o.total {
		return
	}
	o.lastBar = time.Now()
	done := r.Step - start
	rate := float64(done) / r.Elapsed.Seconds()
	eta := "--"
	if rate > 0 {
		eta = (time.Duration(float64(o.total-r.Step)/rate) * time.Second).Round(time.Second).String()
	}
	const width = 30
	filled := width * r.Step / max(o.total, 1)
	fmt.Fprintf(o.stderr, "\r\033[K[%s%s] %d/%d  %.2f steps/s  ETA %s  loss %.4f",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), r.Step, o.total, rate, eta, r.Loss)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func trainAction(c *cli.Context) error {
	out := &trainOutput{stdout: c.App.Writer, stderr: c.App.ErrWriter, json: c.Bool("json"), quiet: c.Bool("quiet")}
	out.bar = isTerminal(c.App.ErrWriter)
	size, channels, batch := c.Int("size"), c.Int("channels"), c.Int("batch")
	switch {
	case size <= 0:
		return usagef("--size %d must be positive", size)
	case channels != 1 && channels != 3:
		return usagef("--channels %d: use 1 or 3", channels)
	case batch <= 0:
		return usagef("--batch %d must be positive", batch)
	case c.Int("iterations") < 0 || c.Int("epochs") < 0:
		return usagef("--iterations and --epochs must not be negative")
	case c.Float64("lr") <= 0:
		return usagef("--lr %g must be positive", c.Float64("lr"))
	}
	dataDir := c.String("data")
	if fi, err := os.Stat(dataDir); err != nil {
		return fmt.Errorf("%s: %w (give --data a folder with one sub-folder of images per class)", dataDir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a folder (give --data a folder with one sub-folder of images per class)", dataDir)
	}
	cfg, err := sessionConfig(c)
	if err != nil {
		return err
	}
	modelDir, name := c.String("model-dir"), c.String("name")

	// Resume first: its classes decide the data's label order.
	var sess *tfgraph.Session
	startStep := 0
	classes := splitList(c.String("classes"))
	if c.Bool("resume") {
		prefix, err := tfgraph.ResolveCheckpoint(modelDir)
		if err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		var mi tfgraph.MetaInfo
		sess, mi, err = tfgraph.Resume(prefix, cfg, c.Float64("lr"))
		if err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		defer sess.Close()
		h, w, ch := sess.InputSize()
		if h != w || (c.IsSet("size") && h != size) || (c.IsSet("channels") && ch != channels) {
			return fmt.Errorf("--resume: %s takes %dx%dx%d images; --size/--channels ask for %dx%dx%d", prefix, h, w, ch, size, size, channels)
		}
		size, channels = h, ch
		if len(mi.Classes) > 0 {
			if len(classes) > 0 && !slices.Equal(classes, mi.Classes) {
				return fmt.Errorf("--resume: %s was trained on classes %v, --classes gives %v", prefix, mi.Classes, classes)
			}
			classes = mi.Classes
		}
		startStep = mi.Step
		out.note("resuming from %s at step %d", prefix, startStep)
	}

	loadOpts := dataset.Options{
		Size: size, Channels: channels, Classes: classes, ValidationSize: c.Float64("validation"),
		Seed: c.Int64("seed"), Reshuffle: c.Bool("reshuffle"), Strict: c.Bool("strict"),
	}
	load := dataset.Load
	if c.Bool("stream") {
		load = dataset.Open
	}
	t0 := time.Now()
	set, err := load(dataDir, loadOpts)
	if err != nil {
		return err
	}
	loadTime := time.Since(t0)
	report := set.Report()
	if n := len(report.Skipped); n > 0 {
		out.note("skipped %d unreadable image(s):", n)
		for i, p := range report.Skipped {
			if i == 10 {
				out.note("  ... and %d more", n-10)
				break
			}
			out.note("  %s", p)
		}
	}
	if sess != nil && sess.NumClasses() != len(set.Classes) {
		return fmt.Errorf("--resume: the checkpoint has %d classes, %s has %d (%s)", sess.NumClasses(), dataDir, len(set.Classes), strings.Join(set.Classes, ", "))
	}
	nTrain, nValid := set.Train.Len(), set.Validation.Len()
	if batch > nTrain {
		return fmt.Errorf("%s: %d training images, fewer than one batch of %d (lower --batch or --validation)", dataDir, nTrain, batch)
	}
	stepsPerEpoch := nTrain / batch
	steps := c.Int("iterations")
	if c.Int("epochs") > 0 {
		steps = c.Int("epochs") * stepsPerEpoch
	}
	out.note("%s: %d classes (%s), %d training and %d validation images, loaded in %s",
		dataDir, len(set.Classes), strings.Join(set.Classes, ", "), nTrain, nValid, loadTime.Round(time.Millisecond))
	out.event(trainEvent{Event: "start", Classes: set.Classes, Train: nTrain, Validation: nValid, Step: startStep, Steps: steps, LoadSeconds: loadTime.Seconds()})

	if sess == nil {
		net := tfgraph.Tutorial(len(set.Classes)).WithInput(size, size, channels)
		net.LearningRate = c.Float64("lr")
		m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: c.Int64("seed")})
		if err != nil {
			return err
		}
		if sess, err = tfgraph.NewSession(m, cfg); err != nil {
			return err
		}
		defer sess.Close()
		if err := sess.Init(); err != nil {
			return err
		}
	}

	var tb *tensorboard.Writer
	if d := c.String("logdir"); d != "" {
		if tb, err = tensorboard.NewWriter(d); err != nil {
			return err
		}
		defer tb.Close()
	}

	saveOpts := tfgraph.SaveOptions{Dir: modelDir, Name: name, StepSuffix: c.Bool("step-suffix"), MaxToKeep: c.Int("max-to-keep")}
	save := func(step int) (string, error) {
		prefix, err := sess.Save(saveOpts, tfgraph.Info{Classes: set.Classes, Step: step})
		if err != nil {
			return "", err
		}
		out.event(trainEvent{Event: "checkpoint", Step: step, Checkpoint: prefix})
		return prefix, nil
	}

	trainSrc := newSplitSource(set.Train, batch)
	defer trainSrc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out.total = steps
	bestLoss, sinceBest, patience := math.Inf(1), 0, c.Int("early-stop")
	errEarlyStop := errors.New("early stop")
	var lastPrefix string
	tc := tfgraph.TrainConfig{
		Steps: steps, StartStep: startStep, BatchSize: batch, StepsPerEpoch: stepsPerEpoch,
		Train: trainSrc,
		OnStep: func(r tfgraph.StepResult) error {
			out.progress(r, startStep)
			if out.json && (r.Step%10 == 0 || r.Step == steps) {
				out.event(trainEvent{Event: "step", Step: r.Step, Loss: f32(r.Loss), StepsPerSec: float64(r.Step-startStep) / r.Elapsed.Seconds(), Elapsed: r.Elapsed.Seconds()})
			}
			if tb != nil {
				return tb.Scalar(int64(r.Step), "loss", r.Loss)
			}
			return nil
		},
		OnEpoch: func(r tfgraph.EpochResult) error {
			if !out.json && !out.quiet {
				out.clearBar()
				fmt.Fprintln(out.stdout, r.String())
			}
			out.event(trainEvent{Event: "epoch", Epoch: r.Epoch, Step: r.Step, TrainAccuracy: f32(r.TrainAccuracy),
				ValAccuracy: f32(r.ValAccuracy), ValLoss: f32(r.ValLoss), Loss: f32(r.TrainLoss)})
			if tb != nil {
				if err := tb.Scalars(int64(r.Step), map[string]float32{"accuracy": r.TrainAccuracy, "val_loss": r.ValLoss, "val_accuracy": r.ValAccuracy}); err != nil {
					return err
				}
				tb.Flush()
			}
			var err error
			if lastPrefix, err = save(r.Step); err != nil {
				return err
			}
			if patience > 0 && nValid > 0 {
				if float64(r.ValLoss) < bestLoss {
					bestLoss, sinceBest = float64(r.ValLoss), 0
				} else if sinceBest++; sinceBest >= patience {
					return errEarlyStop
				}
			}
			return nil
		},
	}
	if nValid > 0 {
		vb := min(batch, nValid)
		validSrc := newSplitSource(set.Validation, vb)
		defer validSrc.Close()
		tc.Valid = validSrc
		tc.ValidBatches = nValid / vb
	}
	step, err := sess.Train(ctx, tc)
	out.clearBar()
	interrupted := ctx.Err() != nil && errors.Is(err, ctx.Err())
	switch {
	case err == nil:
	case interrupted:
		out.note("interrupted at step %d; saving", step)
	case errors.Is(err, errEarlyStop):
		out.note("early stop at step %d: validation loss has not improved for %d epochs (best %.4f)", step, patience, bestLoss)
	default:
		// Keep what was learned: the variables hold the last completed step.
		if step > startStep {
			if p, serr := save(step); serr == nil {
				out.note("saved %s at step %d before stopping", p, step)
			}
		}
		return err
	}
	if step > startStep || lastPrefix == "" {
		if lastPrefix, err = save(step); err != nil {
			return err
		}
	}
	out.event(trainEvent{Event: "done", Step: step, Checkpoint: lastPrefix})
	if !out.json && !out.quiet {
		abs, _ := filepath.Abs(lastPrefix)
		fmt.Fprintf(out.stdout, "model saved: %s (step %d)\n", abs, step)
	}
	return nil
}
