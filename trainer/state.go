package trainer

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// runState is what a resumed run needs besides the variables and the step,
// saved with every checkpoint (network.Info.TrainerState): without it a
// resumed run would forget its best validation loss (and let a worse epoch
// replace the best checkpoint, or restart early stopping's patience) and
// reset a plateau schedule's reduced learning rate.
type runState struct {
	// BestLoss is the lowest validation loss so far; nil before the first
	// validation (JSON has no infinity).
	BestLoss  *float64 `json:"best_loss,omitempty"`
	SinceBest int      `json:"epochs_since_best,omitempty"`
	Plateau   *plateau `json:"plateau,omitempty"`
	// Hooks holds the StateHooks' states by name.
	Hooks map[string]json.RawMessage `json:"hooks,omitempty"`
}

// plateau is the Plateau schedule's state.
type plateau struct {
	BestLoss  *float64 `json:"best_loss,omitempty"`
	SinceBest int      `json:"epochs_since_best,omitempty"`
	Rate      float64  `json:"learning_rate"`
}

func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func orInf(p *float64) float64 {
	if p == nil {
		return math.Inf(1)
	}
	return *p
}

// info is the checkpoint information of the run at step.
func (r *run) info(step int) (network.Info, error) {
	st := runState{BestLoss: finite(r.bestLoss), SinceBest: r.sinceBest}
	if sc := r.sched; sc != nil && sc.s.Kind == Plateau {
		st.Plateau = &plateau{BestLoss: finite(sc.best), SinceBest: sc.sinceBest, Rate: sc.plateauRate}
	}
	var err error
	if st.Hooks, err = r.hookStates(); err != nil {
		return network.Info{}, err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return network.Info{}, fmt.Errorf("the trainer's state: %w", err) // a hook's state that is not JSON
	}
	return network.Info{Classes: r.set.Classes, Step: step, TrainerState: b}, nil
}

// restoreState applies the state a resumed checkpoint saved (r.resumed),
// once the run's schedule exists. With KeepBest it also finds the best
// checkpoint, so that RestoreBest can still go back to it.
func (r *run) restoreState() error {
	if len(r.resumed) == 0 {
		return nil
	}
	var st runState
	if err := json.Unmarshal(r.resumed, &st); err != nil {
		return &ResumeError{fmt.Errorf("the checkpoint's trainer state: %w", err)}
	}
	if err := r.restoreHooks(st.Hooks); err != nil {
		return err
	}
	r.bestLoss, r.sinceBest = orInf(st.BestLoss), st.SinceBest
	if sc := r.sched; sc != nil && sc.s.Kind == Plateau && st.Plateau != nil {
		sc.best, sc.sinceBest = orInf(st.Plateau.BestLoss), st.Plateau.SinceBest
		if st.Plateau.Rate > 0 {
			sc.plateauRate = st.Plateau.Rate
		}
	}
	if !r.opt.KeepBest || st.BestLoss == nil {
		return nil
	}
	best := filepath.Join(r.opt.ModelDir, checkpoint.BestStateFile)
	if _, err := os.Stat(best); err != nil {
		return nil // kept by an earlier run without KeepBest: nothing to go back to
	}
	prefix, err := checkpoint.Resolve(best)
	if err != nil {
		return &ResumeError{fmt.Errorf("the best checkpoint: %w", err)}
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return &ResumeError{fmt.Errorf("the best checkpoint: %w", err)}
	}
	r.bestPrefix, r.bestStep = prefix, network.InfoFromMeta(meta).Step
	return nil
}
