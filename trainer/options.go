package trainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/cluster"
	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfsession"
)

// The tutorial's settings, which the zero Options stand for.
const (
	DefaultSize         = 128
	DefaultChannels     = 3
	DefaultBatchSize    = 32
	DefaultSteps        = 3000
	DefaultLearningRate = 1e-4
	// DefaultClusterTimeout bounds waits for other tasks of a cluster.
	DefaultClusterTimeout = 60 * time.Second
)

// Options configure Train. The zero value trains as the tutorial's train.py
// does, except for the validation split (none) and the seed (0); Tutorial
// returns the tutorial's settings in full.
type Options struct {
	// Data is a folder with one sub-folder of images per class.
	Data string
	// Classes names the class folders in label order; empty means every
	// folder, sorted (or, when resuming, the checkpoint's classes).
	Classes []string
	// Size and Channels are the images' side and channels (3: BGR, 1: grey).
	// Zero means the tutorial's 128 and 3, or the checkpoint's when resuming;
	// a resumed checkpoint must agree with values that are set.
	Size, Channels int
	// Validation is the validation split: a fraction below 1 or a count.
	Validation float64
	// Seed seeds the initial weights and the shuffle.
	Seed int64
	// Reshuffle reshuffles the training images every epoch (the tutorial
	// does not); Stream decodes images per batch instead of holding them all;
	// Strict fails on the first unreadable image instead of skipping it.
	Reshuffle, Stream, Strict bool

	// BatchSize is the number of images per step (default 32).
	BatchSize int
	// Steps is the step count to reach, counting the steps of a resumed
	// checkpoint (default 3000). Epochs, when set, replaces it with
	// Epochs × (training images / BatchSize).
	Steps, Epochs int
	// LearningRate is Adam's (default 1e-4).
	LearningRate float64
	// EarlyStop stops training when the validation loss has not improved for
	// this many epochs; 0 never stops early.
	EarlyStop int

	// ModelDir is where checkpoints go (default "."), under Name (default
	// tfsession.DefaultCheckpointName), with "-<step>" appended when
	// StepSuffix is set; MaxToKeep checkpoints are kept (default 5).
	ModelDir   string
	Name       string
	StepSuffix bool
	MaxToKeep  int
	// Resume continues from the latest checkpoint in ModelDir, tfcat's or the
	// Python tutorial's, Adam's state and the step count included.
	// ResumeIfPresent does when there is one and starts afresh otherwise:
	// for jobs that a scheduler restarts with the same command.
	Resume, ResumeIfPresent bool

	// SaveEvery, when positive, also saves every SaveEvery steps, so that a
	// long run loses at most that many.
	SaveEvery int
	// SyncCheckpoints writes every checkpoint before the next step. By
	// default a checkpoint during training is a copy of the variables
	// written in the background while the next steps run (Events report it
	// once written); the last one is always written before Train returns.
	SyncCheckpoints bool

	// Cluster, when set, trains on a TensorFlow cluster (see package
	// cluster): every task runs Train with the same options and its task
	// type decides its part. BatchSize is then per replica: at step s
	// replica i takes the i-th slice of the global batch one process with
	// BatchSize × replicas would take, and Adam applies the replicas' mean
	// gradient once per step.
	Cluster *cluster.Config
	// ClusterTimeout bounds every wait for another task (default 60 s): a
	// task unreachable for longer ends the run with an error naming it.
	ClusterTimeout time.Duration
	// AllowPublicCluster lets cluster addresses resolve to public IPs.
	AllowPublicCluster bool

	// LogDir, when set, receives TensorBoard event files: the loss every
	// step; accuracy, val_loss and val_accuracy every epoch (and
	// learning_rate, with a Schedule).
	LogDir string

	// The network, beyond the tutorial's (see network.Network): Conv lists
	// the filters of each 3×3 conv layer (default 32, 32, 64), FC the units
	// of each hidden fully connected layer (default 128); Dropout and
	// BatchNorm are off by default; Resize is how images become squares
	// (default pixels.Stretch, the tutorial's). All are recorded in the
	// checkpoint; when resuming, those set must agree with it.
	Conv, FC  []int
	Dropout   float64
	BatchNorm bool
	Resize    pixels.ResizeMode
	// Augment transforms the training images of each batch at random
	// (seeded by Seed), in the goroutine that prepares the next batch;
	// validation never sees it. The zero value applies none.
	Augment dataset.Augment
	// Schedule changes the learning rate during training; the zero value is
	// Constant.
	Schedule Schedule
	// KeepBest saves the checkpoint with the lowest validation loss as
	// <Name>-best, named by the state file checkpoint.BestStateFile, out of the
	// rotation of the others. RestoreBest also restores it when early
	// stopping ends the run, so that the final checkpoint holds the best
	// weights (Keras's restore_best_weights); it implies KeepBest. Both need
	// a validation split.
	KeepBest, RestoreBest bool

	// Base, when set, trains a head on a pretrained backbone (transfer
	// learning) instead of the conv layers: see Base. Size and Channels
	// then come from the backbone's signature.
	Base *Base
	// FineTune trains the backbone's top variables too (with Base, or
	// resuming a checkpoint that has a backbone): "all", the top N
	// trainable variables, or a layer's name for it and every layer above
	// (backbone.FineTuneVars). Empty keeps the backbone frozen.
	FineTune string
	// BaseLearningRate is the fine-tuned variables' learning rate (default
	// LearningRate/10).
	BaseLearningRate float64
	// FineTuneBN puts the fine-tuned layers' batch norms in training mode
	// while training (batch statistics; moving statistics updated with
	// momentum tfgraph.DefaultBNMomentum, which predict, eval and export
	// use): see tfgraph.FineTune.BatchNorm. On a cluster the statistics
	// are the global batch's, as for the head's batch norm.
	FineTuneBN bool

	// Session configures TensorFlow (device, threads).
	Session tfsession.SessionConfig
	// UnfusedGradients turns off the rewriting of the gradients that lets
	// TensorFlow fuse each layer's bias add into its convolution or MatMul
	// and sums each bias gradient as a GEMV
	// (tfgraph.BuildOptions.UnfusedGradients): the tutorial's arithmetic
	// exactly, slower.
	UnfusedGradients bool
	// OnEvent, when set, receives the events of the run in order. An error
	// it returns stops training: the last completed step is saved and Train
	// returns the error.
	OnEvent func(Event) error
	// Hooks take part in the loop after the trainer's own (see Hook): they
	// see every event, can stop the run (ErrStop), and a StateHook's state
	// is kept in every checkpoint and given back on resume.
	Hooks []Hook

	// NoHistory turns off the training history (HistoryFile in ModelDir).
	NoHistory bool
	// Command is the command line the history records (default os.Args).
	Command []string
}

