package trainer

import (
	"fmt"
)

// setRate gives the session the schedule's learning rate for the step with
// 0-based index step, when it changes.
func (r *run) setRate(step int) error {
	if r.sched == nil {
		return nil
	}
	lr := r.sched.rate(step)
	if lr == r.lr {
		return nil
	}
	if err := r.sess.SetLearningRate(lr); err != nil {
		return fmt.Errorf("step %d: %w", step+1, err)
	}
	r.lr = lr
	return nil
}

// eventRate is the learning rate events report: zero without a schedule.
func (r *run) eventRate() float64 {
	if r.sched == nil {
		return 0
	}
	return r.lr
}

// saveBest saves the best checkpoint so far, with KeepBest: <Name>-best,
// named by tfgraph.BestStateFile.
func (r *run) saveBest(step int) error {
	if !r.opt.KeepBest {
		return nil
	}
	prefix, err := r.saveNow(r.bestOptions(), step)
	if err != nil {
		return fmt.Errorf("saving the best checkpoint: %w", err)
	}
	r.bestPrefix, r.bestStep = prefix, step
	return r.emit(Event{Kind: Best, Step: step, Checkpoint: prefix, BestLoss: float32(r.bestLoss)})
}

// restoreBest restores the best checkpoint's variables, with RestoreBest,
// when early stopping ends the run: the final checkpoint then holds them,
// under the best's step.
func (r *run) restoreBest(stop *Event) error {
	if !r.opt.RestoreBest || r.bestPrefix == "" {
		return nil
	}
	if r.shadow == nil {
		if err := r.sess.RestoreVariables(r.bestPrefix); err != nil {
			return fmt.Errorf("restoring the best checkpoint: %w", err)
		}
	} else {
		// On a cluster: into the local copy, then to the parameter servers.
		err := r.shadow.RestoreVariables(r.bestPrefix)
		var vals map[string][]float32
		if err == nil {
			vals, err = r.shadow.VariableValues()
		}
		if err == nil {
			err = r.sess.SetVariables(vals)
		}
		if err != nil {
			return fmt.Errorf("restoring the best checkpoint: %w", err)
		}
	}
	r.res.Step = r.bestStep
	stop.Restored, stop.Checkpoint, stop.Step = true, r.bestPrefix, r.bestStep
	return nil
}
