package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfsession"
)

// TestResumeRefusesOtherNetwork: options that contradict the checkpoint's
// network are refused by name, never trained as a different model.
func TestResumeRefusesOtherNetwork(t *testing.T) {
	data := folder(t, 4)
	base := small(t, data)
	base.Steps, base.Conv, base.FC, base.BatchNorm = 2, []int{4, 8}, []int{6}, true
	if _, err := Train(context.Background(), base); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		field  string // "" when the resume must succeed
	}{
		{"same", func(*Options) {}, ""},
		{"conv", func(o *Options) { o.Conv = []int{4} }, "Conv"},
		{"fc", func(o *Options) { o.FC = []int{6, 3} }, "FC"},
		{"dropout", func(o *Options) { o.Dropout = 0.2 }, "Dropout"},
		{"resize", func(o *Options) { o.Resize = pixels.Crop }, "Resize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := base
			opt.Resume, opt.Steps = true, 3
			tc.change(&opt)
			_, err := Train(context.Background(), opt)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("resume: %v", err)
				}
				return
			}
			var oe *OptionError
			var re *ResumeError
			if !errors.As(err, &re) || !errors.As(err, &oe) || oe.Option != tc.field || !errors.Is(err, ErrResumeMismatch) {
				t.Errorf("err %v, want a ResumeError naming %s", err, tc.field)
			}
		})
	}
	// Unset options take the checkpoint's network.
	opt := small(t, data)
	opt.ModelDir, opt.Resume, opt.Steps = base.ModelDir, true, 4
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatalf("resume without network options: %v", err)
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Schedule
		bad  bool
	}{
		{"", Schedule{Kind: Constant}, false},
		{"constant", Schedule{Kind: Constant}, false},
		{"step", Schedule{Kind: StepDecay, Every: 10, Factor: 0.1}, false},
		{"step:3:0.5", Schedule{Kind: StepDecay, Every: 3, Factor: 0.5}, false},
		{"cosine:1e-6", Schedule{Kind: Cosine, Min: 1e-6}, false},
		{"plateau:4:0.2:1e-5", Schedule{Kind: Plateau, Patience: 4, Factor: 0.2, Min: 1e-5}, false},
		{"plateau:1:1.5", Schedule{}, true},
		{"step:x", Schedule{}, true},
		{"cosine:1:2", Schedule{}, true},
		{"linear", Schedule{}, true},
		{"step:-1", Schedule{}, true},
	} {
		got, err := ParseSchedule(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSchedule(%q) = %+v, %v; want %+v (error: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestScheduleRates(t *testing.T) {
	const base, steps, perEp = 0.1, 100, 10
	for _, tc := range []struct {
		s     Schedule
		step  int
		want  float64
		epoch []float64 // validation losses before the step, for Plateau
	}{
		{Schedule{Kind: Constant}, 50, base, nil},
		{Schedule{Kind: StepDecay, Every: 2, Factor: 0.5}, 19, base, nil},
		{Schedule{Kind: StepDecay, Every: 2, Factor: 0.5}, 20, base / 2, nil},
		{Schedule{Kind: StepDecay, Every: 2, Factor: 0.5}, 45, base / 4, nil},
		{Schedule{Kind: Cosine}, 0, base, nil},
		{Schedule{Kind: Cosine}, 50, base / 2, nil},
		{Schedule{Kind: Cosine, Min: 0.01}, 100, 0.01, nil},
		{Schedule{Kind: Plateau, Patience: 2, Factor: 0.5}, 0, base, []float64{1, 0.9, 0.8}},
		{Schedule{Kind: Plateau, Patience: 2, Factor: 0.5}, 0, base / 2, []float64{1, 0.9, 0.95, 0.91}},
		{Schedule{Kind: Plateau, Patience: 1, Factor: 0.5, Min: 0.04}, 0, 0.04, []float64{1, 2, 2, 2, 2}},
	} {
		sc := newScheduler(tc.s, base, steps, perEp)
		for _, l := range tc.epoch {
			sc.epoch(l)
		}
		if got := sc.rate(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%v at step %d after %v: %g, want %g", tc.s, tc.step, tc.epoch, got, tc.want)
		}
	}
}

// TestKeepBestAndRestore: a step schedule multiplies the learning rate by
// 10⁴ after two epochs, so the validation loss rises; early stopping then
// ends the run and restores the best checkpoint, which --keep-best kept
// under its own name and state file.
func TestKeepBestAndRestore(t *testing.T) {
	opt := small(t, folder(t, 8)) // 12 training images: 3 steps per epoch
	opt.Epochs, opt.EarlyStop, opt.RestoreBest = 30, 2, true
	opt.Schedule = Schedule{Kind: StepDecay, Every: 2, Factor: 1e4}
	var events []Event
	opt.OnEvent = func(e Event) error {
		if e.Kind != Step {
			events = append(events, e)
		}
		return nil
	}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != EarlyStop {
		t.Fatalf("the run ended with reason %v, want an early stop", res.Reason)
	}
	var losses []float32
	var best, stop Event
	for _, e := range events {
		switch e.Kind {
		case Epoch:
			losses = append(losses, e.ValLoss)
			if e.LearningRate == 0 {
				t.Errorf("epoch %d reports no learning rate", e.Epoch)
			}
		case Best:
			best = e
		case Stopping:
			stop = e
		}
	}
	minLoss := slices.Min(losses)
	t.Logf("validation losses %v; best %g at step %d", losses, best.BestLoss, best.Step)
	if best.Kind != Best || best.BestLoss != minLoss || losses[len(losses)-1] <= minLoss {
		t.Fatalf("best event %+v for losses %v", best, losses)
	}
	if !stop.Restored || stop.Checkpoint != best.Checkpoint || res.Step != best.Step {
		t.Errorf("stopping event %+v, result step %d; want the best (step %d) restored", stop, res.Step, best.Step)
	}
	st, err := checkpoint.ReadStateFile(filepath.Join(opt.ModelDir, checkpoint.BestStateFile))
	if err != nil || st.ModelCheckpointPath != tfsession.DefaultCheckpointName+checkpoint.BestSuffix {
		t.Fatalf("best_checkpoint: %+v, %v", st, err)
	}
	latest, err := checkpoint.ReadState(opt.ModelDir)
	if err != nil || slices.Contains(latest.AllModelCheckpointPaths, st.ModelCheckpointPath) {
		t.Errorf("the checkpoint file %+v (%v) should not rotate the best", latest, err)
	}
	// The final checkpoint holds the best weights, and tools pick either.
	read := func(path string) map[string][]float32 {
		v, step := variablesAt(t, path)
		if path != opt.ModelDir && step != best.Step {
			t.Errorf("%s records step %d, want %d", path, step, best.Step)
		}
		return v
	}
	final, kept := read(opt.ModelDir), read(filepath.Join(opt.ModelDir, checkpoint.BestStateFile))
	for name, v := range kept {
		if !slices.Equal(final[name], v) {
			t.Errorf("variable %s of the final checkpoint differs from the best's", name)
		}
	}
	if _, err := os.Stat(best.Checkpoint + checkpoint.IndexSuffix); err != nil {
		t.Error(err)
	}
}

// TestResumeKeepsBest: a run keeps its best checkpoint; the resumed run,
// at a learning rate too large to improve on it, must not replace it, must
// count early stopping's patience on from the first run and restore the
// first run's best.
func TestResumeKeepsBest(t *testing.T) {
	opt := small(t, folder(t, 8)) // 3 steps per epoch
	opt.Epochs, opt.KeepBest = 3, true
	var best Event
	var losses []float32
	opt.OnEvent = func(e Event) error {
		switch e.Kind {
		case Best:
			best = e
		case Epoch:
			losses = append(losses, e.ValLoss)
		}
		return nil
	}
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if best.Kind != Best || best.BestLoss != slices.Min(losses) {
		t.Fatalf("first run: best %+v for losses %v", best, losses)
	}
	if st := trainerState(t, opt.ModelDir); !strings.Contains(st, "best_loss") {
		t.Fatalf("the checkpoint's trainer state %q holds no best loss", st)
	}

	again := opt
	again.Resume, again.Epochs, again.EarlyStop, again.RestoreBest = true, 30, 2, true
	again.LearningRate = 5 // far too large: the loss cannot beat the first run's best
	var events []Event
	again.OnEvent = func(e Event) error {
		if e.Kind != Step {
			events = append(events, e)
		}
		return nil
	}
	res, err := Train(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	var epochs int
	for _, e := range events {
		switch e.Kind {
		case Best:
			t.Errorf("the resumed run replaced the best (loss %g) with loss %g", best.BestLoss, e.BestLoss)
		case Epoch:
			epochs++
		}
	}
	// Patience 2 counts on from the first run's epochs since its best.
	sinceBest := len(losses) - 1 - slices.Index(losses, best.BestLoss)
	if want := max(2-sinceBest, 1); res.Reason != EarlyStop || epochs != want {
		t.Errorf("resumed run: %v after %d epochs, want an early stop after %d", res.Reason, epochs, want)
	}
	if res.Step != best.Step {
		t.Errorf("resumed run ended at step %d, want the first run's best, step %d, restored", res.Step, best.Step)
	}
	// The best predates the resume, so its step is not past the resumed
	// run's first: the final checkpoint must still be written with the
	// restored variables (it was not, and kept the last epoch's).
	final, _ := variablesAt(t, opt.ModelDir)
	kept, _ := variablesAt(t, filepath.Join(opt.ModelDir, checkpoint.BestStateFile))
	for name, v := range kept {
		if !slices.Equal(final[name], v) {
			t.Errorf("variable %s of the final checkpoint differs from the best's", name)
		}
	}
}

// variablesAt reads the variables and the step of the checkpoint path
// names (a folder, a state file or a prefix).
func variablesAt(t *testing.T, path string) (map[string][]float32, int) {
	t.Helper()
	prefix, err := checkpoint.Resolve(path)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return checkpointVars(t, prefix), network.InfoFromMeta(meta).Step
}

// TestRunStateRoundTrip: the state a checkpoint stores gives a resumed
// run's hooks the best loss, the patience count and a plateau schedule's
// reduced rate; so does a record written before the trainer's parts were
// hooks of their own.
func TestRunStateRoundTrip(t *testing.T) {
	sched := Schedule{Kind: Plateau, Patience: 2, Factor: 0.5}
	type parts struct {
		early *earlyStopHook
		best  *keepBestHook
		sched *scheduleHook
	}
	newRun := func(dir string, state []byte) (*run, parts) {
		p := parts{newEarlyStop(2), newKeepBest(&Options{ModelDir: dir}, nil), &scheduleHook{sc: newScheduler(sched, 1e-3, 100, 10)}}
		return &run{set: &dataset.Set{}, resumed: state, hookList: []Hook{p.sched, p.early, p.best}}, p
	}
	r, p := newRun("", nil)
	p.early.best, p.early.sinceBest, p.best.best = 0.25, 1, 0.25
	p.sched.sc.best, p.sched.sc.sinceBest, p.sched.sc.plateauRate = 0.3, 1, 2.5e-4
	info, err := r.info(7)
	if err != nil {
		t.Fatal(err)
	}
	restored := func(t *testing.T, p parts) {
		if p.early.best != 0.25 || p.early.sinceBest != 1 || p.best.best != 0.25 {
			t.Errorf("early stop: best loss %g, epochs since %d; keep-best: %g; want 0.25, 1, 0.25", p.early.best, p.early.sinceBest, p.best.best)
		}
		if sc := p.sched.sc; sc.best != 0.3 || sc.sinceBest != 1 || sc.rate(50) != 2.5e-4 {
			t.Errorf("plateau: best %g, since %d, rate %g; want 0.3, 1, 2.5e-4", sc.best, sc.sinceBest, sc.rate(50))
		}
	}
	for _, tc := range []struct {
		name  string
		state []byte
		check func(t *testing.T, p parts)
	}{
		{"saved state", info.TrainerState, restored},
		{"record before the hooks", []byte(`{"best_loss":0.25,"epochs_since_best":1,"plateau":{"best_loss":0.3,"epochs_since_best":1,"learning_rate":0.00025}}`), restored},
		{"no validation yet", []byte(`{}`), func(t *testing.T, p parts) {
			if !math.IsInf(p.early.best, 1) || !math.IsInf(p.best.best, 1) || p.sched.sc.rate(50) != 1e-3 {
				t.Errorf("best loss %g and %g, rate %g; want +Inf and the base rate", p.early.best, p.best.best, p.sched.sc.rate(50))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, p := newRun(t.TempDir(), tc.state)
			if err := res.restoreState(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
	bad, _ := newRun("", []byte("{"))
	var re *ResumeError
	if err := bad.restoreState(); !errors.As(err, &re) {
		t.Errorf("a corrupt state: %v, want a ResumeError", err)
	}
}

// TestScheduleInTensorBoard: TensorFlow's own event reader finds the
// learning rate of every epoch of a step schedule under "learning_rate",
// with the values the epoch events reported.
func TestScheduleInTensorBoard(t *testing.T) {
	opt := small(t, folder(t, 8)) // 3 steps per epoch
	opt.Epochs, opt.LogDir = 4, t.TempDir()
	opt.Schedule = Schedule{Kind: StepDecay, Every: 2, Factor: 0.1}
	want := map[int]float64{}
	opt.OnEvent = func(e Event) error {
		if e.Kind == Epoch {
			want[e.Step] = e.LearningRate
		}
		return nil
	}
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "read.py")
	os.WriteFile(script, []byte(`import sys, glob
import tensorflow as tf
for path in glob.glob(sys.argv[1] + "/events.out.tfevents.*"):
    for e in tf.compat.v1.train.summary_iterator(path):
        for v in e.summary.value:
            if v.tag == "learning_rate":
                print(e.step, repr(v.simple_value))
`), 0o644)
	got := map[int]float64{}
	for _, line := range strings.Split(strings.TrimSpace(testenv.RunPython(t, script, opt.LogDir)), "\n") {
		var step int
		var lr float64
		if _, err := fmt.Sscan(line, &step, &lr); err != nil {
			t.Fatalf("Python printed %q: %v", line, err)
		}
		got[step] = lr
	}
	if len(want) != 4 || len(got) != len(want) {
		t.Fatalf("TensorBoard has learning rates %v, the epoch events %v", got, want)
	}
	rates := map[float64]bool{}
	for step, lr := range want {
		// TensorBoard stores the rate as float32: one rounding, 2⁻²⁴ relative.
		if math.Abs(got[step]-lr) > 1e-6*lr {
			t.Errorf("step %d: TensorBoard learning_rate %g, event %g", step, got[step], lr)
		}
		rates[lr] = true
	}
	if !rates[1e-3] || !rates[1e-4] {
		t.Errorf("learning rates %v: want 1e-3 for two epochs, then 1e-4", want)
	}
}
