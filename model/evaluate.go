package model

import (
	"fmt"
	"strings"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/pixels"
)

// EvalOptions change how Evaluate reads the labelled folder.
type EvalOptions struct {
	// Batch is the number of images per Session.Run (default 32).
	Batch int
	// Strict fails on the first unreadable image instead of skipping it.
	Strict bool
}

// Evaluation is a model's scores on a labelled folder, with the image files
// that were skipped as unreadable.
type Evaluation struct {
	*metrics.Evaluation
	Skipped []dataset.Problem
	// Labels and Predicted are each image's true and predicted class, in
	// the folder's listing order; Paths names the files and Probabilities
	// holds each image's row.
	Labels, Predicted []int
	Paths             []string
	Probabilities     [][]float32
}

// Evaluate predicts every image of dir, a folder with one sub-folder per
// class as for training, and scores the predictions. Folders are matched to
// the model's classes by name when the model has names; otherwise the sorted
// folder names are taken in label order.
func (m *Model) Evaluate(dir string, opt EvalOptions) (*Evaluation, error) {
	h, _, ch := m.InputSize()
	var classes []string
	if m.Named {
		classes = m.Classes
	}
	set, err := dataset.Load(dir, dataset.Options{Size: h, Channels: ch, Classes: classes, Strict: opt.Strict, Resize: m.ResizeMode()})
	if err != nil {
		return nil, err
	}
	k := m.NumClasses()
	if len(set.Classes) != k {
		return nil, fmt.Errorf("%s has %d classes (%s), the model %d", dir, len(set.Classes), strings.Join(set.Classes, ", "), k)
	}
	ev := &Evaluation{Skipped: set.Report().Skipped}
	conf := metrics.NewConfusion(k)
	all := set.Train // no validation split: every image is in Train
	n := all.Len()
	bs := opt.Batch
	if bs <= 0 {
		bs = 32
	}
	bs = min(bs, n)
	var b pixels.Batch
	for done := 0; done < n; done += b.N {
		if err := all.NextBatch(min(bs, n-done), &b); err != nil {
			return nil, err
		}
		p, err := m.Predict(b.X, b.N)
		if err != nil {
			return nil, err
		}
		for j := range b.N {
			pred := metrics.ArgMax(p[j*k : (j+1)*k])
			conf.Add(b.Labels[j], pred)
			ev.Labels = append(ev.Labels, b.Labels[j])
			ev.Predicted = append(ev.Predicted, pred)
			ev.Paths = append(ev.Paths, b.Paths[j])
			ev.Probabilities = append(ev.Probabilities, p[j*k:(j+1)*k:(j+1)*k])
		}
	}
	if ev.Evaluation, err = metrics.Evaluate(conf, set.Classes); err != nil {
		return nil, err
	}
	return ev, nil
}
