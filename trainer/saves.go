package trainer

import (
	"fmt"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfsession"
)

// checkpointHook writes the run's checkpoints: after every epoch's report
// (and, with KeepBest, the best one when keepBestHook asks), every
// SaveEvery steps, and when the run ends. It is the last of the run's hooks,
// so every checkpoint records the state the others reached at that epoch.
//
// Checkpoints are written in the background unless SyncCheckpoints: an
// epoch's checkpoint (and its best) is a snapshot of the variables
// (tfsession.Session.Snapshot), written by a goroutine while the next steps
// run, so that TensorFlow's writing of the bundle and the fsyncs are off the
// step loop. One epoch's writes are in flight at a time, in order, each with
// Save's crash safety; the loop emits their events once they are on disk
// (collect). Every other save (the last one, an interrupted or failed run's)
// first waits for them. On a cluster the chief copies the parameter servers'
// variables into its local copy (chiefStep.source), snapshots that, and
// writes it in the background too.
type checkpointHook struct {
	opt     *Options
	perEp   int
	stepper stepper
	res     *Result
	info    func(step int) (network.Info, error) // the run's record at step (state.go)
	emit    func(Event) error

	best     bool    // keepBestHook asked for the best at this epoch
	bestLoss float64 // and its loss
	pending  chan writes
}

// written is one checkpoint a background write finished.
type written struct {
	kind     Kind // Checkpoint or Best
	step     int
	prefix   string
	bestLoss float64 // Best's
}

// writes is what a background write reports, once.
type writes struct {
	done []written
	err  error
}

// alsoBest makes the epoch's checkpoint the best one too.
func (h *checkpointHook) alsoBest(loss float64) { h.best, h.bestLoss = true, loss }

func (h *checkpointHook) Event(e Event) error {
	switch e.Kind {
	case Step:
		i := e.Step - 1 // the tutorial's loop index
		if n := h.opt.SaveEvery; n > 0 && e.Step%n == 0 && i%h.perEp != 0 {
			return h.saveInBackground(e.Step)
		}
	case Epoch:
		return h.saveInBackground(e.Step)
	}
	return nil
}

// saveInBackground snapshots the variables after step and writes them as
// the checkpoint, and as the best one too when asked.
func (h *checkpointHook) saveInBackground(step int) error {
	best := h.best
	h.best = false
	if h.opt.SyncCheckpoints {
		return h.saveSync(step, best)
	}
	if err := h.collect(true); err != nil {
		return err
	}
	src, err := h.stepper.source()
	if err != nil {
		return err
	}
	snap, err := src.Snapshot()
	if err != nil {
		return fmt.Errorf("saving step %d: %w", step, err)
	}
	info, err := h.info(step)
	if err != nil {
		snap.Free()
		return err
	}
	type job struct {
		kind Kind
		opt  tfsession.SaveOptions
	}
	jobs := []job{{Checkpoint, h.saveOptions()}}
	if best {
		jobs = append(jobs, job{Best, h.bestOptions()})
	}
	bestLoss := h.bestLoss
	done := make(chan writes, 1)
	h.pending = done
	go func() {
		defer snap.Free()
		var w writes
		for _, j := range jobs {
			prefix, err := snap.Save(j.opt, info)
			if err != nil {
				if j.kind == Best {
					err = fmt.Errorf("saving the best checkpoint: %w", err)
				}
				w.err = err
				break
			}
			w.done = append(w.done, written{j.kind, info.Step, prefix, bestLoss})
		}
		done <- w
	}()
	return nil
}

// collect emits the events of a finished background write and returns its
// error; with wait it waits for one in flight.
func (h *checkpointHook) collect(wait bool) error {
	if h.pending == nil {
		return nil
	}
	var w writes
	if wait {
		w = <-h.pending
	} else {
		select {
		case w = <-h.pending:
		default:
			return nil
		}
	}
	h.pending = nil
	for _, d := range w.done {
		e := Event{Kind: Checkpoint, Step: d.step, Checkpoint: d.prefix}
		if d.kind == Best {
			e.Kind, e.BestLoss = Best, float32(d.bestLoss)
		} else {
			h.res.Checkpoint, h.res.CheckpointStep = d.prefix, d.step
		}
		if err := h.emit(e); err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

// save writes the checkpoint of step before returning.
func (h *checkpointHook) save(step int) error { return h.saveSync(step, false) }

// saveSync writes the checkpoint of step, and the best one too with best,
// before returning: from one copy of the variables (on a cluster, one read
// of the parameter servers for both).
func (h *checkpointHook) saveSync(step int, best bool) error {
	if err := h.collect(true); err != nil {
		return err
	}
	sess, err := h.stepper.source()
	if err != nil {
		return err
	}
	info, err := h.info(step)
	if err != nil {
		return err
	}
	prefix, err := sess.Save(h.saveOptions(), info)
	if err != nil {
		return err
	}
	h.res.Checkpoint, h.res.CheckpointStep = prefix, step
	if err := h.emit(Event{Kind: Checkpoint, Step: step, Checkpoint: prefix}); err != nil || !best {
		return err
	}
	if prefix, err = sess.Save(h.bestOptions(), info); err != nil {
		return fmt.Errorf("saving the best checkpoint: %w", err)
	}
	return h.emit(Event{Kind: Best, Step: step, Checkpoint: prefix, BestLoss: float32(h.bestLoss)})
}

// saveOptions are where the run's checkpoints go; bestOptions, its best.
func (h *checkpointHook) saveOptions() tfsession.SaveOptions {
	o := h.opt
	return tfsession.SaveOptions{Dir: o.ModelDir, Name: o.Name, StepSuffix: o.StepSuffix, MaxToKeep: o.MaxToKeep}
}

func (h *checkpointHook) bestOptions() tfsession.SaveOptions {
	o := h.opt
	return tfsession.SaveOptions{Dir: o.ModelDir, Name: o.Name + checkpoint.BestSuffix, MaxToKeep: 1, StateFile: checkpoint.BestStateFile}
}
