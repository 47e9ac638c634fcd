package tfsession

import (
	"fmt"
	"math"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// stepFromBeta1Power recovers the step count from Adam's beta1 accumulator,
// which is β₁^(t+1) after t steps: Python's tutorial saves no global step.
func stepFromBeta1Power(b1p float32, beta1 float64) int {
	if b1p <= 0 || b1p >= 1 || beta1 <= 0 || beta1 >= 1 {
		return 0
	}
	return max(int(math.Round(math.Log(float64(b1p))/math.Log(beta1)))-1, 0)
}

// Resume opens a training session on the checkpoint at prefix, written by tfcat
// or by the Python tutorial: the network comes from tfcat's record in the .meta
// or is inferred from the variables, every variable (Adam's slots and beta
// powers included) is restored, and the step count is tfcat's record or, for
// Python's checkpoints, recovered from beta1_power.
func Resume(prefix string, c SessionConfig, lr float64) (*Session, network.MetaInfo, error) {
	return ResumeWithOptions(prefix, c, lr, tfgraph.BuildOptions{})
}

// ResumeWithOptions is Resume building the graph with opt (its Seed
// matters only to variables the checkpoint lacks, which are none).
func ResumeWithOptions(prefix string, c SessionConfig, lr float64, opt tfgraph.BuildOptions) (*Session, network.MetaInfo, error) {
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return nil, network.MetaInfo{}, err
	}
	mi := network.InfoFromMeta(meta)
	var net network.Network
	if mi.Network != nil {
		net = *mi.Network
	} else if net, err = network.NetworkFromGraph(meta.GraphDef); err != nil {
		return nil, mi, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
	}
	if lr > 0 {
		net.LearningRate = lr
	}
	if net.Base != nil && opt.Base == nil {
		if opt.Base, err = backbone.FromGraph(meta.GraphDef, net.Base); err != nil {
			return nil, mi, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
		}
	}
	m, err := tfgraph.Build(net, opt)
	if err != nil {
		return nil, mi, err
	}
	s, err := NewSession(m, c)
	if err != nil {
		return nil, mi, err
	}
	restore := s.RestoreVariables
	if len(m.TuneVars) > 0 && !m.HasFineTuneState(meta.GraphDef) {
		restore = s.StartFineTune // a frozen head's checkpoint: fine-tuning starts
	}
	if err := restore(prefix); err != nil {
		s.Close()
		return nil, mi, err
	}
	if !mi.Tfcat {
		b, err := s.VariableValues(network.Beta1PowerName)
		if err != nil {
			s.Close()
			return nil, mi, err
		}
		mi.Step = stepFromBeta1Power(b[network.Beta1PowerName][0], net.Beta1)
	}
	return s, mi, nil
}
