package trainer

import (
	"fmt"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/tfsession"
)

// Checkpoints in the background. An epoch's checkpoint (and, with KeepBest,
// the best) is a snapshot of the variables (tfsession.Session.Snapshot),
// written by a goroutine while the next steps run, so that TensorFlow's
// writing of the bundle and the fsyncs are off the step loop. One epoch's
// writes are in flight at a time, in order, each with Save's crash safety;
// the training goroutine emits their events once they are on disk. Every
// other save (the last one, an interrupted or failed run's) first waits for
// them. On a cluster the chief copies the parameter servers' variables into
// its local copy, snapshots that, and writes it in the background too.

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

// saveInBackground snapshots the variables after step and writes them as
// the checkpoint, and as the best one too when best is set.
func (r *run) saveInBackground(step int, best bool) error {
	if r.opt.SyncCheckpoints {
		if err := r.save(step); err != nil || !best {
			return err
		}
		return r.saveBest(step)
	}
	if err := r.collectWrites(true); err != nil {
		return err
	}
	src, err := r.saveSource()
	if err != nil {
		return err
	}
	snap, err := src.Snapshot()
	if err != nil {
		return fmt.Errorf("saving step %d: %w", step, err)
	}
	info, err := r.info(step)
	if err != nil {
		snap.Free()
		return err
	}
	type job struct {
		kind Kind
		opt  tfsession.SaveOptions
	}
	jobs := []job{{Checkpoint, r.saveOptions()}}
	if best && r.opt.KeepBest {
		jobs = append(jobs, job{Best, r.bestOptions()})
	}
	bestLoss := r.bestLoss
	done := make(chan writes, 1)
	r.pending = done
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

// collectWrites emits the events of a finished background write and
// returns its error; with wait it waits for one in flight.
func (r *run) collectWrites(wait bool) error {
	if r.pending == nil {
		return nil
	}
	var w writes
	if wait {
		w = <-r.pending
	} else {
		select {
		case w = <-r.pending:
		default:
			return nil
		}
	}
	r.pending = nil
	for _, d := range w.done {
		var err error
		if d.kind == Best {
			r.bestPrefix, r.bestStep = d.prefix, d.step
			err = r.emit(Event{Kind: Best, Step: d.step, Checkpoint: d.prefix, BestLoss: float32(d.bestLoss)})
		} else {
			r.res.Checkpoint, r.res.CheckpointStep = d.prefix, d.step
			err = r.emit(Event{Kind: Checkpoint, Step: d.step, Checkpoint: d.prefix})
		}
		if err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

// saveSource is the session checkpoints are written from: the run's own, or
// on a cluster the local copy set to the parameter servers' variables (the
// cluster's graph holds replication nodes that no checkpoint should).
func (r *run) saveSource() (*tfsession.Session, error) {
	if r.shadow == nil {
		return r.sess, nil
	}
	vals, err := r.sess.VariableValues()
	if err == nil {
		err = r.shadow.SetVariables(vals)
	}
	if err != nil {
		return nil, fmt.Errorf("saving: reading the variables: %w", err)
	}
	return r.shadow, nil
}

// saveNow writes the run's state at step where opt says, before returning.
func (r *run) saveNow(opt tfsession.SaveOptions, step int) (string, error) {
	sess, err := r.saveSource()
	if err != nil {
		return "", err
	}
	info, err := r.info(step)
	if err != nil {
		return "", err
	}
	return sess.Save(opt, info)
}

// saveOptions are where the run's checkpoints go; bestOptions, its best.
func (r *run) saveOptions() tfsession.SaveOptions {
	o := r.opt
	return tfsession.SaveOptions{Dir: o.ModelDir, Name: o.Name, StepSuffix: o.StepSuffix, MaxToKeep: o.MaxToKeep}
}

func (r *run) bestOptions() tfsession.SaveOptions {
	o := r.opt
	return tfsession.SaveOptions{Dir: o.ModelDir, Name: o.Name + checkpoint.BestSuffix, MaxToKeep: 1, StateFile: checkpoint.BestStateFile}
}
