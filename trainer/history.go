package trainer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// HistoryFile is the training history Train keeps in Options.ModelDir
// (unless Options.NoHistory is set), for reports: JSON Lines holding, for
// each call of Train, a "run" line (its time, command line, options and the
// step it started from), then its events as tfcat train --json prints them —
// start, epoch, checkpoint, stopping, done — and "step" lines sampled to at
// most about 500 a run, each with the mean loss of the steps since the line
// before.
//
// A run that fine-tunes its backbone (Options.FineTune) has a "fine_tune"
// line after its start: the step it starts at, how many backbone variables
// it trains, the layer of the lowest and their learning rate.
//
// The file is written from the run's first checkpoint on (so a run that
// saves nothing leaves the folder as it was): a new run replaces it, a
// resumed one (Options.Resume) appends to it.
const HistoryFile = "history.jsonl"

// maxHistorySteps is about the most step lines one run writes.
const maxHistorySteps = 500

// history writes HistoryFile: the run's first hook, it sees the events
// before OnEvent does.
type history struct {
	opt    *Options // the run's, as resuming and loading complete them
	path   string
	f      *os.File // nil until the first checkpoint
	buf    []byte   // lines waiting for the first checkpoint
	line   []byte   // reused for step lines
	header bool     // the run line is written

	lossSum float64 // the steps since the last step line
	lossN   int
	last    Event // the last Step event
}

// keepHistory starts the history of a run whose options are *opt (which
// resuming and loading complete); nil when opt.NoHistory is set. It is the
// run's first hook.
func keepHistory(opt *Options) *history {
	if opt.NoHistory {
		return nil
	}
	return &history{opt: opt, path: filepath.Join(opt.ModelDir, HistoryFile)}
}

// Event records e (Hook).
func (h *history) Event(e Event) error {
	if err := h.record(e); err != nil {
		return fmt.Errorf("training history %s: %w", h.path, err)
	}
	return nil
}

// historyRun is the run line.
type historyRun struct {
	Event     string         `json:"event"` // "run"
	Time      string         `json:"time"`  // RFC 3339
	Command   []string       `json:"command,omitempty"`
	StartStep int            `json:"start_step"`
	Options   map[string]any `json:"options"`
}

// record writes one event (steps only when a sample is due).
func (h *history) record(e Event) error {
	if !h.header {
		h.header = true
		if err := h.writeJSON(h.runLine(e)); err != nil {
			return err
		}
	}
	switch e.Kind {
	case Step:
		h.lossSum += float64(e.Loss)
		h.lossN++
		h.last = e
		if every := max(1, (e.Steps+maxHistorySteps-1)/maxHistorySteps); e.Step%every == 0 || e.Step == e.Steps {
			return h.writeStep()
		}
		return nil
	case Epoch:
		f32 := func(v float32) *float32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil // JSON has no NaN: the value is left out
			}
			return &v
		}
		return h.writeJSON(jsonEvent{Event: e.Kind.String(), Step: e.Step, Epoch: e.Epoch, Loss: f32(e.Loss),
			TrainAccuracy: f32(e.TrainAccuracy), ValLoss: f32(e.ValLoss), ValAccuracy: f32(e.ValAccuracy)})
	case Checkpoint:
		if err := h.writeStep(); err != nil {
			return err
		}
		if err := h.writeJSON(e); err != nil {
			return err
		}
		return h.open()
	default:
		return h.writeJSON(e)
	}
}

func (h *history) runLine(e Event) historyRun {
	cmd := h.opt.Command
	if cmd == nil {
		cmd = os.Args
	}
	opts := map[string]any{}
	v := reflect.ValueOf(*h.opt)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.IsExported() && f.Type.Kind() != reflect.Func && f.Name != "Command" && f.Name != "Hooks" {
			opts[f.Name] = v.Field(i).Interface()
		}
	}
	if abs, err := filepath.Abs(h.opt.Data); err == nil {
		opts["Data"] = abs
	}
	return historyRun{Event: "run", Time: time.Now().Format(time.RFC3339), Command: cmd, StartStep: e.StartStep, Options: opts}
}

// historyFineTune is a fine-tuning run's "fine_tune" line.
type historyFineTune struct {
	Event        string  `json:"event"` // "fine_tune"
	Step         int     `json:"step"`
	Variables    int     `json:"variables"`
	FromLayer    string  `json:"from_layer"`
	LearningRate float64 `json:"base_lr"`
}

