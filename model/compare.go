package model

import (
	"fmt"

	"github.com/tfcat/tfcat/metrics"
)

// Comparison is how far apart two models are on the same images.
type Comparison struct {
	*metrics.Comparison
	// Files are the images compared; Disagreements those whose predicted
	// classes differ.
	Files, Disagreements []string
	// VariableMaxDiff is the largest difference of each variable both
	// models hold with the same name and shape; empty when they share none.
	VariableMaxDiff map[string]float64
}

// Compare runs a and b on the same image files and reports the differences
// of their probabilities, predicted classes and variables. A file that
// cannot be read is an error.
func Compare(a, b *Model, files []string, batch int) (*Comparison, error) {
	ha, wa, ca := a.InputSize()
	hb, wb, cb := b.InputSize()
	if ha != hb || wa != wb || ca != cb || a.NumClasses() != b.NumClasses() {
		return nil, fmt.Errorf("the models differ in shape: %dx%dx%d with %d classes vs %dx%dx%d with %d classes",
			ha, wa, ca, a.NumClasses(), hb, wb, cb, b.NumClasses())
	}
	var probs [2][][]float32
	for i, m := range []*Model{a, b} {
		preds, err := m.PredictFiles(files, batch)
		if err != nil {
			return nil, err
		}
		for _, p := range preds {
			if p.Err != nil {
				return nil, p.Err
			}
			probs[i] = append(probs[i], p.Probabilities)
		}
	}
	mc, err := metrics.CompareProbabilities(probs[0], probs[1])
	if err != nil {
		return nil, err
	}
	c := &Comparison{Comparison: mc, Files: files}
	for _, i := range mc.Disagree {
		c.Disagreements = append(c.Disagreements, files[i])
	}
	va, errA := a.Variables()
	vb, errB := b.Variables()
	if errA == nil && errB == nil {
		c.VariableMaxDiff = metrics.VariableDiffs(va, vb)
	}
	return c, nil
}
