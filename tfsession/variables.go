package tfsession

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// SaveVariables writes every variable to the V2 checkpoint bundle at prefix
// (prefix.index and prefix.data-00000-of-00001) by running the SaveV2 sub-graph.
// It writes no .meta and no checkpoint state file; see Saver for those.
func (s *Session) SaveVariables(prefix string) error {
	t, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	out, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.Saver.Filename: t}, []tf.Output{s.Model.Saver.Save}, nil)
	if err != nil {
		return fmt.Errorf("saving variables to %s: %w", prefix, err)
	}
	tfc.FreeAll(out)
	return nil
}

// RestoreVariables loads every variable from the V2 checkpoint bundle at prefix,
// written by tfcat or by Python's Saver: keys are the variables' op names.
func (s *Session) RestoreVariables(prefix string) error {
	if err := checkpoint.CheckIndex(prefix); err != nil {
		return fmt.Errorf("restoring variables: %w", err)
	}
	t, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.Saver.Filename: t}, nil, []*tf.Operation{s.Model.Saver.Restore}); err != nil {
		return fmt.Errorf("restoring variables from %s: %w", prefix, err)
	}
	return s.InitLossScale() // the loss scale is not saved: it starts again
}

// InitLossScale sets the loss scale (float16 training) to its initial value;
// a model without one is left alone. A cluster's chief calls it after
// setting the variables on the parameter servers.
func (s *Session) InitLossScale() error {
	if len(s.Model.ScaleInit) == 0 {
		return nil
	}
	if _, err := s.s.Run(nil, nil, s.Model.ScaleInit); err != nil {
		return fmt.Errorf("initialising the loss scale: %w", err)
	}
	return nil
}

// LossScale reads the current loss scale and the finite steps since it last
// changed; ok is false when the model was built without loss scaling.
func (s *Session) LossScale() (scale float32, good int, ok bool, err error) {
	ls := s.Model.LossScaling
	if ls == nil {
		return 0, 0, false, nil
	}
	out, err := s.s.Run(nil, []tf.Output{ls.Scale.Read, ls.Good.Read}, nil)
	if err != nil {
		return 0, 0, true, err
	}
	return out[0].Value().(float32), int(out[1].Value().(float32)), true, nil
}
