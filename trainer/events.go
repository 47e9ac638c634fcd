package trainer

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tfcat/tfcat/dataset"
)

// Kind says what an Event reports.
type Kind int

// The events of a run, in the order they come: Resumed (when resuming), Start,
// then Step after every step and Epoch at each epoch's first step, with that
// epoch's Checkpoint (and Best) once written: right after the Epoch with
// Options.SyncCheckpoints, otherwise after one of the next steps and always
// before the next Epoch. Then Stopping (when the run ends before its last
// step), Checkpoint again for the final save, and Done.
const (
	Resumed    Kind = iota + 1 // a checkpoint was opened to continue from (Checkpoint, Step)
	Start                      // the data is loaded and training begins
	Step                       // one step ran (Step, Loss, Elapsed)
	Epoch                      // the tutorial's per-epoch report
	Checkpoint                 // a checkpoint was written (Checkpoint, Step)
	Stopping                   // training stops early (Reason)
	Done                       // the run is over and saved (Checkpoint, Step)
	// Best is a checkpoint saved as the best so far (Options.KeepBest):
	// Checkpoint, Step, and the validation loss in BestLoss. It follows the
	// Epoch's Checkpoint event.
	Best
	// Note is a one-line remark on how the run goes (Message): whether the
	// feature cache of a fine-tuning run is on, before the first Step.
	Note
)

var kindNames = [...]string{Resumed: "resumed", Start: "start", Step: "step", Epoch: "epoch",
	Checkpoint: "checkpoint", Stopping: "stopping", Done: "done", Best: "best", Note: "note"}

// String is the event's name in lower case, as tfcat's JSON events use.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Reason says why a run stopped before its last step.
type Reason int

// Reasons for a Stopping event.
const (
	Completed   Reason = iota // not stopped: every step ran
	Interrupted               // the context was cancelled
	EarlyStop                 // the validation loss stopped improving
	Failed                    // a step, a batch, OnEvent or a hook failed
	Stopped                   // a hook asked to stop (ErrStop)
)

// Event is one report of a run. Which fields are set depends on Kind.
type Event struct {
	Kind Kind
	// Step is the steps done so far, counting a resumed checkpoint's.
	Step int
	// Steps is the step count the run aims for; StartStep where it began.
	Steps, StartStep int
	// Epoch is 1-based, as the tutorial prints it.
	Epoch int
	// Loss is the step's batch cost before the update (Step), or the
	// training batch's cost after it (Epoch).
	Loss float32
	// TrainAccuracy is on the epoch's training batch after the update;
	// ValLoss and ValAccuracy are the means over the whole validation split,
	// when Validated (there is one).
	TrainAccuracy, ValLoss, ValAccuracy float32
	Validated                           bool
	// Elapsed is the time since the first step began.
	Elapsed time.Duration
	// LearningRate is the step's (Step) or the epoch's last step's (Epoch)
	// learning rate when Options.Schedule changes it; zero otherwise.
	LearningRate float64
	// Checkpoint is the prefix written (Checkpoint, Done) or read (Resumed).
	Checkpoint string

	// Start: the data.
	Data              string
	Classes           []string
	Train, Validation int // images in each split
	Skipped           []dataset.Problem
	LoadTime          time.Duration
	// Replicas is the number of processes training together (1 alone).
	Replicas int

	// Stopping: why, and for EarlyStop the best validation loss and the
	// patience that ran out; with Options.RestoreBest, Checkpoint is the
	// best checkpoint whose weights were restored and Step its step.
	Reason   Reason
	BestLoss float32
	Patience int
	Restored bool

	// Note: the remark.
	Message string
}

// String is the tutorial's progress line for an Epoch event.
func (e Event) String() string {
	if e.Kind != Epoch {
		return e.Kind.String()
	}
	return fmt.Sprintf("Training Epoch %d --- Training Accuracy: %6.1f%%, Validation Accuracy: %6.1f%%,  Validation Loss: %.3f",
		e.Epoch, 100*e.TrainAccuracy, 100*e.ValAccuracy, e.ValLoss)
}

// StepsPerSecond is the rate since the run began, for Step events.
func (e Event) StepsPerSecond() float64 {
	if e.Elapsed <= 0 {
		return 0
	}
	return float64(e.Step-e.StartStep) / e.Elapsed.Seconds()
}

// jsonEvent is an Event as one line of tfcat train --json: only the fields
// that the kind sets, under stable names.
type jsonEvent struct {
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
	LoadSeconds   float64  `json:"load_seconds,omitempty"` // decoding and resizing the data
	Replicas      int      `json:"replicas,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	LearningRate  float64  `json:"learning_rate,omitempty"`
	BestLoss      *float32 `json:"best_val_loss,omitempty"`
	Restored      bool     `json:"restored_best,omitempty"`
	Message       string   `json:"message,omitempty"`
}

var reasonNames = [...]string{Completed: "completed", Interrupted: "interrupted", EarlyStop: "early_stop", Failed: "failed", Stopped: "stopped"}

// MarshalJSON encodes the event as tfcat train --json prints it, one object
// with "event" naming the kind.
func (e Event) MarshalJSON() ([]byte, error) {
	f32 := func(v float32) *float32 { return &v }
	j := jsonEvent{Event: e.Kind.String(), Step: e.Step}
	switch e.Kind {
	case Start:
		j.Steps, j.Classes, j.Train, j.Validation, j.LoadSeconds = e.Steps, e.Classes, e.Train, e.Validation, e.LoadTime.Seconds()
		if e.Replicas > 1 {
			j.Replicas = e.Replicas
		}
	case Step:
		j.Loss, j.StepsPerSec, j.Elapsed, j.LearningRate = f32(e.Loss), e.StepsPerSecond(), e.Elapsed.Seconds(), e.LearningRate
	case Epoch:
		j.Epoch, j.Loss, j.TrainAccuracy, j.ValAccuracy, j.ValLoss = e.Epoch, f32(e.Loss), f32(e.TrainAccuracy), f32(e.ValAccuracy), f32(e.ValLoss)
		j.LearningRate = e.LearningRate
	case Resumed, Checkpoint, Done:
		j.Checkpoint = e.Checkpoint
	case Best:
		j.Checkpoint, j.BestLoss = e.Checkpoint, f32(e.BestLoss)
	case Note:
		j.Message = e.Message
	case Stopping:
		if int(e.Reason) < len(reasonNames) {
			j.Reason = reasonNames[e.Reason]
		}
		if e.Restored {
			j.Checkpoint, j.Restored = e.Checkpoint, true
		}
	}
	return json.Marshal(j)
}
