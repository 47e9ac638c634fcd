package trainer

import (
	"encoding/json"
	"fmt"

	"github.com/tfcat/tfcat/network"
)

// runState is what a resumed run needs besides the variables and the step,
// saved with every checkpoint (network.Info.TrainerState): the states of
// the run's StateHooks by name — the trainer's own (early stopping's
// patience, keep-best's best loss, a plateau schedule's reduced rate) and
// Options.Hooks'. Without it a resumed run would let a worse epoch replace
// the best checkpoint, restart early stopping's patience and reset the
// schedule.
type runState struct {
	Hooks map[string]json.RawMessage `json:"hooks,omitempty"`

	// Written before the trainer's own parts were hooks; read on resume.
	BestLoss  *float64      `json:"best_loss,omitempty"`
	SinceBest int           `json:"epochs_since_best,omitempty"`
	Plateau   *plateauState `json:"plateau,omitempty"`
}

// legacyHookStates gives the trainer's hooks their states from a record
// written before they had their own.
func (st *runState) legacyHookStates() error {
	if st.BestLoss == nil && st.Plateau == nil {
		return nil
	}
	if st.Hooks == nil {
		st.Hooks = map[string]json.RawMessage{}
	}
	add := func(name string, v any) error {
		if _, ok := st.Hooks[name]; ok {
			return nil
		}
		b, err := json.Marshal(v)
		st.Hooks[name] = b
		return err
	}
	best := bestState{BestLoss: st.BestLoss, SinceBest: st.SinceBest}
	if err := add(earlyStopName, best); err != nil {
		return err
	}
	if err := add(keepBestName, bestState{BestLoss: st.BestLoss}); err != nil {
		return err
	}
	if st.Plateau != nil {
		return add(scheduleName, st.Plateau)
	}
	return nil
}

// info is the checkpoint information of the run at step.
func (r *run) info(step int) (network.Info, error) {
	var st runState
	for _, h := range r.hookList {
		sh, ok := h.(StateHook)
		if !ok {
			continue
		}
		s, err := sh.State()
		if err != nil {
			return network.Info{}, fmt.Errorf("hook %s: its state: %w", sh.Name(), err)
		}
		if st.Hooks == nil {
			st.Hooks = map[string]json.RawMessage{}
		}
		st.Hooks[sh.Name()] = s
	}
	b, err := json.Marshal(st)
	if err != nil {
		return network.Info{}, fmt.Errorf("the trainer's state: %w", err) // a hook's state that is not JSON
	}
	return network.Info{Classes: r.set.Classes, Step: step, TrainerState: b}, nil
}

// restoreState gives the run's StateHooks what the resumed checkpoint
// saved (r.resumed), before the first step.
func (r *run) restoreState() error {
	if len(r.resumed) == 0 {
		return nil
	}
	var st runState
	if err := json.Unmarshal(r.resumed, &st); err != nil {
		return &ResumeError{fmt.Errorf("the checkpoint's trainer state: %w", err)}
	}
	if err := st.legacyHookStates(); err != nil {
		return &ResumeError{fmt.Errorf("the checkpoint's trainer state: %w", err)}
	}
	for _, h := range r.hookList {
		sh, ok := h.(StateHook)
		if !ok {
			continue
		}
		if s, ok := st.Hooks[sh.Name()]; ok {
			if err := sh.Restore(s); err != nil {
				return &ResumeError{fmt.Errorf("hook %s: restoring its state: %w", sh.Name(), err)}
			}
		}
	}
	return nil
}
