package trainer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/onednn"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/tfsession"
)

func folder(t testing.TB, perClass int) string {
	// Its own pattern, less separable than testenv.WriteClassFolders': the
	// keep-best test needs a validation loss that a too-large learning rate
	// makes rise, not collapse to zero.
	dir := t.TempDir()
	for c, class := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, class), 0o755)
		for i := range perClass {
			img := image.NewGray(image.Rect(0, 0, 12, 12))
			for p := range img.Pix {
				img.Pix[p] = uint8(30 + 150*c + (p*5+i*11)%60)
			}
			f, err := os.Create(filepath.Join(dir, class, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			png.Encode(f, img)
			f.Close()
		}
	}
	return dir
}

func small(t testing.TB, data string) Options {
	return Options{Data: data, Size: 12, Channels: 1, Validation: 0.25, Seed: 3, BatchSize: 4,
		LearningRate: 1e-3, ModelDir: filepath.Join(t.TempDir(), "m"), Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU}}
}

// TestEventsInOrder checks the order and content of a run's events.
func TestEventsInOrder(t *testing.T) {
	opt := small(t, folder(t, 8)) // 12 training images: 3 steps per epoch
	opt.Epochs = 2
	opt.SyncCheckpoints = true // background writes report when they finish
	var kinds []Kind
	var last Event
	opt.OnEvent = func(e Event) error {
		kinds = append(kinds, e.Kind)
		if e.Kind == Step && e.Step != last.Step+1 {
			t.Errorf("step event %d after step %d", e.Step, last.Step)
		}
		if e.Kind == Step || e.Kind == Start {
			last = e
		}
		return nil
	}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{Start, Step, Epoch, Checkpoint, Step, Step, Step, Epoch, Checkpoint, Step, Step, Checkpoint, Done}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if res.Step != 6 || res.Reason != Completed || res.CheckpointStep != 6 {
		t.Errorf("result %+v", res)
	}
}

