// Package report writes what a person needs to judge a trained model as one
// self-contained HTML file: the training curves from the history that
// tfcat train keeps in the model folder (trainer.HistoryFile), the model's
// facts (network, input size, classes, steps, data, the command that trained
// it) and, given a labelled test folder, its accuracy, per-class precision,
// recall and F1, a confusion-matrix heatmap and the images it gets wrong as
// embedded thumbnails.
//
// The file loads nothing: charts are inline SVG, images are data URIs, there
// is no script, and a content security policy in the page allows nothing
// else. Everything taken from files (class names, paths, the command line)
// is escaped by html/template. What a model lacks — a history, class names,
// as with the Python tutorial's checkpoints — is said in the page.
//
//	m, err := model.Open("model", model.Options{})
//	...
//	err = report.Write(f, report.Options{Model: m, Data: "testing_data"})
package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/trainer"
)

// Defaults of Options.
const (
	DefaultMaxMisclassified = 48
	DefaultThumbnailSize    = 96
)

// Options configure Build and Write.
type Options struct {
	// Model is the model to report on, as model.Open returns it.
	Model *model.Model
	// HistoryDir is the folder holding the training history; by default
	// the model's folder (a checkpoint's, or the SavedModel folder).
	HistoryDir string
	// Data, when set, is a folder with one sub-folder of images per class,
	// as for tfcat eval: the report then scores the model on it.
	Data string
	// Batch is the number of images per Session.Run (default 32); Strict
	// fails on the first unreadable image instead of skipping it.
	Batch  int
	Strict bool
	// MaxMisclassified caps the misclassified images shown, the most
	// confident mistakes first (default DefaultMaxMisclassified; negative:
	// none). ThumbnailSize is their longest side in pixels (default
	// DefaultThumbnailSize).
	MaxMisclassified int
	ThumbnailSize    int
	// Title heads the page; by default the model's path.
	Title string
	// Now is the time the page says it was made (default time.Now).
	Now time.Time
}

// Report is what the page shows.
type Report struct {
	Title     string
	Generated time.Time
	// Model describes the model from its files (model.Inspect); Classes
	// are its class names, Named false when they are only numbers.
	Model   *model.Description
	Kind    model.Kind
	Classes []string
	Named   bool
	// History is the training history; nil when there is none, and
	// HistoryNote then says why.
	History     *trainer.History
	HistoryDir  string
	HistoryNote string
	// Data and Evaluation are set when Options.Data is.
	Data       string
	Evaluation *model.Evaluation
	// Misclassified are the mistakes shown (at most MaxMisclassified, most
	// confident first) out of MisclassifiedTotal.
	Misclassified      []Misclassified
	MisclassifiedTotal int
}

// Misclassified is one image the model gets wrong.
type Misclassified struct {
	Path            string // relative to Data
	True, Predicted int    // class indexes
	Probability     float32
	// Thumbnail is a JPEG of the image, at most ThumbnailSize pixels on
	// its longest side; nil when the file could not be read again.
	Thumbnail []byte
}

// Build gathers the report: it describes the model, reads the training
// history and, with Options.Data, evaluates the model on that folder.
func Build(opt Options) (*Report, error) {
	m := opt.Model
	if m == nil {
		return nil, errors.New("report: no model")
	}
	if opt.MaxMisclassified == 0 {
		opt.MaxMisclassified = DefaultMaxMisclassified
	}
	if opt.ThumbnailSize <= 0 {
		opt.ThumbnailSize = DefaultThumbnailSize
	}
	r := &Report{Title: opt.Title, Generated: opt.Now, Kind: m.Kind, Classes: m.Classes, Named: m.Named, Data: opt.Data}
	if r.Title == "" {
		r.Title = m.Path
	}
	if r.Generated.IsZero() {
		r.Generated = time.Now()
	}
	var err error
	if r.Model, err = model.Inspect(m.Path); err != nil {
		return nil, fmt.Errorf("report: describing %s: %w", m.Path, err)
	}
	r.HistoryDir = opt.HistoryDir
	if r.HistoryDir == "" {
		r.HistoryDir = m.Path
		if m.Kind != model.SavedModel {
			r.HistoryDir = filepath.Dir(m.Path)
		}
	}
	r.History, err = trainer.ReadHistory(r.HistoryDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.HistoryNote = fmt.Sprintf("No training history in %s: tfcat train writes %s there; models trained by the Python tutorial, or exported, have none.", r.HistoryDir, trainer.HistoryFile)
	case err != nil:
		r.HistoryNote = "The training history could not be read: " + err.Error()
	}
	if opt.Data == "" {
		return r, nil
	}
	if r.Evaluation, err = m.Evaluate(opt.Data, model.EvalOptions{Batch: opt.Batch, Strict: opt.Strict}); err != nil {
		return nil, fmt.Errorf("report: evaluating on %s: %w", opt.Data, err)
	}
	r.misclassified(opt.MaxMisclassified, opt.ThumbnailSize)
	return r, nil
}

// misclassified picks the mistakes to show and makes their thumbnails.
func (r *Report) misclassified(limit, thumb int) {
	ev := r.Evaluation
	var all []Misclassified
	for i, truth := range ev.Labels {
		if p := ev.Predicted[i]; p != truth {
			all = append(all, Misclassified{Path: ev.Paths[i], True: truth, Predicted: p, Probability: ev.Probabilities[i][p]})
		}
	}
	r.MisclassifiedTotal = len(all)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Probability > all[j].Probability })
	all = all[:max(0, min(limit, len(all)))]
	thumbnails(all, thumb)
	for i := range all {
		if rel, err := filepath.Rel(r.Data, all[i].Path); err == nil {
			all[i].Path = rel
		}
	}
	r.Misclassified = all
}

// Write builds the report (Build) and writes it as one HTML page.
func Write(w io.Writer, opt Options) error {
	r, err := Build(opt)
	if err != nil {
		return err
	}
	return r.WriteHTML(w)
}

// WriteFile builds the report and writes it to path, and returns it.
func WriteFile(path string, opt Options) (*Report, error) {
	r, err := Build(opt)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return r, nil
}
