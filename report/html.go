package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

var (
	//go:embed report.html.tmpl
	pageText string
	//go:embed report.css
	pageCSS string

	// The policy is written into the page's text before parsing: it is
	// the package's own constant, not data.
	pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
		"pct": pct, "num": num,
		"f3": func(v float64) string { return fmt.Sprintf("%.3f", v) },
	}).Parse(strings.Replace(pageText, "__CSP__", ContentSecurityPolicy, 1)))
)

// ContentSecurityPolicy is the policy the page declares: no scripts and no
// requests; images only from data URIs, style only from the page's own
// sheet (by its hash).
var ContentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	style := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	return "default-src 'none'; img-src data:; style-src " + style + "; base-uri 'none'; form-action 'none'"
}()

// view is the template's data.
type view struct {
	*Report
	CSS       template.CSS
	Generated string
	Facts     []fact
	Runs      []runView
	Charts    []*chart
	Matrix    [][]cell
	Scores    []scoreView
	Thumbs    []thumbView
	// FineTuned says a run fine-tuned the backbone: the runs table then
	// says what each trained of it, and FineTuneStarts lists the steps
	// where fine-tuning starts, marked on the charts.
	FineTuned      bool
	FineTuneStarts string
	Hidden         int // misclassified images not shown
	Skipped        []string
}

type fact struct {
	Name, Value, Note string
}

type runView struct {
	Time, Command, Steps, Reason, Precision string
	FineTune                                string // what the run trained of the backbone; "" when frozen
}

type cell struct {
	Count    int
	Class    string // shade
	Title    string
	Diagonal bool
}

type scoreView struct {
	Class                          string
	Support                        int
	Precision, Recall, F1          float64
	PrecisionBar, RecallBar, F1Bar float64 // widths in SVG units
}

type thumbView struct {
	Src         template.URL
	Path        string
	True, Pred  string
	Probability string
}

// maxSkippedShown caps the unreadable files listed.
const maxSkippedShown = 20

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	v := &view{Report: r, CSS: template.CSS(pageCSS),
		Generated: r.Generated.Format(time.RFC1123)}
	v.facts()
	if r.History != nil {
		v.Charts = charts(r.History)
		var starts []string
		for _, s := range r.History.FineTuneStarts() {
			starts = append(starts, fmt.Sprint(s))
		}
		v.FineTuneStarts = strings.Join(starts, ", ")
		for _, run := range r.History.Runs {
			rv := runView{Command: shellJoin(run.Command), Steps: fmt.Sprintf("%d → %d", run.StartStep, run.EndStep), Reason: run.Reason,
				Precision: run.Precision()}
			if !run.Time.IsZero() {
				rv.Time = run.Time.Format("2006-01-02 15:04:05 MST")
			}
			if rv.Reason == "" {
				rv.Reason = "did not finish (the process stopped)"
			}
			if ft := run.FineTune; ft != nil {
				v.FineTuned = true
				rv.FineTune = fmt.Sprintf("fine-tuned: %d variables, from layer %s up, learning rate %.4g", ft.Variables, ft.FromLayer, ft.LearningRate)
			}
			v.Runs = append(v.Runs, rv)
		}
	}
	if ev := r.Evaluation; ev != nil {
		v.evaluation()
	}
	if err := pageTmpl.Execute(w, v); err != nil {
		return fmt.Errorf("report: writing the page: %w", err)
	}
	return nil
}