// TestBackgroundCheckpoints: by default the epochs' checkpoints are written
// while training goes on; each is reported once its files are complete, in
// order, before the next epoch's, and holds the variables of its step: the
// same as a run that writes each before the next step.
func TestBackgroundCheckpoints(t *testing.T) {
	data := folder(t, 8) // 3 steps per epoch
	runs := map[bool]string{}
	for _, sync := range []bool{false, true} {
		opt := small(t, data)
		opt.Epochs, opt.SyncCheckpoints = 3, sync
		opt.StepSuffix, opt.MaxToKeep = true, -1 // keep each checkpoint under its own name
		opt.Session.IntraOpThreads, opt.Session.InterOpThreads = 1, 1
		var steps []int
		var kinds []Kind
		opt.OnEvent = func(e Event) error {
			kinds = append(kinds, e.Kind)
			if e.Kind != Checkpoint {
				return nil
			}
			steps = append(steps, e.Step)
			for _, suffix := range []string{checkpoint.IndexSuffix, checkpoint.DataSuffix, checkpoint.MetaSuffix} {
				if _, err := os.Stat(e.Checkpoint + suffix); err != nil {
					t.Errorf("checkpoint of step %d reported before its file: %v", e.Step, err)
				}
			}
			return nil
		}
		res, err := Train(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 4, 7, 9}; !slices.Equal(steps, want) {
			t.Errorf("sync %v: checkpoints at steps %v, want %v", sync, steps, want)
		}
		epochs := 0
		for i, k := range kinds {
			if k == Epoch {
				epochs++
				if n := slices.Index(kinds[i+1:], Checkpoint); n < 0 || slices.Contains(kinds[i+1:i+1+n], Epoch) {
					t.Errorf("sync %v: epoch %d's checkpoint not reported before the next epoch: %v", sync, epochs, kinds)
				}
			}
		}
		if res.CheckpointStep != 9 || kinds[len(kinds)-1] != Done {
			t.Errorf("sync %v: result %+v, events %v", sync, res, kinds)
		}
		runs[sync] = opt.ModelDir
	}
	for _, step := range []int{1, 4, 7, 9} {
		var vals [2]map[string][]float32
		for i, sync := range []bool{false, true} {
			prefix := filepath.Join(runs[sync], fmt.Sprintf("%s-%d", tfsession.DefaultCheckpointName, step))
			s, mi, err := tfsession.Resume(prefix, tfsession.SessionConfig{Device: tfsession.DeviceCPU}, 1e-3)
			if err != nil {
				t.Fatal(err)
			}
			if mi.Step != step {
				t.Errorf("%s records step %d", prefix, mi.Step)
			}
			vals[i], err = s.VariableValues()
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		for name, v := range vals[1] {
			if !slices.Equal(v, vals[0][name]) {
				t.Errorf("step %d: %s written in the background differs from the synchronous save", step, name)
			}
		}
	}
}

// TestCancelSavesLoadable cancels mid-run: the last completed step is saved,
// the checkpoint loads, and a resumed run continues the step count.
func TestCancelSavesLoadable(t *testing.T) {
	data := folder(t, 8)
	opt := small(t, data)
	opt.Steps = 50
	ctx, cancel := context.WithCancel(context.Background())
	opt.OnEvent = func(e Event) error {
		if e.Kind == Step && e.Step == 4 {
			cancel()
		}
		return nil
	}
	res, err := Train(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != Interrupted || res.Step != 4 || res.CheckpointStep != 4 {
		t.Fatalf("result %+v, want interrupted and saved at step 4", res)
	}
	im, err := tfsession.ImportCheckpoint(res.Checkpoint, tfsession.ImportOptions{})
	if err != nil {
		t.Fatalf("the checkpoint saved on cancel does not load: %v", err)
	}
	if im.Meta.Step != 4 {
		t.Errorf("checkpoint records step %d, want 4", im.Meta.Step)
	}
	im.Close()

	opt.Resume, opt.Steps, opt.OnEvent = true, 7, nil
	var first int
	opt.OnEvent = func(e Event) error {
		if e.Kind == Step && first == 0 {
			first = e.Step
		}
		return nil
	}
	res, err = Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.StartStep != 4 || first != 5 || res.Step != 7 {
		t.Errorf("resumed run: start %d, first step %d, end %d; want 4, 5, 7", res.StartStep, first, res.Step)
	}
}

// TestEventErrorStopsAndSaves: an error from OnEvent ends the run with that
// error, and what was learned is saved.
func TestEventErrorStopsAndSaves(t *testing.T) {
	opt := small(t, folder(t, 8))
	opt.Steps = 20
	boom := errors.New("boom")
	opt.OnEvent = func(e Event) error {
		if e.Kind == Step && e.Step == 2 {
			return boom
		}
		return nil
	}
	res, err := Train(context.Background(), opt)
	if !errors.Is(err, boom) || res.Reason != Failed || res.CheckpointStep != 2 {
		t.Fatalf("err %v, result %+v; want boom and a checkpoint at step 2", err, res)
	}
}

func TestBadOptions(t *testing.T) {
	data := folder(t, 4)
	for _, tc := range []struct {
		name   string
		change func(*Options)
		field  string
	}{
		{"channels", func(o *Options) { o.Channels = 2 }, "Channels"},
		{"lr", func(o *Options) { o.LearningRate = -1 }, "LearningRate"},
		{"early stop", func(o *Options) { o.EarlyStop = -1 }, "EarlyStop"},
		{"no data", func(o *Options) { o.Data = "" }, "Data"},
		// Beyond the tutorial: the network, augmentation, schedules, keep-best.
		{"negative dropout", func(o *Options) { o.Dropout = -0.1 }, "Dropout"},
		{"dropout of one", func(o *Options) { o.Dropout = 1 }, "Dropout"},
		{"empty conv", func(o *Options) { o.Conv = []int{} }, "Conv"},
		{"zero filters", func(o *Options) { o.Conv = []int{8, 0} }, "Conv"},
		{"zero units", func(o *Options) { o.FC = []int{0} }, "FC"},
		{"resize", func(o *Options) { o.Resize = "squash" }, "Resize"},
		{"rotation beyond a turn", func(o *Options) { o.Augment.Rotation = 1.5 }, "Augment.Rotation"},
		{"negative zoom", func(o *Options) { o.Augment.Zoom = -0.2 }, "Augment.Zoom"},
		{"fill mode", func(o *Options) { o.Augment.Fill = "wrap" }, "Augment.Fill"},
		{"schedule", func(o *Options) { o.Schedule.Kind = "linear" }, "Schedule.Kind"},
		{"plateau factor", func(o *Options) { o.Schedule = Schedule{Kind: Plateau, Factor: 2} }, "Schedule.Factor"},
		{"keep best without validation", func(o *Options) { o.KeepBest, o.Validation = true, 0 }, "KeepBest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := small(t, data)
			tc.change(&opt)
			_, err := Train(context.Background(), opt)
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Option != tc.field {
				t.Errorf("err %v, want an OptionError for %s", err, tc.field)
			}
		})
	}
	opt := small(t, data)
	opt.Resume = true
	var re *ResumeError
	if _, err := Train(context.Background(), opt); !errors.As(err, &re) {
		t.Errorf("resume without a checkpoint: %v, want a ResumeError", err)
	}
}

// newRun prepares a run whose step method the allocation checks call.
func newRun(t testing.TB, precision ...tfsession.Precision) *run {
	opt := small(t, folder(t, 16))
	opt.Steps = 1 << 30
	if len(precision) > 0 {
		opt.Session.Precision = precision[0]
	}
	if err := opt.normalize(); err != nil {
		t.Fatal(err)
	}
	r := &run{opt: opt, res: &Result{}}
	t.Cleanup(r.close)
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	if err := r.build(); err != nil {
		t.Fatal(err)
	}
	r.trainSrc = newPrefetcher(r.set.Train, opt.BatchSize)
	// Epoch reports come at step 0 only: every later step is a plain one.
	r.perEp = 1 << 30
	r.startLoop()
	for range 3 { // warm up: the batch buffers and input tensors grow once
		if err := r.step(); err != nil {
			t.Fatal(err)
		}
	}
	// Step 1's checkpoint is written in the background, allocating.
	if err := r.ckpt.collect(true); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStepAllocatesNothing: at steady state a training step (prefetched
// batch, session run, event) allocates nothing on the Go heap, over 100
// steps (16 epochs of 24 training images in batches of 4, each
// reshuffled): one allocation in all of them fails.
func TestStepAllocatesNothing(t *testing.T) {
	precisions := []tfsession.Precision{tfsession.F32}
	if onednn.BF16() && onednn.On() {
		precisions = append(precisions, tfsession.BF16)
	} else {
		t.Log("bf16 not checked: this CPU (or ONEDNN_MAX_CPU_ISA, or oneDNN off) has no bfloat16 arithmetic")
	}
	for _, p := range precisions {
		r := newRun(t, p)
		n := testenv.Mallocs(100, func() {
			if err := r.step(); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: 100 training steps allocate %d times; want 0", p, n)
		}
	}
}

// BenchmarkStep measures one steady-state training step of a small network.
func BenchmarkStep(b *testing.B) {
	r := newRun(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := r.step(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResumeIfPresent starts afresh without a checkpoint and continues from
// one when it is there: what a restarted job needs.
func TestResumeIfPresent(t *testing.T) {
	opt := small(t, folder(t, 8))
	opt.ResumeIfPresent, opt.Steps = true, 3
	for _, want := range []struct{ start, end int }{{0, 3}, {3, 5}} {
		res, err := Train(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if res.StartStep != want.start || res.Step != want.end {
			t.Errorf("run from %d to %d, want %d to %d", res.StartStep, res.Step, want.start, want.end)
		}
		opt.Steps = 5
	}
}
