package trainer

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/tfgraph"
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
		{"resize", func(o *Options) { o.Resize = dataset.Crop }, "Resize"},
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
	st, err := tfgraph.ReadCheckpointStateFile(filepath.Join(opt.ModelDir, tfgraph.BestStateFile))
	if err != nil || st.ModelCheckpointPath != tfgraph.DefaultCheckpointName+tfgraph.BestSuffix {
		t.Fatalf("best_checkpoint: %+v, %v", st, err)
	}
	latest, err := tfgraph.ReadCheckpointState(opt.ModelDir)
	if err != nil || slices.Contains(latest.AllModelCheckpointPaths, st.ModelCheckpointPath) {
		t.Errorf("the checkpoint file %+v (%v) should not rotate the best", latest, err)
	}
	// The final checkpoint holds the best weights, and tools pick either.
	read := func(path string) map[string][]float32 {
		prefix, err := tfgraph.ResolveCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		s, mi, err := tfgraph.Resume(prefix, opt.Session, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if path != opt.ModelDir && mi.Step != best.Step {
			t.Errorf("%s records step %d, want %d", path, mi.Step, best.Step)
		}
		v, err := s.VariableValues()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	final, kept := read(opt.ModelDir), read(filepath.Join(opt.ModelDir, tfgraph.BestStateFile))
	for name, v := range kept {
		if !slices.Equal(final[name], v) {
			t.Errorf("variable %s of the final checkpoint differs from the best's", name)
		}
	}
	if _, err := os.Stat(best.Checkpoint + tfgraph.IndexSuffix); err != nil {
		t.Error(err)
	}
}
