// Package metrics scores a classifier's predictions: the confusion matrix,
// accuracy and per-class precision, recall and F1 of an evaluation, and how far
// apart two models' probabilities and variables are. It holds plain data and
// arithmetic, with no TensorFlow: tfcat's eval, compare and report commands
// print what it returns.
package metrics

import (
	"fmt"
	"math"
)

// Confusion counts predictions: Confusion[t][p] is the number of examples of
// true class t predicted as class p.
type Confusion [][]int

// NewConfusion returns an empty k×k matrix.
func NewConfusion(k int) Confusion {
	c := make(Confusion, k)
	for i := range c {
		c[i] = make([]int, k)
	}
	return c
}

// Add counts one example of true class truth predicted as predicted.
func (c Confusion) Add(truth, predicted int) { c[truth][predicted]++ }

// ClassScore is one class's scores. A class that is never predicted has
// precision 0; one with no examples has recall 0 (scikit-learn's convention
// with zero_division=0).
type ClassScore struct {
	Class     string  `json:"class"`
	Support   int     `json:"support"` // examples of the class
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// Evaluation is a classifier's scores on a labelled set.
type Evaluation struct {
	Images    int          `json:"images"`
	Accuracy  float64      `json:"accuracy"`
	Classes   []string     `json:"classes"`
	PerClass  []ClassScore `json:"per_class"`
	Confusion Confusion    `json:"confusion"` // rows: true class, columns: predicted
}

// Evaluate scores a confusion matrix whose classes are named by classes.
func Evaluate(c Confusion, classes []string) (*Evaluation, error) {
	k := len(c)
	if len(classes) != k {
		return nil, fmt.Errorf("metrics: %d class names for a %d×%d confusion matrix", len(classes), k, k)
	}
	ev := &Evaluation{Classes: classes, Confusion: c, PerClass: make([]ClassScore, k)}
	correct := 0
	for i := range k {
		if len(c[i]) != k {
			return nil, fmt.Errorf("metrics: confusion matrix row %d has %d columns, want %d", i, len(c[i]), k)
		}
		correct += c[i][i]
		var predicted, support int
		for j := range k {
			predicted += c[j][i]
			support += c[i][j]
		}
		s := ClassScore{Class: classes[i], Support: support}
		if predicted > 0 {
			s.Precision = float64(c[i][i]) / float64(predicted)
		}
		if support > 0 {
			s.Recall = float64(c[i][i]) / float64(support)
		}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		ev.PerClass[i] = s
		ev.Images += support
	}
	if ev.Images > 0 {
		ev.Accuracy = float64(correct) / float64(ev.Images)
	}
	return ev, nil
}

// Comparison is how far apart two models' outputs are on the same images.
type Comparison struct {
	Images      int     `json:"images"`
	MaxAbsDiff  float64 `json:"max_abs_prob_diff"`
	MeanAbsDiff float64 `json:"mean_abs_prob_diff"`
	// Agreement is the fraction of images whose predicted classes agree;
	// Disagree lists the images (by index) where they do not.
	Agreement float64 `json:"class_agreement"`
	Agree     int     `json:"-"`
	Disagree  []int   `json:"-"`
}

// ArgMax is the index of the largest value; of equal maxima the first, as
// tf.argmax chooses.
func ArgMax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// CompareProbabilities compares two models' probability rows, one per image:
// a[i] and b[i] must be of the same length.
func CompareProbabilities(a, b [][]float32) (*Comparison, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("metrics: %d rows against %d", len(a), len(b))
	}
	r := &Comparison{Images: len(a)}
	var sum float64
	var count int
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return nil, fmt.Errorf("metrics: row %d has %d values against %d", i, len(a[i]), len(b[i]))
		}
		if ArgMax(a[i]) == ArgMax(b[i]) {
			r.Agree++
		} else {
			r.Disagree = append(r.Disagree, i)
		}
		for k := range a[i] {
			d := math.Abs(float64(a[i][k]) - float64(b[i][k]))
			r.MaxAbsDiff = math.Max(r.MaxAbsDiff, d)
			sum += d
			count++
		}
	}
	if count > 0 {
		r.MeanAbsDiff = sum / float64(count)
	}
	if r.Images > 0 {
		r.Agreement = float64(r.Agree) / float64(r.Images)
	}
	return r, nil
}

// VariableDiffs is the largest absolute difference of each variable that a
// and b both hold with the same number of values.
func VariableDiffs(a, b map[string][]float32) map[string]float64 {
	out := map[string]float64{}
	for name, x := range a {
		y, ok := b[name]
		if !ok || len(x) != len(y) {
			continue
		}
		d := 0.0
		for j := range x {
			d = math.Max(d, math.Abs(float64(x[j])-float64(y[j])))
		}
		out[name] = d
	}
	return out
}
