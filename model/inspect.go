package model

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// Description is what Inspect finds in a model's files.
type Description struct {
	Path              string                    `json:"checkpoint"`
	Kind              Kind                      `json:"-"`
	WrittenBy         string                    `json:"written_by"`
	TensorFlowVersion string                    `json:"tensorflow_version"`
	InputSize         []int                     `json:"input_size"` // height, width, channels
	Classes           []string                  `json:"classes"`    // nil when the model stores none
	Steps             int                       `json:"steps"`
	StepsKnown        bool                      `json:"steps_known"`
	Parameters        int64                     `json:"parameters"` // trainable values
	Variables         []checkpoint.VariableInfo `json:"variables"`  // sorted by name
	Kept              []string                  `json:"kept_checkpoints,omitempty"`
	// Network is the architecture tfcat recorded; nil for other models.
	Network *network.Network `json:"-"`
}

// Inspect describes the model at path (as Open finds it) from its files: a
// checkpoint's .meta or a SavedModel's saved_model.pb. It runs nothing,
// except for a Python tutorial checkpoint, whose step count it recovers from
// Adam's beta1_power (on the CPU).
func Inspect(path string) (*Description, error) {
	if savedmodel.IsSavedModel(path) {
		info, err := savedmodel.Inspect(path)
		if err != nil {
			return nil, err
		}
		sigs := strings.Join(info.Signatures, ", ")
		d := &Description{Path: path, Kind: SavedModel, WrittenBy: "a SavedModel (signatures " + sigs + ")",
			TensorFlowVersion: info.TensorFlowVersion, InputSize: []int{info.Height, info.Width, info.Channels},
			Classes: info.Classes, Steps: info.Step, StepsKnown: info.Tfcat, Variables: info.Variables, Network: info.Network}
		if info.Tfcat {
			d.WrittenBy = "tfcat export (SavedModel, signatures " + sigs + ")"
		}
		// A serving graph holds only the weights: every variable is trained
		// but a frozen backbone's.
		frozen := info.Network != nil && info.Network.Base != nil
		for i := range d.Variables {
			d.Variables[i].Trainable = !frozen || !strings.HasPrefix(d.Variables[i].Name, tfgraph.BasePrefix+"/")
		}
		d.Parameters = checkpoint.Parameters(d.Variables)
		return d, nil
	}
	prefix, err := checkpoint.Resolve(path)
	if err != nil {
		return nil, err
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return nil, err
	}
	mi := network.InfoFromMeta(meta)
	d := &Description{Path: prefix, Kind: TutorialCheckpoint, WrittenBy: "Python TensorFlow (tf.compat.v1 Saver)",
		TensorFlowVersion: mi.TensorFlowVersion, Classes: mi.Classes, Steps: mi.Step, StepsKnown: mi.Tfcat,
		Variables: checkpoint.GraphVariables(meta), Network: mi.Network}
	if mi.Tfcat {
		d.Kind, d.WrittenBy = Checkpoint, "tfcat"
	}
	for _, n := range meta.GraphDef.Node {
		if n.Name == network.InputName {
			for _, dim := range n.Attr["shape"].GetShape().GetDim()[1:] {
				d.InputSize = append(d.InputSize, int(dim.Size))
			}
		}
	}
	d.Parameters = checkpoint.Parameters(d.Variables)
	sort.Slice(d.Variables, func(i, j int) bool { return d.Variables[i].Name < d.Variables[j].Name })
	if st, err := checkpoint.ReadState(filepath.Dir(prefix)); err == nil {
		d.Kept = st.AllModelCheckpointPaths
	}
	if !mi.Tfcat {
		// Python's tutorial saves no step count; Adam's beta1_power holds it.
		if s, info, err := tfsession.Resume(prefix, tfsession.SessionConfig{Device: tfsession.DeviceCPU}, 0); err == nil {
			d.Steps, d.StepsKnown = info.Step, true
			s.Close()
		}
	}
	return d, nil
}
