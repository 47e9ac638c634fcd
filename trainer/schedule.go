package trainer

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

// The learning-rate schedules.
const (
	// Constant keeps the learning rate (the tutorial; the default, "").
	Constant ScheduleKind = "constant"
	// StepDecay multiplies it by Factor every Every epochs.
	StepDecay ScheduleKind = "step"
	// Cosine decays it from the learning rate to Min along half a cosine
	// over the run's steps.
	Cosine ScheduleKind = "cosine"
	// Plateau multiplies it by Factor when the validation loss has not
	// improved for Patience epochs (Keras's ReduceLROnPlateau), down to Min.
	Plateau ScheduleKind = "plateau"
)

// Schedule is a learning-rate schedule. Every learning rate it sets is in
// the Step and Epoch events and, with LogDir, in TensorBoard as
// "learning_rate". A schedule other than Constant makes the learning rate a
// fed value in the graph (tfgraph.BuildOptions.ScheduledLearningRate).
type Schedule struct {
	Kind ScheduleKind
	// Every is StepDecay's period in epochs (default 10).
	Every int
	// Factor is StepDecay's and Plateau's multiplier (default 0.1 and 0.5).
	Factor float64
	// Patience is Plateau's count of epochs without improvement (default 2).
	Patience int
	// Min is Cosine's final rate and Plateau's floor (default 0).
	Min float64
}

// ParseSchedule reads a schedule as tfcat train --lr-schedule takes it:
// "constant", "step[:EVERY[:FACTOR]]", "cosine[:MIN]" or
// "plateau[:PATIENCE[:FACTOR[:MIN]]]".
func ParseSchedule(s string) (Schedule, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), ":")
	sc := Schedule{Kind: ScheduleKind(parts[0])}
	args := parts[1:]
	num := func(i int, dst *float64) error {
		if i >= len(args) {
			return nil
		}
		v, err := strconv.ParseFloat(args[i], 64)
		if err != nil {
			return fmt.Errorf("learning-rate schedule %q: %q is not a number", s, args[i])
		}
		*dst = v
		return nil
	}
	integer := func(i int, dst *int) error {
		if i >= len(args) {
			return nil
		}
		v, err := strconv.Atoi(args[i])
		if err != nil {
			return fmt.Errorf("learning-rate schedule %q: %q is not a whole number", s, args[i])
		}
		*dst = v
		return nil
	}
	var err error
	maxArgs := 0
	switch sc.Kind {
	case "", Constant:
		sc.Kind = Constant
	case StepDecay:
		maxArgs = 2
		err = firstErr(integer(0, &sc.Every), num(1, &sc.Factor))
	case Cosine:
		maxArgs = 1
		err = num(0, &sc.Min)
	case Plateau:
		maxArgs = 3
		err = firstErr(integer(0, &sc.Patience), num(1, &sc.Factor), num(2, &sc.Min))
	default:
		return Schedule{}, fmt.Errorf("learning-rate schedule %q: use constant, step, cosine or plateau", s)
	}
	if err != nil {
		return Schedule{}, err
	}
	if len(args) > maxArgs {
		return Schedule{}, fmt.Errorf("learning-rate schedule %q: %s takes at most %d values", s, sc.Kind, maxArgs)
	}
	return sc, sc.normalize()
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Scheduled reports whether the learning rate changes during training.
func (s Schedule) Scheduled() bool { return s.Kind != "" && s.Kind != Constant }

// String is the schedule as ParseSchedule reads it.
func (s Schedule) String() string {
	switch s.Kind {
	case StepDecay:
		return fmt.Sprintf("step:%d:%g", s.Every, s.Factor)
	case Cosine:
		return fmt.Sprintf("cosine:%g", s.Min)
	case Plateau:
		return fmt.Sprintf("plateau:%d:%g:%g", s.Patience, s.Factor, s.Min)
	}
	return string(Constant)
}

