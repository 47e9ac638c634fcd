package tfsession

import (
	"errors"
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
)

// Classifier is a loaded model that maps preprocessed images to class
// probabilities: a tfcat Session, a checkpoint imported from its .meta, or a
// SavedModel.
type Classifier interface {
	// InputSize is the image height, width and channels the model takes.
	InputSize() (height, width, channels int)
	// NumClasses is the length of each probability row.
	NumClasses() int
	// Predict returns n rows of probabilities for the n images in x (NHWC).
	Predict(x []float32, n int) ([]float32, error)
	Close() error
}

// Predictor is the one path from images to probabilities that every
// Classifier shares: it copies the images into a tensor, feeds it to X (and
// zeros to Zeros, when set, as the tutorial's predict.py feeds y_true), runs
// the session for Pred and copies the probabilities out, freeing both tensors
// at once. Its methods make a Classifier of any type that embeds it.
type Predictor struct {
	Session *tf.Session
	X, Pred tf.Output
	Zeros   tf.Output // optional
	// Height, Width, Channels are X's image size; Classes is Pred's width.
	Height, Width, Channels, Classes int
	// Resize is how the model's images were brought to its input size in
	// training, which prediction must repeat; "" is pixels.Stretch.
	Resize pixels.ResizeMode
}

// ResizeMode is how images must be brought to the input size: the mode the
// model was trained with (pixels.Stretch unless recorded otherwise).
func (p *Predictor) ResizeMode() pixels.ResizeMode {
	if p.Resize == "" {
		return pixels.Stretch
	}
	return p.Resize
}

// ResizeModeOf is c's ResizeMode when it has one (every Classifier tfcat
// opens does), pixels.Stretch otherwise.
func ResizeModeOf(c Classifier) pixels.ResizeMode {
	if r, ok := c.(interface{ ResizeMode() pixels.ResizeMode }); ok {
		return r.ResizeMode()
	}
	return pixels.Stretch
}

// ErrClosed is returned by a model's methods after Close.
var ErrClosed = errors.New("the model is closed")

// InputSize is the image height, width and channels the model takes.
func (p *Predictor) InputSize() (int, int, int) { return p.Height, p.Width, p.Channels }

// NumClasses is the length of each probability row.
func (p *Predictor) NumClasses() int { return p.Classes }

// Predict returns n rows of probabilities for the n images in x (NHWC).
func (p *Predictor) Predict(x []float32, n int) ([]float32, error) {
	if p.Session == nil {
		return nil, fmt.Errorf("predict: %w", ErrClosed)
	}
	size := p.Height * p.Width * p.Channels
	if n <= 0 || len(x) < n*size {
		return nil, fmt.Errorf("predict: %d images need %d values, have %d", n, n*size, len(x))
	}
	xt, err := tfc.NewFloat32(int64(n), int64(p.Height), int64(p.Width), int64(p.Channels))
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	defer tfc.Free(xt)
	xs, _ := tfc.Float32s(xt)
	copy(xs, x[:n*size])
	feeds := map[tf.Output]*tf.Tensor{p.X: xt}
	if p.Zeros.Op != nil {
		zt, err := tfc.NewFloat32(int64(n), int64(p.Classes))
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		defer tfc.Free(zt)
		feeds[p.Zeros] = zt
	}
	out, err := p.Session.Run(feeds, []tf.Output{p.Pred}, nil)
	if err != nil {
		return nil, fmt.Errorf("predicting: %w", err)
	}
	defer tfc.FreeAll(out)
	probs, err := tfc.Float32s(out[0])
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(probs) != n*p.Classes {
		return nil, fmt.Errorf("predict: the model returned %d values for %d images of %d classes", len(probs), n, p.Classes)
	}
	return append([]float32(nil), probs...), nil
}

// closeSession closes p's session once; later calls and Predict see it closed.
func (p *Predictor) closeSession() error {
	if p.Session == nil {
		return nil
	}
	err := p.Session.Close()
	p.Session = nil
	return err
}

// Close releases the session. Predict fails afterwards.
func (p *Predictor) Close() error { return p.closeSession() }
