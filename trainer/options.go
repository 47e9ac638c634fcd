package trainer

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tfcat/tfcat/cluster"
	"github.com/tfcat/tfcat/tfgraph"
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
	// tfgraph.DefaultCheckpointName), with "-<step>" appended when
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
	// step; accuracy, val_loss and val_accuracy every epoch.
	LogDir string

	// Session configures TensorFlow (device, threads).
	Session tfgraph.SessionConfig
	// OnEvent, when set, receives the events of the run in order. An error
	// it returns stops training: the last completed step is saved and Train
	// returns the error.
	OnEvent func(Event) error

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
}

// Error names the option, its value and what is wrong.
func (e *OptionError) Error() string { return fmt.Sprintf("%s %v %s", e.Option, e.Value, e.Reason) }

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
		o.Name = tfgraph.DefaultCheckpointName
	}
	if o.ResumeIfPresent && !o.Resume {
		_, err := tfgraph.ResolveCheckpoint(o.ModelDir)
		o.Resume = err == nil
	}
	if o.ClusterTimeout == 0 {
		o.ClusterTimeout = DefaultClusterTimeout
	}
	switch {
	case o.Data == "":
		return &OptionError{"Data", `""`, "must name a folder"}
	case o.Size < 0:
		return &OptionError{"Size", o.Size, "must be positive"}
	case o.Channels != 0 && o.Channels != 1 && o.Channels != 3:
		return &OptionError{"Channels", o.Channels, "must be 1 or 3"}
	case o.BatchSize < 0:
		return &OptionError{"BatchSize", o.BatchSize, "must be positive"}
	case o.Steps < 0 || o.Epochs < 0:
		return &OptionError{"Steps", o.Steps, "and Epochs must not be negative"}
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return &OptionError{"LearningRate", o.LearningRate, "must be positive"}
	case o.EarlyStop < 0:
		return &OptionError{"EarlyStop", o.EarlyStop, "must not be negative"}
	case o.SaveEvery < 0:
		return &OptionError{"SaveEvery", o.SaveEvery, "must not be negative"}
	case o.ClusterTimeout < 0:
		return &OptionError{"ClusterTimeout", o.ClusterTimeout, "must be positive"}
	case o.Cluster != nil && o.Stream:
		return &OptionError{"Stream", o.Stream, "cannot be used on a cluster: every replica must see the same images"}
	}
	return nil
}
