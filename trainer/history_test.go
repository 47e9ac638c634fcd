package trainer

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
)

// TestHistory: a run leaves its history in the model folder — its command
// line and options, the data counts, a loss for every step of a short run and
// the epoch reports — and a resumed run appends to it.
func TestHistory(t *testing.T) {
	data := folder(t, 8) // 12 training, 4 validation images: 3 steps per epoch
	opt := small(t, data)
	opt.Epochs = 2
	opt.Command = []string{"tfcat", "train", "--data", data}
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(opt.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 1 || h.Damaged != 0 {
		t.Fatalf("%d runs, %d damaged lines; want 1, 0", len(h.Runs), h.Damaged)
	}
	r := h.Runs[0]
	if !slices.Equal(r.Command, opt.Command) || r.Options["Data"] != data || r.Options["Size"] != 12.0 || r.Options["BatchSize"] != 4.0 {
		t.Errorf("run line: command %q, options %v", r.Command, r.Options)
	}
	if r.Train != 12 || r.Validation != 4 || !slices.Equal(r.Classes, []string{"a", "b"}) || r.StartStep != 0 || r.EndStep != 6 || r.Reason != "completed" {
		t.Errorf("run %+v", r)
	}
	if r.Time.IsZero() {
		t.Error("no time recorded")
	}
	if len(h.Losses) != 6 || h.Losses[0].Step != 1 || h.Losses[5].Step != 6 {
		t.Errorf("losses %v, want steps 1 to 6", h.Losses)
	}
	if len(h.Epochs) != 2 || h.Epochs[0].Step != 1 || h.Epochs[1].Step != 4 || h.Epochs[1].Epoch != 2 {
		t.Fatalf("epochs %+v, want epoch 1 at step 1 and 2 at step 4", h.Epochs)
	}
	for _, e := range h.Epochs {
		for _, v := range []float64{e.Loss, e.TrainAccuracy, e.ValLoss, e.ValAccuracy} {
			if math.IsNaN(v) || v < 0 {
				t.Errorf("epoch %+v has a missing value", e)
			}
		}
	}

	opt.Resume, opt.Epochs, opt.Steps = true, 0, 9
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if h, err = ReadHistory(opt.ModelDir); err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 2 || h.Runs[1].StartStep != 6 || h.Runs[1].EndStep != 9 || h.Runs[1].Options["Resume"] != true {
		t.Fatalf("after resuming: runs %+v", h.Runs)
	}
	if n := len(h.Losses); n != 9 || h.Losses[n-1].Step != 9 {
		t.Errorf("losses after resuming %v, want steps 1 to 9", h.Losses)
	}
	// The resumed run's epoch count starts again from its first step (the
	// tutorial's loop index is the run's), at step 7.
	if len(h.Epochs) != 3 || h.Epochs[2].Step != 7 {
		t.Errorf("epochs after resuming %+v", h.Epochs)
	}
}

// TestHistoryNewRunReplaces: a new run in the same folder starts a new
// history, but only once it saves: a run that fails before its first
// checkpoint leaves the folder's history as it was.
func TestHistoryNewRunReplaces(t *testing.T) {
	data := folder(t, 8)
	opt := small(t, data)
	opt.Steps = 3
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(opt.ModelDir, HistoryFile)
	before, _ := os.ReadFile(path)

	bad := opt
	bad.Data = filepath.Join(t.TempDir(), "missing")
	if _, err := Train(context.Background(), bad); err == nil {
		t.Fatal("training on a missing folder did not fail")
	}
	boom := errors.New("boom")
	failing := opt
	failing.OnEvent = func(e Event) error {
		if e.Kind == Start {
			return boom
		}
		return nil
	}
	if _, err := Train(context.Background(), failing); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a run that saved nothing changed the history")
	}

	opt.Steps = 2
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(opt.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 1 || len(h.Losses) != 2 {
		t.Errorf("a new run: %d runs and %d losses, want 1 and 2", len(h.Runs), len(h.Losses))
	}

	opt.ModelDir = filepath.Join(t.TempDir(), "quiet")
	opt.NoHistory = true
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadHistory(opt.ModelDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NoHistory: ReadHistory gave %v, want a missing file", err)
	}
}

// TestHistoryRewind: points recorded after the checkpoint a run resumes
// from (the process died before saving them) are dropped, and a torn last
// line is counted, not fatal, and does not swallow the next run's line.
func TestHistoryRewind(t *testing.T) {
	data := folder(t, 8)
	opt := small(t, data)
	opt.Steps = 4
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(opt.ModelDir, HistoryFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What a process killed at step 6, after its last checkpoint at 4, left.
	f.WriteString(`{"event":"step","step":5,"loss":0.5,"elapsed_s":1}` + "\n" + `{"event":"step","step":6,"lo`)
	f.Close()
	opt.Resume, opt.Steps = true, 7
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(opt.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, l := range h.Losses {
		steps = append(steps, l.Step)
	}
	if !slices.Equal(steps, []int{1, 2, 3, 4, 5, 6, 7}) || h.Losses[4].Loss == 0.5 {
		t.Errorf("loss steps %v (step 5: %v); want 1 to 7, step 5 from the resumed run", steps, h.Losses[4])
	}
	if h.Damaged != 1 || len(h.Runs) != 2 {
		t.Errorf("%d damaged lines, %d runs; want 1 and 2", h.Damaged, len(h.Runs))
	}

	if _, err := readHistory(strings.NewReader(`{"event":"step","step":1,"loss":1}` + "\n")); err == nil {
		t.Error("a file without a run line was read as a history")
	}
}

// TestHistoryStepAllocatesNothing: with the history file open, a training
// step (and its sampled line) still allocates nothing.
func TestHistoryStepAllocatesNothing(t *testing.T) {
	r := newRun(t)
	r.steps = 100 // a line every step
	h := keepHistory(&r.opt)
	defer h.close()
	r.history = h
	r.setHooks(false)
	if err := h.record(Event{Kind: Checkpoint, Step: r.res.Step}); err != nil { // opens the file
		t.Fatal(err)
	}
	for range 3 {
		if err := r.step(); err != nil {
			t.Fatal(err)
		}
	}
	// 100 steps, a line each: one allocation in all of them fails.
	n := testenv.Mallocs(100, func() {
		if err := r.step(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("100 training steps with the history allocate %d times; want 0", n)
	}
	h.close()
	hist, err := ReadHistory(r.opt.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Losses) < 100 {
		t.Errorf("%d step lines written, want one per step", len(hist.Losses))
	}
}

func TestHistoryRunPrecision(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"bf16", map[string]any{"Session": map[string]any{"Precision": "bf16"}}, "bf16"},
		{"f32", map[string]any{"Session": map[string]any{"Precision": "f32"}}, "f32"},
		{"unset", map[string]any{"Session": map[string]any{"Precision": ""}}, "f32"},
		{"before the option", map[string]any{"Session": map[string]any{"Device": "/cpu:0"}}, "f32"},
		{"no options", nil, "f32"},
	} {
		if got := (HistoryRun{Options: tc.opts}).Precision(); got != tc.want {
			t.Errorf("%s: Precision() = %q, want %q", tc.name, got, tc.want)
		}
	}
}
