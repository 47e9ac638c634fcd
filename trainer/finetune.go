package trainer

import (
	"errors"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
)

// Why fine-tuning is refused where it is (Options.Validate).
const (
	// The backbone's batch norms in training mode keep their moving
	// statistics on each replica, which the chief's checkpoint (written
	// from the parameter servers' variables) would not see updated; they
	// would need the head's batch norm's placement and averaging.
	fineTuneBNOnCluster = "cannot be used on a cluster yet: the backbone's moving statistics would stay on each replica"
)

// fineTune is the build option Options.FineTune asks for, or nil.
func (o *Options) fineTune() *tfgraph.FineTune {
	if o.FineTune == "" {
		return nil
	}
	return &tfgraph.FineTune{Spec: o.FineTune, LearningRate: o.BaseLearningRate, BatchNorm: o.FineTuneBN}
}

// BaseLayers opens the backbone b and returns its trainable layers from its
// input to its output, the names Options.FineTune takes.
func BaseLayers(b *Base) ([]string, error) {
	bb, err := savedmodel.OpenBackbone(b.Path, savedmodel.BackboneOptions{Output: b.Output, Trust: b.Trust})
	if err != nil {
		return nil, err
	}
	_, layers, err := tfgraph.BaseLayers(&network.Base{Variables: bb.Vars}, bb)
	return layers, err
}

// fineTuneError makes tfgraph's refusal of Options.FineTune an OptionError.
func fineTuneError(err error) error {
	var fe *tfgraph.FineTuneError
	if errors.As(err, &fe) {
		return &OptionError{Option: "FineTune", Value: fe.Spec, Reason: fe.Why(), Err: err}
	}
	var be *tfgraph.BatchNormError
	if errors.As(err, &be) {
		return &OptionError{Option: "FineTuneBN", Value: true, Reason: be.Why(), Err: err}
	}
	return err
}