// fineTune records that the run starting at step trains m's backbone
// variables too: after the run's start line, before its steps. It does
// nothing when m fine-tunes nothing or h is nil (NoHistory).
func (h *history) fineTune(m *tfgraph.Model, step int) error {
	if h == nil || len(m.TuneVars) == 0 {
		return nil
	}
	// The lowest: FineTuneVars lists them from the input up.
	node := strings.TrimPrefix(m.TuneVars[0].Name, tfgraph.BasePrefix+"/")
	layer := node
	if b := m.Net.Base; b != nil {
		for _, v := range b.Variables {
			if v.Node == node {
				layer = v.Layer()
				break
			}
		}
	}
	// As tfgraph's Adam for the backbone takes it: BaseLearningRate, or a
	// tenth of the head's.
	rate := h.opt.BaseLearningRate
	if rate <= 0 {
		rate = m.Net.LearningRate / 10
	}
	if !h.header {
		h.header = true
		if err := h.writeJSON(h.runLine(Event{StartStep: step})); err != nil {
			return err
		}
	}
	if err := h.writeJSON(historyFineTune{Event: "fine_tune", Step: step, Variables: len(m.TuneVars), FromLayer: layer, LearningRate: rate}); err != nil {
		return fmt.Errorf("training history %s: %w", h.path, err)
	}
	return nil
}

// writeStep writes the step line for the steps since the last one, if any.
// It allocates nothing once the file is open.
func (h *history) writeStep() error {
	if h.lossN == 0 {
		return nil
	}
	mean := h.lossSum / float64(h.lossN)
	h.lossSum, h.lossN = 0, 0
	b := append(h.line[:0], `{"event":"step","step":`...)
	b = strconv.AppendInt(b, int64(h.last.Step), 10)
	b = append(b, `,"loss":`...)
	if math.IsNaN(mean) || math.IsInf(mean, 0) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, mean, 'g', 7, 64)
	}
	b = append(b, `,"elapsed_s":`...)
	b = strconv.AppendFloat(b, h.last.Elapsed.Seconds(), 'f', 3, 64)
	b = append(b, "}\n"...)
	h.line = b
	return h.write(b)
}

func (h *history) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.write(append(b, '\n'))
}

func (h *history) write(b []byte) error {
	if h.f == nil {
		h.buf = append(h.buf, b...)
		return nil
	}
	_, err := h.f.Write(b)
	return err
}

// open opens the file at the first checkpoint, replacing it for a new run
// and appending for a resumed one, and writes what waited.
func (h *history) open() error {
	if h.f != nil {
		return nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if h.opt.Resume {
		flags = os.O_RDWR | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(h.path, flags, 0o644)
	if err != nil {
		return err
	}
	if h.opt.Resume {
		// A process killed mid-line left a torn last line: end it, so that
		// this run's lines start on a line of their own.
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
			last := make([]byte, 1)
			if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
				h.buf = append([]byte{'\n'}, h.buf...)
			}
		}
	}
	h.f = f
	_, err = f.Write(h.buf)
	h.buf = nil
	return err
}

func (h *history) close() error {
	if h == nil || h.f == nil {
		return nil
	}
	return h.f.Close()
}

// History is a training history read back (ReadHistory): the runs, the loss
// curve and the epoch reports, as they lead to the model in the folder.
type History struct {
	Runs []HistoryRun
	// Losses are the sampled step losses, each the mean over the steps
	// since the one before.
	Losses []HistoryLoss
	// Epochs are the per-epoch reports. Values a run did not have (no
	// validation split, a diverged loss) are NaN.
	Epochs []HistoryEpoch
	// Damaged counts lines that could not be read (a torn line from a
	// killed process, an edit by hand).
	Damaged int
}

// HistoryRun is one call of Train.
type HistoryRun struct {
	Time      time.Time
	Command   []string
	Options   map[string]any // the Options fields by name, as JSON decodes them
	StartStep int
	// From the run's start event.
	Classes           []string
	Train, Validation int
	// EndStep is the last step reported; Reason why it stopped, when it
	// says ("completed", "interrupted", "early_stop").
	EndStep int
	Reason  string
	// FineTune is set when the run trained backbone variables too
	// (Options.FineTune); nil for a frozen backbone, or none.
	FineTune *HistoryFineTune
}

// HistoryFineTune is what a fine-tuning run trained of its backbone.
type HistoryFineTune struct {
	// Variables is the number of backbone variables trained, FromLayer
	// the layer of the lowest (every layer above it trains too), and
	// LearningRate theirs (Options.BaseLearningRate, or its default).
	Variables    int
	FromLayer    string
	LearningRate float64
}

