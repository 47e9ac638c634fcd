package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tfcat/tfcat/cluster"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
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
			&cli.Float64Flag{Name: "lr", Value: 1e-4, Usage: "Adam learning rate", Action: positive[float64]("--lr")},
			&cli.Float64Flag{Name: "validation", Value: 0.2, Usage: "validation split: a fraction below 1, or a count"},
			&cli.StringFlag{Name: "model-dir", Value: ".", Usage: "where checkpoints go"},
			&cli.StringFlag{Name: "name", Value: tfsession.DefaultCheckpointName, Usage: "checkpoint file name prefix"},
			&cli.BoolFlag{Name: "step-suffix", Usage: "name checkpoints <name>-<step>, like Python's global_step="},
			&cli.IntFlag{Name: "max-to-keep", Value: tfgraph.DefaultMaxToKeep, Usage: "checkpoints kept; older ones are deleted"},
			&cli.Int64Flag{Name: "seed", Value: 2, Usage: "seed of the initial weights and the shuffle"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from the latest checkpoint in --model-dir"},
			&cli.BoolFlag{Name: "resume-if-present", Usage: "--resume when --model-dir holds a checkpoint, else start afresh (for restarted jobs)"},
			&cli.BoolFlag{Name: "reshuffle", Usage: "reshuffle the training images every epoch (the tutorial does not)"},
			&cli.BoolFlag{Name: "stream", Usage: "decode images per batch instead of holding them all in memory"},
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image instead of skipping it"},
			&cli.IntFlag{Name: "early-stop", Usage: "stop when the validation loss has not improved for this many epochs (0: never)"},
			&cli.StringFlag{Name: "logdir", Usage: "write TensorBoard event files here"},
			&cli.IntFlag{Name: "save-every", Usage: "also save every this many steps (0: only each epoch and at the end)"},
			&cli.DurationFlag{Name: "cluster-timeout", Value: trainer.DefaultClusterTimeout, Usage: "with TF_CONFIG: how long a task may be unreachable before the others stop", Action: positive[time.Duration]("--cluster-timeout")},
			&cli.BoolFlag{Name: "allow-public-cluster", Usage: "with TF_CONFIG: accept cluster addresses that resolve to public IPs (the runtime has no authentication)"},
			&cli.BoolFlag{Name: "background-checkpoints", Value: true, Usage: "write each epoch's checkpoint while the next steps run (=false: before them)"},
			&cli.BoolFlag{Name: "fuse-gradients", Value: true, Usage: "rewrite the gradients for speed: each bias add fusable into its convolution or MatMul, bias gradients as GEMVs (=false: as the C API builds them, the tutorial's arithmetic exactly, slower)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON event per line on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only errors"},
			deviceFlag, threadsFlag, precisionFlag,
		}, modelFlags...),
		Action: trainAction,
	}
}

func trainAction(c *cli.Context) error {
	out := &trainer.Printer{Out: c.App.Writer, Err: c.App.ErrWriter, JSON: c.Bool("json"), Quiet: c.Bool("quiet")}
	if f, ok := c.App.ErrWriter.(*os.File); ok {
		out.Bar = term.IsTerminal(int(f.Fd())) // where a progress bar belongs
	}
	if c.String("fine-tune") == "list" {
		return listBaseLayers(c)
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
		BatchSize: c.Int("batch"), Steps: c.Int("iterations"), Epochs: c.Int("epochs"), LearningRate: c.Float64("lr"), EarlyStop: c.Int("early-stop"),
		ModelDir: c.String("model-dir"), Name: c.String("name"), StepSuffix: c.Bool("step-suffix"), MaxToKeep: c.Int("max-to-keep"),
		Resume: c.Bool("resume"), ResumeIfPresent: c.Bool("resume-if-present"), LogDir: c.String("logdir"), Session: cfg, OnEvent: out.Event, SaveEvery: c.Int("save-every"),
		ClusterTimeout: c.Duration("cluster-timeout"), AllowPublicCluster: c.Bool("allow-public-cluster"),
		UnfusedGradients: !c.Bool("fuse-gradients"),
		SyncCheckpoints:  !c.Bool("background-checkpoints"),
	}
	if opt.Cluster, _, err = cluster.FromEnv(); err != nil {
		return err
	}
	// Resuming takes the checkpoint's input size unless the flags say otherwise.
	resuming := opt.Resume || opt.ResumeIfPresent
	if (!resuming && c.String("base") == "") || c.IsSet("size") { // a backbone fixes the size
		opt.Size = c.Int("size")
	}
	if (!resuming && c.String("base") == "") || c.IsSet("channels") {
		opt.Channels = c.Int("channels")
	}
	if err := modelOptions(c, &opt); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := trainer.Train(ctx, opt)
	out.ClearBar()
	var re *trainer.ResumeError
	var oe *trainer.OptionError
	if errors.As(err, &re) && !errors.As(err, &oe) {
		return fmt.Errorf("--resume: %w", re.Err)
	}
	err = trainError(err)
	if err != nil && res != nil && res.Checkpoint != "" && res.CheckpointStep == res.Step && res.Step > res.StartStep {
		out.Note("saved %s at step %d before stopping", res.Checkpoint, res.Step)
	}
	return err
}
