package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/trainer"
)

// modelFlags are train's flags beyond the tutorial: the network,
// augmentation, the learning-rate schedule and the best checkpoint.
var modelFlags = []cli.Flag{
	&cli.StringFlag{Name: "conv", Value: "32,32,64", Usage: "filters of each 3x3 conv layer"},
	&cli.StringFlag{Name: "fc", Value: "128", Usage: "units of each hidden fully connected layer"},
	&cli.Float64Flag{Name: "dropout", Usage: "fraction of hidden fully connected units dropped in training"},
	&cli.BoolFlag{Name: "batch-norm", Usage: "batch normalisation after each conv and hidden layer"},
	&cli.StringFlag{Name: "resize", Value: "stretch", Usage: "stretch (cv2.resize), pad or crop: keep the aspect ratio"},
	&cli.BoolFlag{Name: "augment", Usage: "random flips and 10% brightness and contrast changes in training"},
	&cli.BoolFlag{Name: "flip", Usage: "augment: mirror half the images left to right"},
	&cli.Float64Flag{Name: "rotation", Usage: "augment: rotate by up to this fraction of a turn"},
	&cli.Float64Flag{Name: "zoom", Usage: "augment: zoom in or out by up to this fraction"},
	&cli.Float64Flag{Name: "translate", Usage: "augment: shift by up to this fraction of the size"},
	&cli.Float64Flag{Name: "brightness", Usage: "augment: add up to this much brightness, pixels in [0,1] (--augment: 0.1)"},
	&cli.Float64Flag{Name: "contrast", Usage: "augment: scale contrast by up to this fraction (--augment: 0.1)"},
	&cli.StringFlag{Name: "fill", Value: "reflect", Usage: "augment: beyond the edges, reflect, nearest or constant (black)"},
	&cli.StringFlag{Name: "lr-schedule", Value: "constant", Usage: "constant, step[:EPOCHS[:FACTOR]], cosine[:MIN] or plateau[:PATIENCE[:FACTOR[:MIN]]]"},
	&cli.BoolFlag{Name: "keep-best", Usage: "also keep the checkpoint of lowest validation loss (<name>-best, best_checkpoint)"},
	&cli.BoolFlag{Name: "restore-best", Usage: "on early stop, restore the best checkpoint's weights (implies --keep-best)"},
	&cli.StringFlag{Name: "base", Usage: "SavedModel of a pretrained feature extractor: train a head (--fc, softmax) on its frozen features"}, trustFlag,
	&cli.StringFlag{Name: "base-output", Usage: "--base: the feature output, a signature output key or a tensor name (default: the only output)"},
	&cli.StringFlag{Name: "base-channels", Usage: "--base: rgb (Keras applications, TF Hub) or bgr (tfcat models; their default)"},
	&cli.StringFlag{Name: "base-scale", Usage: "--base: input scaling, 0,1 (default), -1,1, 0,255, caffe, torch or MEAN/STD on 0..255"},
	&cli.StringFlag{Name: "fine-tune", Usage: "train the backbone too: all, its top N variables, or from layer NAME up (list: print its layers)"},
	&cli.Float64Flag{Name: "base-lr", Usage: "--fine-tune: the backbone's learning rate (default --lr / 10)"},
	&cli.BoolFlag{Name: "fine-tune-bn", Usage: "--fine-tune: the fine-tuned layers' batch norms in training mode (batch statistics; moving statistics updated with momentum 0.99)"},
}

// optionFlags names the flag of each trainer option, for errors.
var optionFlags = map[string]string{
	"Conv": "--conv", "FC": "--fc", "Dropout": "--dropout", "BatchNorm": "--batch-norm", "Resize": "--resize",
	"Augment.Rotation": "--rotation", "Augment.Zoom": "--zoom", "Augment.Translate": "--translate",
	"Augment.Brightness": "--brightness", "Augment.Contrast": "--contrast", "Augment.Fill": "--fill", "KeepBest": "--keep-best",
	"Schedule.Kind": "--lr-schedule", "Schedule.Every": "--lr-schedule", "Schedule.Factor": "--lr-schedule",
	"Schedule.Patience": "--lr-schedule", "Schedule.Min": "--lr-schedule",
	"Base": "--base", "FineTune": "--fine-tune", "BaseLearningRate": "--base-lr", "FineTuneBN": "--fine-tune-bn", "Base.Channels": "--base-channels", "Base.Scale": "--base-scale", "Session.Precision": "--precision",
	"Channels": "--channels", "Steps": "--iterations", "LearningRate": "--lr", "EarlyStop": "--early-stop", "SaveEvery": "--save-every",
}

// modelOptions sets opt's fields from modelFlags. On --resume only the
// flags given are set, so that the checkpoint decides the rest.
func modelOptions(c *cli.Context, opt *trainer.Options) error {
	set := func(name string) bool { return !(opt.Resume || opt.ResumeIfPresent) || c.IsSet(name) }
	var err error
	for name, dst := range map[string]*[]int{"conv": &opt.Conv, "fc": &opt.FC} {
		if set(name) && (c.String("base") == "" || c.IsSet(name)) { // a backbone has no conv layers, no hidden ones unless asked
			if *dst, err = trainer.ParseLayers(c.String(name)); err != nil {
				return usagef("--%s %v", name, err)
			}
		}
	}
	if set("resize") {
		if opt.Resize, err = pixels.ParseResizeMode(c.String("resize")); err != nil {
			return usagef("--resize: %v", err)
		}
	}
	if opt.Schedule, err = trainer.ParseSchedule(c.String("lr-schedule")); err != nil {
		return usagef("--lr-schedule: %v", err)
	}
	opt.Dropout, opt.BatchNorm = c.Float64("dropout"), c.Bool("batch-norm")
	opt.KeepBest, opt.RestoreBest = c.Bool("keep-best"), c.Bool("restore-best")
	if b := c.String("base"); b != "" {
		opt.Base = &trainer.Base{Path: b, Output: c.String("base-output"), Channels: c.String("base-channels"), Scale: c.String("base-scale"), Trust: c.Bool("trust-graph")}
	}
	opt.FineTune, opt.BaseLearningRate, opt.FineTuneBN = c.String("fine-tune"), c.Float64("base-lr"), c.Bool("fine-tune-bn")
	if c.Bool("augment") {
		opt.Augment = dataset.DefaultAugment()
	}
	a := &opt.Augment
	for name, dst := range map[string]*float64{"rotation": &a.Rotation, "zoom": &a.Zoom, "translate": &a.Translate,
		"brightness": &a.Brightness, "contrast": &a.Contrast} {
		if c.IsSet(name) {
			*dst = c.Float64(name)
		}
	}
	if c.IsSet("flip") {
		a.Flip = c.Bool("flip")
	}
	a.Fill = dataset.FillMode(c.String("fill"))
	return nil
}

// trainError names the flag of a trainer.OptionError: a usage error (exit 2)
// for a bad value, a plain one (exit 1) when it contradicts the checkpoint.
func trainError(err error) error {
	var oe *trainer.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	name, ok := optionFlags[oe.Option]
	if !ok {
		return err
	}
	msg := fmt.Sprintf("%s %v %s", name, oe.Value, oe.Reason)
	if errors.Is(err, trainer.ErrResumeMismatch) {
		return fmt.Errorf("--resume: %s", msg)
	}
	return usagef("%s", msg)
}