// Tutorial returns the tutorial's settings: 128×128 BGR images, 20%
// validation, batches of 32, 3000 steps of Adam at 1e-4, seed 2, checkpoints
// named dogs-cats-model in the current folder.
func Tutorial(data string) Options {
	return Options{Data: data, Size: DefaultSize, Channels: DefaultChannels, Validation: 0.2, Seed: 2,
		BatchSize: DefaultBatchSize, Steps: DefaultSteps, LearningRate: DefaultLearningRate, ModelDir: "."}
}

// OptionError is a bad value in Options; Option is the field's name.
type OptionError struct {
	Option string
	Value  any
	Reason string
	Err    error // what the error wraps, if anything (ErrResumeMismatch)
}

// Error names the option, its value and what is wrong.
func (e *OptionError) Error() string { return fmt.Sprintf("%s %v %s", e.Option, e.Value, e.Reason) }
func (e *OptionError) Unwrap() error { return e.Err }

// ResumeError is Train's error when it cannot resume from the checkpoint in
// ModelDir: there is none, it does not load, or the options contradict it.
type ResumeError struct{ Err error }

// Error is the cause, prefixed with "resume: ".
func (e *ResumeError) Error() string { return "resume: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ResumeError) Unwrap() error { return e.Err }

// ErrResumeMismatch is wrapped by the errors that refuse to resume a
// checkpoint with options (input size, classes) that contradict it.
var ErrResumeMismatch = errors.New("the options contradict the checkpoint")

// normalize fills defaults and checks ranges.
func (o *Options) normalize() error {
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Steps == 0 && o.Epochs == 0 {
		o.Steps = DefaultSteps
	}
	if o.LearningRate == 0 {
		o.LearningRate = DefaultLearningRate
	}
	if o.ModelDir == "" {
		o.ModelDir = "."
	}
	if o.Name == "" {
		o.Name = tfsession.DefaultCheckpointName
	}
	if o.ResumeIfPresent && !o.Resume {
		_, err := checkpoint.Resolve(o.ModelDir)
		o.Resume = err == nil
	}
	if err := checkHooks(o.Hooks); err != nil {
		return err
	}
	if o.ClusterTimeout == 0 {
		o.ClusterTimeout = DefaultClusterTimeout
	}
	switch {
	case o.Data == "":
		return &OptionError{Option: "Data", Value: `""`, Reason: "must name a folder"}
	case o.Size < 0:
		return &OptionError{Option: "Size", Value: o.Size, Reason: "must be positive"}
	case o.Channels != 0 && o.Channels != 1 && o.Channels != 3:
		return &OptionError{Option: "Channels", Value: o.Channels, Reason: "must be 1 or 3"}
	case o.BatchSize < 0:
		return &OptionError{Option: "BatchSize", Value: o.BatchSize, Reason: "must be positive"}
	case o.Steps < 0 || o.Epochs < 0:
		return &OptionError{Option: "Steps", Value: o.Steps, Reason: "and Epochs must not be negative"}
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return &OptionError{Option: "LearningRate", Value: o.LearningRate, Reason: "must be positive"}
	case o.EarlyStop < 0:
		return &OptionError{Option: "EarlyStop", Value: o.EarlyStop, Reason: "must not be negative"}
	case o.SaveEvery < 0:
		return &OptionError{Option: "SaveEvery", Value: o.SaveEvery, Reason: "must not be negative"}
	case o.ClusterTimeout < 0:
		return &OptionError{Option: "ClusterTimeout", Value: o.ClusterTimeout, Reason: "must be positive"}
	case o.UnfusedGradients && o.Session.Precision != "" && o.Session.Precision != tfsession.F32:
		return &OptionError{Option: "Session.Precision", Value: o.Session.Precision, Reason: "cannot go with UnfusedGradients (tfcat train --fuse-gradients=false): the tutorial's exact arithmetic is float32"}
	case o.Conv != nil && len(o.Conv) == 0:
		return &OptionError{Option: "Conv", Value: "[]", Reason: "must list at least one layer"}
	case o.FC != nil && len(o.FC) == 0:
		return &OptionError{Option: "FC", Value: "[]", Reason: "must list at least one layer"}
	case !(o.Dropout >= 0 && o.Dropout < 1):
		return &OptionError{Option: "Dropout", Value: o.Dropout, Reason: "must lie in [0, 1)"}
	case o.Base != nil && o.Base.Path == "":
		return &OptionError{Option: "Base", Value: `""`, Reason: "must name a SavedModel folder"}
	case o.FineTune != "" && o.Base == nil && !o.Resume && !o.ResumeIfPresent:
		return &OptionError{Option: "FineTune", Value: o.FineTune, Reason: "needs a backbone (Base), or a checkpoint on one to resume"}
	case o.BaseLearningRate < 0 || math.IsInf(o.BaseLearningRate, 0) || math.IsNaN(o.BaseLearningRate):
		return &OptionError{Option: "BaseLearningRate", Value: o.BaseLearningRate, Reason: "must be positive"}
	case o.BaseLearningRate != 0 && o.FineTune == "":
		return &OptionError{Option: "BaseLearningRate", Value: o.BaseLearningRate, Reason: "needs FineTune"}
	case o.FineTuneBN && o.FineTune == "":
		return &OptionError{Option: "FineTuneBN", Value: true, Reason: "needs FineTune"}
	case o.Base != nil && o.Conv != nil:
		return &OptionError{Option: "Conv", Value: o.Conv, Reason: "cannot be used with a backbone: the head has only fully connected layers"}
	}
	for _, l := range []struct {
		name  string
		sizes []int
	}{{"Conv", o.Conv}, {"FC", o.FC}} {
		for _, n := range l.sizes {
			if n <= 0 {
				return &OptionError{Option: l.name, Value: l.sizes, Reason: "sizes must be positive"}
			}
		}
	}
	mode, err := pixels.ParseResizeMode(string(o.Resize))
	if err != nil {
		return &OptionError{Option: "Resize", Value: o.Resize, Reason: "must be stretch, pad or crop"}
	}
	if o.Resize != "" {
		o.Resize = mode
	}
	var ae *dataset.AugmentError
	if err := o.Augment.Validate(); errors.As(err, &ae) {
		return &OptionError{Option: "Augment." + ae.Field, Value: ae.Value, Reason: "must lie in " + ae.Range}
	} else if err != nil {
		return &OptionError{Option: "Augment.Fill", Value: o.Augment.Fill, Reason: "must be reflect, nearest or constant"}
	}
	if o.RestoreBest {
		o.KeepBest = true
	}
	return o.Schedule.normalize()
}

// network is the network the options ask for, for the given classes.
func (o *Options) network(classes int) network.Network {
	net := network.Tutorial(classes).WithInput(o.Size, o.Size, o.Channels)
	net.LearningRate = o.LearningRate
	if o.Conv != nil {
		net.Conv = make([]network.ConvLayer, len(o.Conv))
		for i, f := range o.Conv {
			net.Conv[i] = network.ConvLayer{Size: 3, Filters: f}
		}
	}
	if o.FC != nil {
		net.FC, net.MoreFC = o.FC[0], slices.Clone(o.FC[1:])
	}
	net.Dropout, net.BatchNorm = o.Dropout, o.BatchNorm
	if o.Resize != "" && o.Resize != pixels.Stretch {
		net.Resize = o.Resize
	}
	return net
}

// checkNetwork refuses to resume a checkpoint whose network differs from
// the options that are set, naming the first option that differs.
func (o *Options) checkNetwork(net network.Network) error {
	filters := make([]int, len(net.Conv))
	for i, c := range net.Conv {
		filters[i] = c.Filters
	}
	resize := net.Resize
	if resize == "" {
		resize = pixels.Stretch
	}
	for _, c := range []struct {
		option    string
		set, same bool
		want, got any
	}{
		{"Conv", o.Conv != nil, slices.Equal(o.Conv, filters), o.Conv, filters},
		{"FC", o.FC != nil, slices.Equal(o.FC, net.Hidden()), o.FC, net.Hidden()},
		{"Dropout", o.Dropout != 0, o.Dropout == net.Dropout, o.Dropout, net.Dropout},
		{"BatchNorm", o.BatchNorm, net.BatchNorm, o.BatchNorm, net.BatchNorm},
		{"Resize", o.Resize != "", o.Resize == resize, o.Resize, resize},
	} {
		if c.set && !c.same {
			return &OptionError{Option: c.option, Value: c.want, Reason: fmt.Sprintf("contradicts the checkpoint's %v", c.got), Err: ErrResumeMismatch}
		}
	}
	return nil
}

// ParseLayers reads a comma-separated list of layer sizes, such as the
// tutorial's conv filters "32,32,64": positive whole numbers, at least one.
func ParseLayers(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: %q is not a positive whole number", s, p)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q is empty: give at least one layer", s)
	}
	return out, nil
}

// lossScale says whether the graph scales its loss: float16 training needs it
// (tfgraph.BuildOptions.LossScale), float32 and bfloat16 (float32's exponent
// range) do not.
func (o *Options) lossScale() bool { return o.Session.Precision == tfsession.FP16 }