func (v *view) facts() {
	d := v.Model
	add := func(name, value, note string) { v.Facts = append(v.Facts, fact{name, value, note}) }
	add("Model", d.Path, v.Kind.String()+", written by "+d.WrittenBy)
	add("TensorFlow", d.TensorFlowVersion, "")
	if len(d.InputSize) == 3 {
		colours := "BGR, as OpenCV reads it"
		if d.InputSize[2] == 1 {
			colours = "greyscale"
		}
		add("Input", fmt.Sprintf("%d×%d×%d", d.InputSize[0], d.InputSize[1], d.InputSize[2]), colours)
	}
	if v.Named {
		add("Classes", fmt.Sprintf("%d: %s", len(v.Classes), strings.Join(v.Classes, ", ")), "")
	} else {
		add("Classes", fmt.Sprintf("%d: %s", len(v.Classes), strings.Join(v.Classes, ", ")),
			"The model stores no class names (the Python tutorial's checkpoints do not): they are numbered in label order; tfcat's --classes names them.")
	}
	if d.StepsKnown {
		add("Steps trained", fmt.Sprint(d.Steps), "")
	} else {
		add("Steps trained", "unknown", "the model does not record them")
	}
	add("Parameters", fmt.Sprint(d.Parameters), "trainable values")
	if n := d.Network; n != nil {
		var layers []string
		for _, c := range n.Conv {
			layers = append(layers, fmt.Sprintf("conv %d×%d×%d", c.Size, c.Size, c.Filters))
		}
		layers = append(layers, fmt.Sprintf("fc %d", n.FC), fmt.Sprintf("softmax %d", n.Classes))
		add("Network", strings.Join(layers, " → "), fmt.Sprintf("each conv: bias, max-pool 2×2, ReLU; Adam, learning rate %g", n.LearningRate))
	} else {
		add("Network", "not recorded", "the tutorial's layout, as far as the graph shows; tfcat records it in the models it writes")
	}
	if h := v.History; h != nil {
		for i := len(h.Runs) - 1; i >= 0; i-- {
			if run := h.Runs[i]; run.Train > 0 {
				data, _ := run.Options["Data"].(string)
				add("Training data", data, fmt.Sprintf("%d training and %d validation images", run.Train, run.Validation))
				break
			}
		}
	}
}

func (v *view) evaluation() {
	ev := v.Evaluation
	k := len(ev.Classes)
	v.Matrix = make([][]cell, k)
	for t := range k {
		support := 0
		for _, n := range ev.Confusion[t] {
			support += n
		}
		v.Matrix[t] = make([]cell, k)
		for p := range k {
			n := ev.Confusion[t][p]
			frac := 0.0
			if support > 0 {
				frac = float64(n) / float64(support)
			}
			shade := int(math.Ceil(frac * 8)) // 0 only for an empty cell
			kind := "o"
			if t == p {
				kind = "d"
			}
			v.Matrix[t][p] = cell{Count: n, Class: fmt.Sprintf("%s%d", kind, shade), Diagonal: t == p,
				Title: fmt.Sprintf("true %s, predicted %s: %d of %d (%s)", ev.Classes[t], ev.Classes[p], n, support, pct(frac))}
		}
	}
	for _, s := range ev.PerClass {
		v.Scores = append(v.Scores, scoreView{Class: s.Class, Support: s.Support, Precision: s.Precision, Recall: s.Recall, F1: s.F1,
			PrecisionBar: round1(60 * s.Precision), RecallBar: round1(60 * s.Recall), F1Bar: round1(60 * s.F1)})
	}
	for _, m := range v.Misclassified {
		tv := thumbView{Path: m.Path, True: ev.Classes[m.True], Pred: ev.Classes[m.Predicted], Probability: pct(float64(m.Probability))}
		if m.Thumbnail != nil {
			tv.Src = template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(m.Thumbnail))
		}
		v.Thumbs = append(v.Thumbs, tv)
	}
	v.Hidden = v.MisclassifiedTotal - len(v.Misclassified)
	for i, p := range ev.Skipped {
		if i == maxSkippedShown {
			v.Skipped = append(v.Skipped, fmt.Sprintf("… and %d more", len(ev.Skipped)-i))
			break
		}
		v.Skipped = append(v.Skipped, p.String())
	}
}

// shellJoin writes a command line as a shell would take it back.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
