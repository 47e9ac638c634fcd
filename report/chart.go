package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tfcat/tfcat/trainer"
)

// A chart's size in SVG units; the page scales it to its column.
const (
	chartW, chartH                         = 560, 300
	padLeft, padRight, padTop, padBottom   = 58, 14, 16, 64
	plotW, plotH                           = chartW - padLeft - padRight, chartH - padTop - padBottom
	maxLinePoints                          = 1000 // a longer series is averaged down
	legendRowY                             = chartH - 14
	legendSwatch, legendGap, legendTextGap = 18, 26, 6
)

// chart is a line chart laid out for the template.
type chart struct {
	ID, Title, XLabel, YLabel string
	W, H                      int
	Left, Top, Right, Bottom  float64 // the plot area
	PlotW, PlotH              float64
	// Where the tick labels, axis labels and legend go.
	YTickX, XTickY, XLabelX, XLabelY, YLabelX, LegendY float64
	XTicks, YTicks                                     []tick
	Series                                             []series
	// Phases mark where a training phase starts (fine-tuning): a dashed
	// line across the plot, labelled at its top.
	Phases []phase
}

// phase is a vertical mark at a step.
type phase struct {
	X     float64
	Step  int
	Label string
}

type tick struct {
	Pos   float64 // x or y in SVG units
	Label string
}

// series is one line: a polyline, and a marker per point when it has few.
type series struct {
	Name, Key string // Key names it in data-series, for tests and scripts
	Class     string // stroke colour class
	Points    string // the polyline's points; "" for one point
	Markers   []marker
	// The legend's line from LegendX to LegendEnd, its text at LegendText.
	LegendX, LegendEnd, LegendText float64
}

type marker struct {
	X, Y  float64
	Step  int
	Value float64
	Title string
}

type point struct {
	step int
	v    float64
}

type lineSpec struct {
	name, key, class string
	pts              []point
	markers          bool
	format           func(float64) string
}

