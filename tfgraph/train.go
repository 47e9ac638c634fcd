package tfgraph

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
)

// Batch is one batch of examples: N images as float32 NHWC in X and their
// one-hot labels in Y. The slices may be longer than N examples need; the
// extra is ignored, so a caller can reuse one buffer for every batch.
type Batch struct {
	X []float32
	Y []float32
	N int
}

// BatchSource fills b with the next batch of at most len(b.X)/imageSize
// examples, setting b.N. Implementations decide how batches wrap at an epoch's
// end (dataset.Set follows the tutorial).
type BatchSource interface {
	NextBatch(b *Batch) error
}

// inputs copies a batch into fresh TF tensors, freed by the returned func.
func (s *Session) inputs(b Batch, labels bool) (map[tf.Output]*tf.Tensor, func(), error) {
	net := s.Model.Net
	img := net.Height * net.Width * net.Channels
	if b.N <= 0 {
		return nil, nil, errors.New("empty batch")
	}
	if len(b.X) < b.N*img {
		return nil, nil, fmt.Errorf("batch of %d images needs %d values, has %d", b.N, b.N*img, len(b.X))
	}
	x, err := tfc.NewFloat32(int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels))
	if err != nil {
		return nil, nil, err
	}
	xs, _ := tfc.Float32s(x)
	copy(xs, b.X[:b.N*img])
	feeds := map[tf.Output]*tf.Tensor{s.Model.X: x}
	var y *tf.Tensor
	if labels {
		if len(b.Y) < b.N*net.Classes {
			tfc.Free(x)
			return nil, nil, fmt.Errorf("batch of %d labels needs %d values, has %d", b.N, b.N*net.Classes, len(b.Y))
		}
		if y, err = tfc.NewFloat32(int64(b.N), int64(net.Classes)); err != nil {
			tfc.Free(x)
			return nil, nil, err
		}
		ys, _ := tfc.Float32s(y)
		copy(ys, b.Y[:b.N*net.Classes])
		feeds[s.Model.Labels] = y
	}
	return feeds, func() { tfc.Free(x); tfc.Free(y) }, nil
}

// scalar reads a float32 scalar tensor and frees it.
func scalar(t *tf.Tensor) float32 {
	defer tfc.Free(t)
	v, _ := t.Value().(float32)
	return v
}

// Step runs one Adam step on b and returns the batch's cost before the update.
func (s *Session) Step(b Batch) (loss float32, err error) {
	if s.Model.Train == nil {
		return 0, errors.New("the model was built for inference only")
	}
	feeds, free, err := s.inputs(b, true)
	if err != nil {
		return 0, err
	}
	defer free()
	out, err := s.s.Run(feeds, []tf.Output{s.Model.Cost}, []*tf.Operation{s.Model.Train})
	if err != nil {
		return 0, fmt.Errorf("training step: %w", err)
	}
	return scalar(out[0]), nil
}

// Evaluate returns the cost and accuracy on b without training.
func (s *Session) Evaluate(b Batch) (loss, accuracy float32, err error) {
	feeds, free, err := s.inputs(b, true)
	if err != nil {
		return 0, 0, err
	}
	defer free()
	out, err := s.s.Run(feeds, []tf.Output{s.Model.Cost, s.Model.Accuracy}, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("evaluating: %w", err)
	}
	return scalar(out[0]), scalar(out[1]), nil
}

// Predict returns y_pred for the n images in x: n rows of class probabilities,
// flattened.
func (s *Session) Predict(x []float32, n int) ([]float32, error) {
	feeds, free, err := s.inputs(Batch{X: x, N: n}, false)
	if err != nil {
		return nil, err
	}
	defer free()
	return predictRun(s.s, feeds, s.Model.Pred)
}

// predictRun runs sess for one float32 fetch and returns a copy of it, freeing
// the tensor.
func predictRun(sess *tf.Session, feeds map[tf.Output]*tf.Tensor, fetch tf.Output) ([]float32, error) {
	out, err := sess.Run(feeds, []tf.Output{fetch}, nil)
	if err != nil {
		return nil, fmt.Errorf("predicting: %w", err)
	}
	defer tfc.FreeAll(out)
	p, err := tfc.Float32s(out[0])
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), p...), nil
}

// VariableValues reads the named variables (all of them when names is empty),
// flattened in C order.
func (s *Session) VariableValues(names ...string) (map[string][]float32, error) {
	vars := s.Model.Vars
	if len(names) > 0 {
		vars = nil
		for _, n := range names {
			v := s.Model.Var(n)
			if v == nil {
				return nil, fmt.Errorf("no variable named %q", n)
			}
			vars = append(vars, v)
		}
	}
	fetches := make([]tf.Output, len(vars))
	names = make([]string, len(vars))
	for i, v := range vars {
		fetches[i], names[i] = v.Read, v.Name
	}
	return fetchFloat32s(s.s, names, fetches)
}

