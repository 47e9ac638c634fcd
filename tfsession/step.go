package tfsession

import (
	"errors"
	"fmt"
	"slices"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
)

// stepper holds what Step and Evaluate reuse from one call to the next, so a
// training loop at steady state allocates nothing on the Go heap: the runners'
// argument arrays, and the input tensors, rewritten in place while the batch
// size stays the same.
type stepper struct {
	train, eval *tfc.Runner
	in          [3]*tf.Tensor // x, y_true and, when it is fed, the learning rate
	n           int           // the batch size in holds
}

func (st *stepper) close() {
	st.train.Close()
	st.eval.Close()
	tfc.FreeAll(st.in[:])
	*st = stepper{}
}

// SetLearningRate sets the learning rate of the following steps. The model
// must have been built with BuildOptions.ScheduledLearningRate.
func (s *Session) SetLearningRate(lr float64) error {
	if s.Model.LearningRate.Op == nil {
		return errors.New("the model was built with a constant learning rate")
	}
	if !(lr > 0) {
		return fmt.Errorf("learning rate %g must be positive", lr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.steps
	if st.in[2] == nil {
		// The training runner feeds the learning rate from now on.
		st.train.Close()
		st.train = nil
		t, err := tfc.NewFloat32()
		if err != nil {
			return err
		}
		st.in[2] = t
	}
	v, _ := tfc.Float32s(st.in[2])
	v[0] = float32(lr)
	return nil
}

// load copies b into the input tensors, making them anew only when the batch
// size changes.
func (s *Session) load(b *pixels.Batch) error {
	net := s.Model.Net
	img := net.Height * net.Width * net.Channels
	switch {
	case b.N <= 0:
		return errors.New("empty batch")
	case len(b.X) < b.N*img:
		return fmt.Errorf("batch of %d images needs %d values, has %d", b.N, b.N*img, len(b.X))
	case len(b.Y) < b.N*net.Classes:
		return fmt.Errorf("batch of %d labels needs %d values, has %d", b.N, b.N*net.Classes, len(b.Y))
	}
	st := &s.steps
	if st.n != b.N {
		tfc.FreeAll(st.in[:2])
		st.n = 0
		x, err := tfc.NewFloat32(int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels))
		if err != nil {
			return err
		}
		y, err := tfc.NewFloat32(int64(b.N), int64(net.Classes))
		if err != nil {
			tfc.Free(x)
			return err
		}
		st.in[0], st.in[1], st.n = x, y, b.N
	}
	xs, _ := tfc.Float32s(st.in[0])
	ys, _ := tfc.Float32s(st.in[1])
	copy(xs, b.X[:b.N*img])
	copy(ys, b.Y[:b.N*net.Classes])
	return nil
}

// run feeds b (and, when train is set and the learning rate was set, the
// learning rate) to the runner made by make (once) and returns its scalar
// fetches.
func (s *Session) run(r **tfc.Runner, b *pixels.Batch, fetches []tf.Output, targets []*tf.Operation, out []float32, train bool) error {
	if s.s == nil {
		return ErrClosed
	}
	if s.cache != nil && len(b.Paths) >= b.N {
		return s.runCached(b, fetches, targets, out, train, nil)
	}
	nIn := 2
	if train && s.steps.in[2] != nil {
		nIn = 3
	}
	if *r == nil {
		feeds := []tf.Output{s.Model.X, s.Model.Labels, s.Model.LearningRate}
		runner, err := tfc.NewRunner(s.s, feeds[:nIn], fetches, targets)
		if err != nil {
			return err
		}
		*r = runner
	}
	if err := s.load(b); err != nil {
		return err
	}
	if err := (*r).Run(s.steps.in[:nIn]); err != nil {
		return err
	}
	defer (*r).FreeOutputs()
	for i := range out {
		v, err := (*r).Scalar(i)
		if err != nil {
			return err
		}
		out[i] = v
	}
	return nil
}

// Step runs one Adam step on b and returns the batch's cost before the update.
// Step and Evaluate must not run concurrently with each other.
func (s *Session) Step(b *pixels.Batch) (loss float32, err error) {
	if s.Model.Train == nil {
		return 0, errors.New("the model was built for inference only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [1]float32
	// The fetch and target slices are only read the first time; a composite
	// literal here would not escape, so this allocates nothing.
	if err := s.run(&s.steps.train, b, []tf.Output{s.Model.TrainCost}, []*tf.Operation{s.Model.Train}, out[:], true); err != nil {
		return 0, fmt.Errorf("training step: %w", err)
	}
	return out[0], nil
}

// Evaluate returns the cost and accuracy on b without training.
func (s *Session) Evaluate(b *pixels.Batch) (loss, accuracy float32, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [2]float32
	if err := s.run(&s.steps.eval, b, []tf.Output{s.Model.Cost, s.Model.Accuracy}, nil, out[:], false); err != nil {
		return 0, 0, fmt.Errorf("evaluating: %w", err)
	}
	return out[0], out[1], nil
}

// VariableValues reads the named variables (all of them when names is empty:
// the Model's Vars, the backbone's fine-tuned TuneVars and the moving
// statistics of its batch norms in training mode, TuneStats), flattened in C
// order.
func (s *Session) VariableValues(names ...string) (map[string][]float32, error) {
	vars := slices.Concat(s.Model.Vars, s.Model.TuneVars, s.Model.TuneStats)
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
