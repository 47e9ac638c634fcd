package trainer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/tfsession"
)

// TestFineTuneNoGradient fine-tunes a backbone whose features go through
// IdentityN, an op the C API has no gradient for: Train refuses in one
// line naming the op, before training starts: no Step event and no
// checkpoint. (Start comes before: it reports the loaded data, whose class
// count the graph needs.)
func TestFineTuneNoGradient(t *testing.T) {
	bbDir := backbones(t)
	data := t.TempDir()
	if err := testenv.WriteClassFolders(data, []string{"dark", "light"}, 4, 32); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	var events []string
	_, err := Train(context.Background(), Options{Data: data, Seed: 1, BatchSize: 4, Epochs: 1, ModelDir: dir,
		Base: &Base{Path: filepath.Join(bbDir, "nograd")}, FineTune: "all",
		Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU},
		OnEvent: func(e Event) error {
			events = append(events, e.Kind.String())
			return nil
		}})
	if err == nil {
		t.Fatal("Train fine-tuned through IdentityN")
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "op IdentityN, which has no gradient") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming IdentityN", msg)
	}
	for _, e := range events {
		if e == Step.String() || e == Checkpoint.String() {
			t.Errorf("events %v before the error: training started", events)
			break
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("the model folder holds %d entries; want none before training", len(ents))
	}
}