// normalize fills defaults and checks ranges.
func (s *Schedule) normalize() error {
	switch s.Kind {
	case "":
		s.Kind = Constant
	case StepDecay:
		if s.Every == 0 {
			s.Every = 10
		}
		if s.Factor == 0 {
			s.Factor = 0.1
		}
	case Plateau:
		if s.Patience == 0 {
			s.Patience = 2
		}
		if s.Factor == 0 {
			s.Factor = 0.5
		}
	}
	switch {
	case s.Kind != Constant && s.Kind != StepDecay && s.Kind != Cosine && s.Kind != Plateau:
		return &OptionError{Option: "Schedule.Kind", Value: s.Kind, Reason: "is not constant, step, cosine or plateau"}
	case s.Every < 0:
		return &OptionError{Option: "Schedule.Every", Value: s.Every, Reason: "must be positive"}
	case s.Patience < 0:
		return &OptionError{Option: "Schedule.Patience", Value: s.Patience, Reason: "must be positive"}
	case !(s.Factor >= 0) || math.IsInf(s.Factor, 0) || (s.Kind == Plateau && s.Factor >= 1):
		return &OptionError{Option: "Schedule.Factor", Value: s.Factor, Reason: "must be positive (below 1 for plateau)"}
	case !(s.Min >= 0) || math.IsInf(s.Min, 0):
		return &OptionError{Option: "Schedule.Min", Value: s.Min, Reason: "must not be negative"}
	}
	return nil
}

// scheduler computes the learning rate of each step.
type scheduler struct {
	s           Schedule
	base, lr    float64
	steps       int // the run's step count to reach
	perEp       int // steps per epoch
	best        float64
	sinceBest   int
	plateauRate float64 // Plateau's current rate
}

func newScheduler(s Schedule, base float64, steps, perEp int) *scheduler {
	return &scheduler{s: s, base: base, lr: base, steps: steps, perEp: perEp, best: math.Inf(1), plateauRate: base}
}

// rate is the learning rate of the step with 0-based index step.
func (sc *scheduler) rate(step int) float64 {
	switch sc.s.Kind {
	case StepDecay:
		epoch := step / max(sc.perEp, 1)
		return sc.base * math.Pow(sc.s.Factor, float64(epoch/sc.s.Every))
	case Cosine:
		p := min(float64(step)/float64(max(sc.steps, 1)), 1)
		return sc.s.Min + (sc.base-sc.s.Min)*(1+math.Cos(math.Pi*p))/2
	case Plateau:
		return sc.plateauRate
	}
	return sc.base
}

// epoch takes an epoch's validation loss, for Plateau.
func (sc *scheduler) epoch(valLoss float64) {
	if sc.s.Kind != Plateau {
		return
	}
	if valLoss < sc.best {
		sc.best, sc.sinceBest = valLoss, 0
		return
	}
	if sc.sinceBest++; sc.sinceBest >= sc.s.Patience {
		sc.plateauRate = max(sc.plateauRate*sc.s.Factor, sc.s.Min)
		sc.sinceBest = 0
	}
}

// scheduleHook sets each step's learning rate from the schedule (the
// chief's rate is the one its update applies on a cluster) and gives a
// Plateau schedule the validation losses. A Plateau schedule's reduced rate
// is its state.
type scheduleHook struct {
	sc  *scheduler
	set func(float64) error // the session's SetLearningRate
	lr  float64             // the rate set, 0 before the first step
}

const scheduleName = "schedule"

// beforeStep sets the rate of the step with 0-based index step, when it
// changes.
func (h *scheduleHook) beforeStep(step int) error {
	lr := h.sc.rate(step)
	if lr == h.lr {
		return nil
	}
	if err := h.set(lr); err != nil {
		return fmt.Errorf("step %d: %w", step+1, err)
	}
	h.lr = lr
	return nil
}

func (h *scheduleHook) Event(e Event) error {
	if e.Kind == Epoch && e.Validated {
		h.sc.epoch(float64(e.ValLoss))
	}
	return nil
}

// plateauState is a Plateau schedule's record.
type plateauState struct {
	BestLoss  *float64 `json:"best_loss,omitempty"`
	SinceBest int      `json:"epochs_since_best,omitempty"`
	Rate      float64  `json:"learning_rate"`
}

func (h *scheduleHook) Name() string { return scheduleName }

func (h *scheduleHook) State() (json.RawMessage, error) {
	sc := h.sc
	if sc.s.Kind != Plateau {
		return json.RawMessage("{}"), nil
	}
	return json.Marshal(plateauState{BestLoss: finite(sc.best), SinceBest: sc.sinceBest, Rate: sc.plateauRate})
}

func (h *scheduleHook) Restore(state json.RawMessage) error {
	var st plateauState
	if err := json.Unmarshal(state, &st); err != nil {
		return err
	}
	if sc := h.sc; sc.s.Kind == Plateau {
		sc.best, sc.sinceBest = orInf(st.BestLoss), st.SinceBest
		if st.Rate > 0 {
			sc.plateauRate = st.Rate
		}
	}
	return nil
}
