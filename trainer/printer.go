package trainer

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Printer writes a run's events as tfcat train prints them: the tutorial's
// line each epoch on Out and notes on Err (with a progress bar when Bar is
// set: Err is a terminal), or with JSON one JSON object a line on Out —
// Event.MarshalJSON's, every 10th step, and notes as {"event":"note"}.
// Quiet keeps only the JSON. Use its Event method as Options.OnEvent.
type Printer struct {
	Out, Err         io.Writer
	JSON, Quiet, Bar bool
	lastBar          time.Time
}

// printJSON prints v as one line, with --json.
func (o *Printer) printJSON(v any) {
	if o.JSON {
		b, _ := json.Marshal(v)
		fmt.Fprintln(o.Out, string(b))
	}
}

// Note prints a note: a line on Err, or a JSON note.
func (o *Printer) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if o.JSON {
		o.printJSON(map[string]string{"event": "note", "message": msg}) // keys sorted: event first
		return
	}
	if !o.Quiet {
		o.ClearBar()
		fmt.Fprintln(o.Err, msg)
	}
}

// ClearBar erases the progress bar, before other output.
func (o *Printer) ClearBar() {
	if o.Bar {
		fmt.Fprint(o.Err, "\r\033[K")
	}
}

func (o *Printer) progress(e Event) {
	if !o.Bar || o.Quiet || o.JSON {
		return
	}
	if time.Since(o.lastBar) < 100*time.Millisecond && e.Step < e.Steps {
		return
	}
	o.lastBar = time.Now()
	rate, eta := e.StepsPerSecond(), "--"
	if rate > 0 {
		eta = (time.Duration(float64(e.Steps-e.Step)/rate) * time.Second).Round(time.Second).String()
	}
	const width = 30
	filled := width * e.Step / max(e.Steps, 1)
	fmt.Fprintf(o.Err, "\r\033[K[%s%s] %d/%d  %.2f steps/s  ETA %s  loss %.4f",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), e.Step, e.Steps, rate, eta, e.Loss)
}

// Event prints one event; it never fails.
func (o *Printer) Event(e Event) error {
	switch e.Kind {
	case Resumed:
		o.Note("resuming from %s at step %d", e.Checkpoint, e.Step)
	case Start:
		if n := len(e.Skipped); n > 0 {
			o.Note("skipped %d unreadable image(s):", n)
			for i, p := range e.Skipped {
				if i == 10 {
					o.Note("  ... and %d more", n-10)
					break
				}
				o.Note("  %s", p)
			}
		}
		o.Note("%s: %d classes (%s), %d training and %d validation images, loaded in %s",
			e.Data, len(e.Classes), strings.Join(e.Classes, ", "), e.Train, e.Validation, e.LoadTime.Round(time.Millisecond))
		o.printJSON(e)
	case Step:
		o.progress(e)
		if o.JSON && (e.Step%10 == 0 || e.Step == e.Steps) {
			o.printJSON(e)
		}
	case Epoch:
		if !o.JSON && !o.Quiet {
			o.ClearBar()
			fmt.Fprintln(o.Out, e.String())
		}
		fallthrough
	case Checkpoint:
		o.printJSON(e)
	case Note:
		o.Note("%s", e.Message)
	case Stopping:
		switch e.Reason {
		case Interrupted:
			o.Note("interrupted at step %d; saving", e.Step)
		case EarlyStop:
			o.Note("early stop at step %d: validation loss has not improved for %d epochs (best %.4f)", e.Step, e.Patience, e.BestLoss)
		case Stopped:
			o.Note("stopped at step %d: a hook asked to", e.Step)
		}
	case Done:
		o.printJSON(e)
		if e.Checkpoint == "" { // a cluster's worker or parameter server
			if e.Step > 0 {
				o.Note("done at step %d", e.Step)
			} else {
				o.Note("done: the chief has finished")
			}
		} else if !o.JSON && !o.Quiet {
			abs, _ := filepath.Abs(e.Checkpoint)
			fmt.Fprintf(o.Out, "model saved: %s (step %d)\n", abs, e.Step)
		}
	}
	return nil
}
