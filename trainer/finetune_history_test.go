package trainer

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfsession"
)

// TestFineTuneHistory: a frozen head's run, then --resume with FineTune,
// in one history: the second run's record says it fine-tunes (how many
// backbone variables, from which layer, at what rate), the first's does
// not, and FineTuneStarts is the step where the second began. The backbone
// is a small tfcat model, exported (no Python).
func TestFineTuneHistory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := testenv.WriteClassFolders(data, []string{"dark", "light"}, 10, 16); err != nil {
		t.Fatal(err)
	}
	cpu := tfsession.SessionConfig{Device: tfsession.DeviceCPU}
	if _, err := Train(context.Background(), Options{Data: data, Size: 16, Channels: 1, Seed: 1, BatchSize: 10, Epochs: 1,
		FC: []int{8}, ModelDir: filepath.Join(dir, "pretrained"), Session: cpu, NoHistory: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := savedmodel.Export(filepath.Join(dir, "pretrained"), filepath.Join(dir, "backbone"), savedmodel.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(dir, "m")
	opt := Options{Data: data, Seed: 1, BatchSize: 5, Epochs: 2, LearningRate: 1e-2, ModelDir: m, Session: cpu,
		Base: &Base{Path: filepath.Join(dir, "backbone"), Output: "fc1/Relu:0", Channels: "bgr", Scale: "0,1"}}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	// The top 3 variables of conv1, conv2, conv3, fc1 (kernel and bias
	// each, Variable to Variable_7): fc1's two and conv3's bias.
	opt.Resume, opt.Base, opt.FineTune, opt.BaseLearningRate, opt.Epochs = true, nil, "3", 2e-3, 4
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 2 {
		t.Fatalf("%d runs in the history, want 2", len(h.Runs))
	}
	if ft := h.Runs[0].FineTune; ft != nil {
		t.Errorf("the frozen head's run is recorded as fine-tuning: %+v", ft)
	}
	want := HistoryFineTune{Variables: 3, FromLayer: "Variable_5", LearningRate: 2e-3}
	if ft := h.Runs[1].FineTune; ft == nil || *ft != want {
		t.Errorf("the fine-tuning run's record: %+v, want %+v", ft, want)
	}
	if got := h.FineTuneStarts(); !slices.Equal(got, []int{res.Step}) || res.Step == 0 {
		t.Errorf("fine-tuning starts at %v, want [%d] (where the second run resumed)", got, res.Step)
	}
	// The line itself, between the run's start and its first step.
	b, err := os.ReadFile(filepath.Join(m, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	// (A note on the feature cache may come between it and the steps.)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, `{"event":"fine_tune"`) })
	step := i + 1
	for step < len(lines) && strings.HasPrefix(lines[step], `{"event":"note"`) {
		step++
	}
	if i < 1 || !strings.HasPrefix(lines[i-1], `{"event":"start"`) || step >= len(lines) || !strings.HasPrefix(lines[step], `{"event":"step"`) {
		t.Errorf("the fine_tune line is not between the second run's start and its first step:\n%s", strings.Join(lines[max(0, i-1):min(len(lines), i+2)], "\n"))
	}
}
