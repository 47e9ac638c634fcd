// Package model opens any model tfcat reads — a folder tfcat train wrote, a
// checkpoint prefix (tfcat's or the Python tutorial's), or a SavedModel — as
// one type that predicts and tells its classes and input size, and runs the
// jobs done with a model: predicting files, evaluating on a labelled folder,
// comparing two models, describing one without loading it.
//
//	m, err := model.Open("model", model.Options{})
//	if err != nil { ... }
//	defer m.Close()
//	preds, err := m.PredictFiles([]string{"cat.jpg"}, 32)
//	fmt.Println(m.Classes[preds[0].Class])
package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfsession"
)

// Kind is the kind of files a model was opened from.
type Kind int

// The kinds of model Open reads.
const (
	Checkpoint         Kind = iota + 1 // a checkpoint tfcat wrote
	TutorialCheckpoint                 // a checkpoint the Python tutorial (or another TF1 Saver) wrote
	SavedModel                         // a SavedModel folder
)

// String describes the kind in words.
func (k Kind) String() string {
	switch k {
	case Checkpoint:
		return "tfcat checkpoint"
	case TutorialCheckpoint:
		return "TensorFlow checkpoint"
	case SavedModel:
		return "SavedModel"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options change how Open loads a model.
type Options struct {
	// Session configures TensorFlow (device, threads).
	Session tfsession.SessionConfig
	// Trust runs a graph even if it holds ops beyond what restoring and
	// predicting need (checkpoint.ErrUntrustedGraph): only for files you trust.
	Trust bool
	// Classes names the classes in label order, for models that store no
	// names (the Python tutorial's checkpoints); it must name every class.
	Classes []string
}

// Model is an opened model. It is a tfsession.Classifier: Predict takes
// preprocessed images (dataset.Preprocess) and returns probabilities.
type Model struct {
	tfsession.Classifier
	// Path is the checkpoint prefix or SavedModel folder that was read.
	Path string
	Kind Kind
	// Classes names every class in label order: the model's names, the
	// Options' names, or, when neither has them, "0", "1", ...
	Classes []string
	// Named is false when Classes are only numbers.
	Named bool

	variables func() (map[string][]float32, error)
}

// ClassCountError is Open's error when Options.Classes does not name every
// class of the model.
type ClassCountError struct {
	Given, Model int
}

// Error says how many names were given for how many classes.
func (e *ClassCountError) Error() string {
	return fmt.Sprintf("%d class names given for a model of %d classes", e.Given, e.Model)
}

// Open loads the model at path: a SavedModel folder, a folder with a
// "checkpoint" state file (its latest checkpoint), or a checkpoint prefix.
// Checkpoints are loaded as the tutorial's predict.py loads them (import the
// .meta, restore, feed x:0, fetch y_pred:0), after checking the graph's ops
// (see Options.Trust). Close the model when done.
func Open(path string, opt Options) (*Model, error) {
	if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	m := &Model{}
	if savedmodel.IsSavedModel(path) {
		sm, err := savedmodel.LoadWithOptions(path, savedmodel.LoadOptions{Session: opt.Session, Trust: opt.Trust})
		if err != nil {
			return nil, err
		}
		m.Classifier, m.Path, m.Kind, m.Classes, m.variables = sm, path, SavedModel, sm.Classes(), sm.Variables
	} else {
		prefix, err := checkpoint.Resolve(path)
		if err != nil {
			return nil, err
		}
		im, err := tfsession.ImportCheckpoint(prefix, tfsession.ImportOptions{Session: opt.Session, Trust: opt.Trust})
		if err != nil {
			return nil, err
		}
		m.Classifier, m.Path, m.Kind, m.Classes, m.variables = im, prefix, TutorialCheckpoint, im.Meta.Classes, im.Variables
		if im.Meta.Tfcat {
			m.Kind = Checkpoint
		}
	}
	if len(opt.Classes) > 0 {
		if len(opt.Classes) != m.NumClasses() {
			m.Close()
			return nil, &ClassCountError{Given: len(opt.Classes), Model: m.NumClasses()}
		}
		m.Classes = opt.Classes
	}
	m.Named = len(m.Classes) == m.NumClasses()
	if !m.Named {
		m.Classes = network.NumberedClasses(m.NumClasses())
	}
	return m, nil
}

// ClassNames returns Classes when the model (or Options.Classes) names its
// classes, and nil when they are only numbers.
func (m *Model) ClassNames() []string {
	if !m.Named {
		return nil
	}
	return m.Classes
}

// ResizeMode is how images are brought to the model's input size: the mode
// it was trained with, which PredictFiles, Evaluate and serving apply.
func (m *Model) ResizeMode() pixels.ResizeMode { return tfsession.ResizeModeOf(m.Classifier) }

// Variables reads the model's variables by name, flattened in C order.
func (m *Model) Variables() (map[string][]float32, error) { return m.variables() }
