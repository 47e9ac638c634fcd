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

// The trainer's hooks that follow the validation loss. Each keeps what it
// needs in the checkpoint's trainer record under its name, so a resumed run
// goes on where it stopped: early stopping's patience, and keep-best's best
// loss (a worse epoch after a resume does not replace the best checkpoint).
// They are installed whenever there is a validation split, even with the
// feature off, so that a run resumed with it on counts from the first run.

// earlyStopHook ends the run when the validation loss has not improved
// for patience epochs (Options.EarlyStop; 0: it only keeps count).
type earlyStopHook struct {
	patience  int
	best      float64 // +Inf before the first validation
	sinceBest int
}

const earlyStopName = "early_stop"

func newEarlyStop(patience int) *earlyStopHook {
	return &earlyStopHook{patience: patience, best: math.Inf(1)}
}

// errEarlyStop, asked for by the hook, ends the run after the epoch's
// checkpoint with Reason EarlyStop.
var errEarlyStop = fmt.Errorf("%w: early stop", ErrStop)

func (h *earlyStopHook) Event(e Event) error {
	if e.Kind != Epoch || !e.Validated {
		return nil
	}
	if float64(e.ValLoss) < h.best {
		h.best, h.sinceBest = float64(e.ValLoss), 0
	} else {
		h.sinceBest++
	}
	if h.patience > 0 && h.sinceBest >= h.patience {
		return errEarlyStop
	}
	return nil
}

// bestState is the record both hooks keep (the names of the record's
// fields before the hooks had their own: see legacyHookStates).
type bestState struct {
	// BestLoss is nil before the first validation (JSON has no infinity).
	BestLoss  *float64 `json:"best_loss,omitempty"`
	SinceBest int      `json:"epochs_since_best,omitempty"`
}

func (h *earlyStopHook) Name() string { return earlyStopName }

func (h *earlyStopHook) State() (json.RawMessage, error) {
	return json.Marshal(bestState{BestLoss: finite(h.best), SinceBest: h.sinceBest})
}

func (h *earlyStopHook) Restore(state json.RawMessage) error {
	var st bestState
	if err := json.Unmarshal(state, &st); err != nil {
		return err
	}
	h.best, h.sinceBest = orInf(st.BestLoss), st.SinceBest
	return nil
}

// keepBestHook saves the best checkpoint so far beside the others
// (Options.KeepBest: <Name>-best, named by checkpoint.BestStateFile) and,
// with RestoreBest, goes back to it when early stopping ends the run. It
// decides at each Epoch; the checkpoint hook, which follows it, writes the
// epoch's snapshot there too.
type keepBestHook struct {
	keep, restoreBest bool
	dir               string // ModelDir, where a resumed run finds the best
	ckpt              *checkpointHook
	best              float64
	// prefix and step are the best checkpoint written (or found on resume).
	prefix string
	step   int
}

const keepBestName = "keep_best"

func newKeepBest(o *Options, ckpt *checkpointHook) *keepBestHook {
	return &keepBestHook{keep: o.KeepBest, restoreBest: o.RestoreBest, dir: o.ModelDir, ckpt: ckpt, best: math.Inf(1)}
}

func (h *keepBestHook) Event(e Event) error {
	switch {
	case e.Kind == Epoch && e.Validated:
		if float64(e.ValLoss) < h.best {
			h.best = float64(e.ValLoss)
			if h.keep {
				h.ckpt.alsoBest(h.best)
			}
		}
	case e.Kind == Best:
		h.prefix, h.step = e.Checkpoint, e.Step
	}
	return nil
}

func (h *keepBestHook) Name() string { return keepBestName }

func (h *keepBestHook) State() (json.RawMessage, error) {
	return json.Marshal(bestState{BestLoss: finite(h.best)})
}

// Restore takes the best loss back and, with KeepBest, finds the best
// checkpoint, so that RestoreBest can still go back to it.
func (h *keepBestHook) Restore(state json.RawMessage) error {
	var st bestState
	if err := json.Unmarshal(state, &st); err != nil {
		return err
	}
	h.best = orInf(st.BestLoss)
	if !h.keep || st.BestLoss == nil {
		return nil
	}
	best := filepath.Join(h.dir, checkpoint.BestStateFile)
	if _, err := os.Stat(best); err != nil {
		return nil // kept by an earlier run without KeepBest: nothing to go back to
	}
	prefix, err := checkpoint.Resolve(best)
	if err != nil {
		return fmt.Errorf("the best checkpoint: %w", err)
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return fmt.Errorf("the best checkpoint: %w", err)
	}
	h.prefix, h.step = prefix, network.InfoFromMeta(meta).Step
	return nil
}

// stopping restores the best checkpoint's variables, with RestoreBest,
// when early stopping ends the run: the final checkpoint then holds them,
// under the best's step, and stop says so.
func (h *keepBestHook) stopping(s stepper, res *Result, stop *Event) error {
	if !h.restoreBest || h.prefix == "" {
		return nil
	}
	if err := s.restore(h.prefix); err != nil {
		return fmt.Errorf("restoring the best checkpoint: %w", err)
	}
	res.Step = h.step
	stop.Restored, stop.Checkpoint, stop.Step = true, h.prefix, h.step
	return nil
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
