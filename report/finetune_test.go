package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/trainer"
)

// fineTuneHistory is two runs as trainer writes them: a head on a frozen
// backbone to step 6, then --resume --fine-tune to step 12.
const fineTuneHistory = `{"event":"run","time":"2026-12-01T10:00:00Z","command":["tfcat","train","--base","bb"],"start_step":0,"options":{}}
{"event":"start","classes":["a","b"],"train_images":30,"validation_images":10}
{"event":"step","step":2,"loss":0.9,"elapsed_s":0.1}
{"event":"epoch","step":1,"epoch":1,"loss":0.9,"train_accuracy":0.5,"val_loss":0.8,"val_accuracy":0.5}
{"event":"step","step":6,"loss":0.6,"elapsed_s":0.2}
{"event":"epoch","step":4,"epoch":2,"loss":0.6,"train_accuracy":0.7,"val_loss":0.6,"val_accuracy":0.7}
{"event":"done","step":6}
{"event":"run","time":"2026-12-01T10:05:00Z","command":["tfcat","train","--resume","--fine-tune","30"],"start_step":6,"options":{}}
{"event":"start","classes":["a","b"],"train_images":30,"validation_images":10}
{"event":"fine_tune","step":6,"variables":30,"from_layer":"block_14_expand","base_lr":0.0001}
{"event":"step","step":8,"loss":0.5,"elapsed_s":0.4}
{"event":"epoch","step":7,"epoch":3,"loss":0.5,"train_accuracy":0.8,"val_loss":0.5,"val_accuracy":0.8}
{"event":"step","step":12,"loss":0.3,"elapsed_s":0.6}
{"event":"epoch","step":10,"epoch":4,"loss":0.3,"train_accuracy":0.9,"val_loss":0.4,"val_accuracy":0.85}
{"event":"done","step":12}
`

// TestReportFineTune: the report of a frozen head then fine-tuning marks
// where phase 2 starts on both charts (at its step's place on the x axis)
// and says in the runs table what each run trained of the backbone.
func TestReportFineTune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	testmodel.Checkpoint(t, network.Tutorial(2).WithInput(12, 12, 1), testmodel.Options{Seed: 1, Dir: dir})
	if err := os.WriteFile(filepath.Join(dir, trainer.HistoryFile), []byte(fineTuneHistory), 0o644); err != nil {
		t.Fatal(err)
	}
	m := open(t, dir)
	var page bytes.Buffer
	if err := Write(&page, Options{Model: m}); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{
		"<th>backbone</th>", "<td>frozen</td>",
		`<td class="fine-tune">fine-tuned: 30 variables, from layer block_14_expand up, learning rate 0.0001</td>`,
		`id="phases">Dashed line: fine-tuning starts (step 6)`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	r, err := Build(Options{Model: m})
	if err != nil {
		t.Fatal(err)
	}
	v := &view{Report: r}
	v.Charts = charts(r.History)
	if len(v.Charts) != 2 {
		t.Fatalf("%d charts, want loss and accuracy", len(v.Charts))
	}
	for _, c := range v.Charts {
		// The loss chart's steps run 1 (the first validation loss) to 12
		// (the last step), the accuracy chart's 1 to 10: step 6 at its
		// place on each.
		lo, hi := 1.0, 12.0
		if c.ID == "accuracy" {
			lo, hi = 1, 10
		}
		want := round1(c.Left + (6-lo)/(hi-lo)*c.PlotW)
		if len(c.Phases) != 1 || c.Phases[0].Step != 6 || c.Phases[0].X != want {
			t.Errorf("chart %s marks %+v; want fine-tuning at step 6, x %g", c.ID, c.Phases, want)
		}
		mark := `<g class="phase" data-step="6"><line x1="` + fmt.Sprint(want)
		if !strings.Contains(html, `<figure class="chart" id="chart-`+c.ID) || !strings.Contains(html, mark) {
			t.Errorf("the page lacks chart %s's mark %q", c.ID, mark)
		}
	}
}
