package trainer

import (
	"encoding/json"
	"errors"

	"github.com/tfcat/tfcat/tensorboard"
)

// Hook is a part of the training loop that sees its events (TF1's
// SessionRunHook, Keras's callbacks, GoMLX's train.Loop hooks): after every
// step, at each epoch's report, at each checkpoint, and at the start and end
// of the run (see Kind for the order). The trainer's own training history
// (HistoryFile) and TensorBoard logs are hooks; Options.OnEvent is called as
// one; Options.Hooks run after them, in order.
//
// Hooks run where the run reports: in one process, or on a cluster's chief
// (TF1's chief-only hooks); the other replicas run none.
type Hook interface {
	// Event is called with each event in order. An error ends the run,
	// which saves what it learned and returns the error with Reason Failed;
	// ErrStop instead ends it after the current step (and, for an Epoch
	// event, after that epoch's checkpoint) with Reason Stopped.
	Event(e Event) error
}

// StateHook is a Hook with state of its own that every checkpoint records
// and a resumed run (Options.Resume) gives back, as early stopping's
// patience and a plateau schedule's rate are kept.
type StateHook interface {
	Hook
	// Name keys the hook's state in the checkpoint; it must be unique
	// among the run's hooks.
	Name() string
	// State is the hook's state now, as JSON: called for every checkpoint.
	State() (json.RawMessage, error)
	// Restore gives back what State returned when the resumed checkpoint
	// was written, before the first step; it is not called when the
	// checkpoint holds nothing under Name.
	Restore(state json.RawMessage) error
}

// ErrStop, returned by a Hook, ends the run as described at Hook.Event.
var ErrStop = errors.New("trainer: a hook asked to stop")

// HookFunc makes a function a Hook.
type HookFunc func(Event) error

// Event calls f.
func (f HookFunc) Event(e Event) error { return f(e) }

// tensorboardHook writes the run's scalars: the loss every step; accuracy,
// the validation scores and, with a schedule, the learning rate every epoch.
type tensorboardHook struct {
	w         *tensorboard.Writer
	scheduled bool
}

func (h tensorboardHook) Event(e Event) error {
	switch e.Kind {
	case Step:
		return h.w.Scalar(int64(e.Step), "loss", e.Loss)
	case Epoch:
		scalars := map[string]float32{"accuracy": e.TrainAccuracy, "val_loss": e.ValLoss, "val_accuracy": e.ValAccuracy}
		if h.scheduled {
			scalars["learning_rate"] = float32(e.LearningRate)
		}
		if err := h.w.Scalars(int64(e.Step), scalars); err != nil {
			return err
		}
		return h.w.Flush()
	}
	return nil
}

// hooks lists the run's hooks in calling order: the history, OnEvent,
// TensorBoard, then Options.Hooks (a replica's run has only OnEvent, for
// its progress).
func (r *run) hooks(replica bool) []Hook {
	var hs []Hook
	if r.history != nil && !replica {
		hs = append(hs, r.history)
	}
	if r.opt.OnEvent != nil {
		hs = append(hs, HookFunc(r.opt.OnEvent))
	}
	if replica {
		return hs
	}
	if r.tb != nil {
		hs = append(hs, tensorboardHook{w: r.tb, scheduled: r.opt.Schedule.Scheduled()})
	}
	return append(hs, r.opt.Hooks...)
}

// checkHooks refuses two StateHooks of one name, or one named as one of
// the trainer's own.
func checkHooks(hs []Hook) error {
	seen := map[string]bool{earlyStopName: true, keepBestName: true, scheduleName: true}
	for _, h := range hs {
		if h == nil {
			return &OptionError{Option: "Hooks", Value: "nil", Reason: "holds a nil hook"}
		}
		if sh, ok := h.(StateHook); ok {
			if seen[sh.Name()] {
				return &OptionError{Option: "Hooks", Value: sh.Name(), Reason: "names two hooks' state, or the state of one of the trainer's own (early_stop, keep_best, schedule)"}
			}
			seen[sh.Name()] = true
		}
	}
	return nil
}
