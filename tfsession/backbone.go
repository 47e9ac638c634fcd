package tfsession

import (
	"errors"
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// InitBase loads the backbone's weights from its SavedModel's variables:
// the first initialisation of a transfer-learning model (later ones restore
// the tfcat checkpoint, which holds them).
func (s *Session) InitBase() error {
	baseInit, baseFile, variables := s.Model.BaseInit()
	if baseInit == nil {
		return errors.New("the model has no backbone to load")
	}
	if err := checkpoint.CheckIndex(variables); err != nil {
		return fmt.Errorf("loading the backbone's weights: %w", err)
	}
	t, err := tf.NewTensor(variables)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{baseFile: t}, nil, []*tf.Operation{baseInit}); err != nil {
		return fmt.Errorf("loading the backbone's weights from %s: %w", variables, err)
	}
	return nil
}
