package tfsession

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
)

// StartFineTune restores a checkpoint written before fine-tuning (a frozen
// head's: no Adam state for the backbone) and initialises the backbone's
// Adam state afresh.
func (s *Session) StartFineTune(prefix string) error {
	init, restore, file := s.Model.FineTuneStart()
	if restore == nil {
		return errors.New("the model fine-tunes no backbone variable")
	}
	if err := checkpoint.CheckIndex(prefix); err != nil {
		return err
	}
	t, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	if _, err := s.s.Run(nil, nil, []*tf.Operation{init}); err != nil {
		return fmt.Errorf("initialising the backbone's Adam state: %w", err)
	}
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{file: t}, nil, []*tf.Operation{restore}); err != nil {
		return fmt.Errorf("%s: restoring variables: %w", prefix, err)
	}
	return nil
}

// FineTuneGradients returns the gradients of the training cost on b with
// respect to each fine-tuned backbone variable, by its name in the
// backbone's graph.
func (s *Session) FineTuneGradients(b *pixels.Batch) (map[string][]float32, error) {
	m := s.Model
	if len(m.TuneGrads) == 0 {
		return nil, errors.New("the model fine-tunes no backbone variable")
	}
	net := m.Net
	x, err := tfc.NewFloat32(int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels))
	if err != nil {
		return nil, err
	}
	defer tfc.Free(x)
	y, err := tfc.NewFloat32(int64(b.N), int64(net.Classes))
	if err != nil {
		return nil, err
	}
	defer tfc.Free(y)
	xs, _ := tfc.Float32s(x)
	ys, _ := tfc.Float32s(y)
	if len(b.X) < len(xs) || len(b.Y) < len(ys) {
		return nil, fmt.Errorf("batch of %d images has %d image and %d label values", b.N, len(b.X), len(b.Y))
	}
	copy(xs, b.X)
	copy(ys, b.Y)
	out, err := s.s.Run(map[tf.Output]*tf.Tensor{m.X: x, m.Labels: y}, m.TuneGrads, nil)
	if err != nil {
		return nil, fmt.Errorf("fine-tune gradients: %w", err)
	}
	defer tfc.FreeAll(out)
	g := make(map[string][]float32, len(out))
	for i, t := range out {
		v, err := tfc.Float32s(t)
		if err != nil {
			return nil, err
		}
		g[strings.TrimPrefix(m.TuneVars[i].Name, tfgraph.BasePrefix+"/")] = slices.Clone(v)
	}
	return g, nil
}