// FineTuneStarts are the steps at which fine-tuning starts: where a run
// that fine-tunes follows one that did not (or is the first), as when
// --resume --fine-tune continues a frozen head's training.
func (h *History) FineTuneStarts() []int {
	var out []int
	for i, r := range h.Runs {
		if r.FineTune != nil && (i == 0 || h.Runs[i-1].FineTune == nil) {
			out = append(out, r.StartStep)
		}
	}
	return out
}

// Precision is the arithmetic the run computed in (Options.Session.Precision):
// "f32" for runs that did not set it, including those recorded before tfcat
// had the option.
func (r HistoryRun) Precision() string {
	if sess, ok := r.Options["Session"].(map[string]any); ok {
		if p, ok := sess["Precision"].(string); ok && p != "" {
			return p
		}
	}
	return string(tfsession.F32)
}

// HistoryLoss is one point of the loss curve.
type HistoryLoss struct {
	Step int
	Loss float64
}

// HistoryEpoch is one epoch report.
type HistoryEpoch struct {
	Step, Epoch                               int
	Loss, TrainAccuracy, ValLoss, ValAccuracy float64
}

// maxHistoryLine bounds one line of a history file read back.
const maxHistoryLine = 1 << 20

// ReadHistory reads the HistoryFile in dir. A file missing is an error
// wrapping fs.ErrNotExist. When a resumed run starts at a step before
// points recorded earlier (the process died after them, before their
// checkpoint), those points are dropped: the history follows the
// checkpoints.
func ReadHistory(dir string) (*History, error) {
	f, err := os.Open(filepath.Join(dir, HistoryFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := readHistory(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return h, nil
}

func readHistory(r io.Reader) (*History, error) {
	h := &History{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxHistoryLine)
	num := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l struct {
			Event         string
			Time          time.Time
			Command       []string
			Options       map[string]any
			StartStep     int `json:"start_step"`
			Step, Epoch   int
			Loss          *float64
			TrainAccuracy *float64 `json:"train_accuracy"`
			ValLoss       *float64 `json:"val_loss"`
			ValAccuracy   *float64 `json:"val_accuracy"`
			Classes       []string
			Train         int `json:"train_images"`
			Validation    int `json:"validation_images"`
			Reason        string
			Variables     int
			FromLayer     string  `json:"from_layer"`
			BaseLR        float64 `json:"base_lr"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			h.Damaged++
			continue
		}
		run := len(h.Runs) - 1
		switch l.Event {
		case "run":
			h.rewind(l.StartStep)
			h.Runs = append(h.Runs, HistoryRun{Time: l.Time, Command: l.Command, Options: l.Options, StartStep: l.StartStep, EndStep: l.StartStep})
			continue
		case "start":
			if run >= 0 {
				h.Runs[run].Classes, h.Runs[run].Train, h.Runs[run].Validation = l.Classes, l.Train, l.Validation
			}
		case "step":
			h.Losses = append(h.Losses, HistoryLoss{Step: l.Step, Loss: num(l.Loss)})
		case "epoch":
			h.Epochs = append(h.Epochs, HistoryEpoch{Step: l.Step, Epoch: l.Epoch, Loss: num(l.Loss),
				TrainAccuracy: num(l.TrainAccuracy), ValLoss: num(l.ValLoss), ValAccuracy: num(l.ValAccuracy)})
		case "fine_tune":
			if run >= 0 {
				h.Runs[run].FineTune = &HistoryFineTune{Variables: l.Variables, FromLayer: l.FromLayer, LearningRate: l.BaseLR}
			}
		case "stopping":
			if run >= 0 {
				h.Runs[run].Reason = l.Reason
			}
		case "done":
			if run >= 0 && h.Runs[run].Reason == "" {
				h.Runs[run].Reason = "completed"
			}
		}
		if run >= 0 && l.Step > h.Runs[run].EndStep {
			h.Runs[run].EndStep = l.Step
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(h.Runs) == 0 {
		return nil, errors.New("not a training history: no run line")
	}
	return h, nil
}

// rewind drops the points after step, where a resumed run starts.
func (h *History) rewind(step int) {
	for len(h.Losses) > 0 && h.Losses[len(h.Losses)-1].Step > step {
		h.Losses = h.Losses[:len(h.Losses)-1]
	}
	for len(h.Epochs) > 0 && h.Epochs[len(h.Epochs)-1].Step > step {
		h.Epochs = h.Epochs[:len(h.Epochs)-1]
	}
}