// newChart lays out lines over steps; fixed, when set, is the y range.
// Each of phases (steps) is marked where it lies within the lines' steps.
func newChart(id, title, ylabel string, fixed *[2]float64, phases []int, lines ...lineSpec) *chart {
	c := &chart{ID: id, Title: title, XLabel: "training step", YLabel: ylabel, W: chartW, H: chartH,
		Left: padLeft, Top: padTop, Right: padLeft + plotW, Bottom: padTop + plotH, PlotW: plotW, PlotH: plotH}
	c.YTickX, c.XTickY = c.Left-6, c.Bottom+5
	c.XLabelX, c.XLabelY = c.Left+plotW/2, c.Bottom+34
	c.YLabelX, c.LegendY = -(c.Top + plotH/2), legendRowY
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		for _, p := range l.pts {
			if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, float64(p.step)), math.Max(xmax, float64(p.step))
			ymin, ymax = math.Min(ymin, p.v), math.Max(ymax, p.v)
		}
	}
	if math.IsInf(xmin, 0) {
		return nil // nothing to draw
	}
	if fixed != nil {
		ymin, ymax = fixed[0], fixed[1]
	} else {
		ymin = math.Min(0, ymin)
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	xs := niceTicks(xmin, xmax, 6, 1) // steps are whole
	ys := niceTicks(ymin, ymax, 5, 0)
	if fixed == nil {
		ymax = math.Max(ymax, ys[len(ys)-1])
	}
	sx := func(v float64) float64 { return c.Left + (v-xmin)/(xmax-xmin)*plotW }
	sy := func(v float64) float64 { return c.Bottom - (v-ymin)/(ymax-ymin)*plotH }
	for _, v := range xs {
		if v >= xmin && v <= xmax {
			c.XTicks = append(c.XTicks, tick{round1(sx(v)), strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	for _, v := range ys {
		if v >= ymin && v <= ymax {
			label := strconv.FormatFloat(v, 'g', 4, 64)
			if fixed != nil {
				label = fmt.Sprintf("%.0f%%", 100*v)
			}
			c.YTicks = append(c.YTicks, tick{round1(sy(v)), label})
		}
	}
	for _, st := range phases {
		if v := float64(st); v >= xmin && v <= xmax {
			c.Phases = append(c.Phases, phase{X: round1(sx(v)), Step: st, Label: "fine-tuning"})
		}
	}
	legendX := c.Left
	for _, l := range lines {
		s := series{Name: l.name, Key: l.key, Class: l.class, LegendX: legendX, LegendEnd: legendX + legendSwatch, LegendText: legendX + legendSwatch + legendTextGap}
		legendX += float64(legendSwatch+legendTextGap+legendGap) + 6.5*float64(len(l.name))
		pts := thin(l.pts)
		var sb strings.Builder
		n := 0
		for _, p := range pts {
			if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
				continue
			}
			x, y := round1(sx(float64(p.step))), round1(sy(p.v))
			fmt.Fprintf(&sb, "%g,%g ", x, y)
			n++
			if l.markers {
				s.Markers = append(s.Markers, marker{X: x, Y: y, Step: p.step, Value: p.v,
					Title: fmt.Sprintf("%s at step %d: %s", l.name, p.step, l.format(p.v))})
			}
		}
		if n > 1 {
			s.Points = strings.TrimSpace(sb.String())
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// thin averages a long series down to about maxLinePoints points.
func thin(pts []point) []point {
	if len(pts) <= maxLinePoints {
		return pts
	}
	k := (len(pts) + maxLinePoints - 1) / maxLinePoints
	out := make([]point, 0, len(pts)/k+1)
	for i := 0; i < len(pts); i += k {
		end := min(i+k, len(pts))
		var sum float64
		for _, p := range pts[i:end] {
			sum += p.v
		}
		out = append(out, point{pts[end-1].step, sum / float64(end-i)})
	}
	return out
}

// lossSmoothing is the weight of the exponential moving average drawn over
// the training loss (TensorBoard's smoothing, debiased as it does).
const lossSmoothing = 0.9

// smooth returns the debiased exponential moving average of pts; missing
// values are carried over.
func smooth(pts []point, weight float64) []point {
	out := make([]point, 0, len(pts))
	var avg float64
	n := 0
	for _, p := range pts {
		if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
			continue
		}
		avg = avg*weight + (1-weight)*p.v
		n++
		out = append(out, point{p.step, avg / (1 - math.Pow(weight, float64(n)))})
	}
	return out
}

// niceTicks returns about n round values spanning [lo, hi], at least
// minStep apart.
func niceTicks(lo, hi float64, n int, minStep float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	step = math.Max(step, minStep)
	var out []float64
	for i := math.Ceil(lo / step); i*step <= hi+step*1e-9; i++ {
		v, _ := strconv.ParseFloat(strconv.FormatFloat(i*step, 'g', 12, 64), 64) // 0.6, not 0.6000000000000001
		out = append(out, v)
	}
	if len(out) == 0 || out[len(out)-1] < hi {
		out = append(out, math.Ceil(hi/step)*step)
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// charts makes the loss and accuracy charts of a history.
func charts(h *trainer.History) []*chart {
	var loss, valLoss, trainAcc, valAcc []point
	for _, l := range h.Losses {
		loss = append(loss, point{l.Step, l.Loss})
	}
	for _, e := range h.Epochs {
		valLoss = append(valLoss, point{e.Step, e.ValLoss})
		trainAcc = append(trainAcc, point{e.Step, e.TrainAccuracy})
		valAcc = append(valAcc, point{e.Step, e.ValAccuracy})
	}
	phases := h.FineTuneStarts()
	var out []*chart
	if c := newChart("loss", "Loss", "cross-entropy", nil, phases,
		lineSpec{"training loss", "loss", "s0 faint", loss, false, num},
		lineSpec{"smoothed", "loss_smoothed", "s0", smooth(loss, lossSmoothing), false, num},
		lineSpec{"validation loss", "val_loss", "s1", valLoss, true, num}); c != nil {
		out = append(out, c)
	}
	if c := newChart("accuracy", "Accuracy per epoch", "accuracy", &[2]float64{0, 1}, phases,
		lineSpec{"training batch accuracy", "train_accuracy", "s0", trainAcc, true, pct},
		lineSpec{"validation accuracy", "val_accuracy", "s1", valAcc, true, pct}); c != nil {
		out = append(out, c)
	}
	return out
}