// SetVariables assigns the given values (flattened, C order) to the named
// variables by feeding them to the variables' initialisers.
func (s *Session) SetVariables(values map[string][]float32) error {
	feeds := map[tf.Output]*tf.Tensor{}
	var targets []*tf.Operation
	defer func() {
		for _, t := range feeds {
			tfc.Free(t)
		}
	}()
	for name, val := range values {
		v := s.Model.Var(name)
		if v == nil {
			return fmt.Errorf("no variable named %q", name)
		}
		t, err := tfc.NewFloat32(v.Shape...)
		if err != nil {
			return err
		}
		feeds[v.Initial] = t
		dst, _ := tfc.Float32s(t)
		if len(dst) != len(val) {
			return fmt.Errorf("variable %s has shape %v (%d values); got %d values", name, v.Shape, len(dst), len(val))
		}
		copy(dst, val)
		targets = append(targets, v.Assign)
	}
	if _, err := s.s.Run(feeds, nil, targets); err != nil {
		return fmt.Errorf("setting variables: %w", err)
	}
	return nil
}

// StepResult is reported after every training step.
type StepResult struct {
	Step    int     // steps done so far, counting earlier runs when resumed
	Loss    float32 // the batch's cost before the update
	Elapsed time.Duration
}

// EpochResult is the tutorial's per-epoch report.
type EpochResult struct {
	Epoch         int // 1-based, as the tutorial prints it
	Step          int
	TrainAccuracy float32 // on the step's training batch, after the update
	TrainLoss     float32
	ValAccuracy   float32 // mean over the validation batches
	ValLoss       float32
}

// String is the tutorial's progress line.
func (e EpochResult) String() string {
	return fmt.Sprintf("Training Epoch %d --- Training Accuracy: %6.1f%%, Validation Accuracy: %6.1f%%,  Validation Loss: %.3f",
		e.Epoch, 100*e.TrainAccuracy, 100*e.ValAccuracy, e.ValLoss)
}

// TrainConfig drives Train.
type TrainConfig struct {
	// Steps is the step count to reach; with StartStep > 0 (resuming) only
	// Steps-StartStep steps run.
	Steps     int
	StartStep int
	BatchSize int
	// StepsPerEpoch is the tutorial's int(num_train/batch_size): an epoch report
	// (and, through OnEpoch, a checkpoint) comes when step % StepsPerEpoch == 0.
	StepsPerEpoch int

	Train BatchSource
	// Valid supplies ValidBatches batches at each epoch's end; nil skips validation.
	Valid        BatchSource
	ValidBatches int

	OnStep  func(StepResult) error
	OnEpoch func(EpochResult) error
}

// Train runs the tutorial's loop: one Adam step per training batch, and at each
// epoch boundary the training batch's accuracy and the validation loss and
// accuracy. It stops early, with ctx's error, when ctx is done; the variables
// then hold the last completed step. It returns the step count reached.
func (s *Session) Train(ctx context.Context, c TrainConfig) (int, error) {
	net := s.Model.Net
	if c.BatchSize <= 0 {
		return c.StartStep, fmt.Errorf("batch size %d must be positive", c.BatchSize)
	}
	if c.StepsPerEpoch <= 0 {
		c.StepsPerEpoch = math.MaxInt
	}
	img := net.Height * net.Width * net.Channels
	train := Batch{X: make([]float32, c.BatchSize*img), Y: make([]float32, c.BatchSize*net.Classes)}
	var valid Batch
	if c.Valid != nil {
		valid = Batch{X: make([]float32, c.BatchSize*img), Y: make([]float32, c.BatchSize*net.Classes)}
	}
	start := time.Now()
	step := c.StartStep
	for step < c.Steps {
		if err := ctx.Err(); err != nil {
			return step, err
		}
		if err := c.Train.NextBatch(&train); err != nil {
			return step, fmt.Errorf("step %d: training batch: %w", step+1, err)
		}
		loss, err := s.Step(train)
		if err != nil {
			return step, fmt.Errorf("step %d: %w", step+1, err)
		}
		i := step // the tutorial's loop index: the step just run, 0-based
		step++
		if c.OnStep != nil {
			if err := c.OnStep(StepResult{Step: step, Loss: loss, Elapsed: time.Since(start)}); err != nil {
				return step, err
			}
		}
		if i%c.StepsPerEpoch != 0 {
			continue
		}
		r := EpochResult{Epoch: i/c.StepsPerEpoch + 1, Step: step}
		if r.TrainLoss, r.TrainAccuracy, err = s.Evaluate(train); err != nil {
			return step, err
		}
		if c.Valid != nil {
			n := max(c.ValidBatches, 1)
			var sumLoss, sumAcc float64
			var seen int
			for range n {
				if err := c.Valid.NextBatch(&valid); err != nil {
					return step, fmt.Errorf("validation batch: %w", err)
				}
				l, a, err := s.Evaluate(valid)
				if err != nil {
					return step, err
				}
				sumLoss += float64(l) * float64(valid.N)
				sumAcc += float64(a) * float64(valid.N)
				seen += valid.N
			}
			r.ValLoss, r.ValAccuracy = float32(sumLoss/float64(seen)), float32(sumAcc/float64(seen))
		}
		if c.OnEpoch != nil {
			if err := c.OnEpoch(r); err != nil {
				return step, err
			}
		}
	}
	return step, nil
}
