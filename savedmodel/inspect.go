package savedmodel

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// Info describes a SavedModel without loading it.
type Info struct {
	Dir        string
	Tags       []string // the tags of the MetaGraph tfcat uses ("serve")
	Signatures []string // signature keys, sorted
	// Height, Width and Channels are the serving signature's image size;
	// NumClasses is the width of its probabilities. Zero when unknown.
	Height, Width, Channels int
	NumClasses              int
	// Classes are the class names in label order, from the classes.txt asset
	// (or tfcat's collection); nil when the model carries none.
	Classes []string
	// Network is the architecture tfcat recorded; nil for other SavedModels.
	Network *network.Network
	// Step is the training step of the checkpoint exported (tfcat's only).
	Step              int
	TensorFlowVersion string
	// Tfcat is true when tfcat wrote the SavedModel.
	Tfcat bool
	// Variables are the graph's variables; the trainable ones are those in
	// its trainable_variables collection.
	Variables []checkpoint.VariableInfo
}

// Inspect reads dir/saved_model.pb and describes its "serve" MetaGraph.
func Inspect(dir string) (*Info, error) {
	meta, err := checkpoint.ReadServeGraph(dir)
	if err != nil {
		return nil, err
	}
	return describe(dir, meta)
}

func describe(dir string, meta *corepb.MetaGraphDef) (*Info, error) {
	in := &Info{Dir: dir, Tags: meta.GetMetaInfoDef().GetTags()}
	for k := range meta.SignatureDef {
		in.Signatures = append(in.Signatures, k)
	}
	sort.Strings(in.Signatures)
	if meta.GraphDef != nil {
		mi := network.InfoFromMeta(meta)
		in.Network, in.Step, in.TensorFlowVersion, in.Tfcat = mi.Network, mi.Step, mi.TensorFlowVersion, mi.Tfcat
		in.Classes = mi.Classes
		in.Variables = checkpoint.GraphVariables(meta)
	}
	if sig := meta.SignatureDef[SignatureKey]; sig != nil {
		if ti, _, err := pickInput(sig); err == nil {
			if d := checkpoint.TensorInfoDims(ti); len(d) == 4 {
				in.Height, in.Width, in.Channels = int(d[1]), int(d[2]), int(d[3])
			}
		}
		if ti, _, err := pickProbabilities(sig); err == nil {
			if d := checkpoint.TensorInfoDims(ti); len(d) == 2 {
				in.NumClasses = int(d[1])
			}
		}
	}
	names, err := assetClasses(dir, meta)
	if err != nil {
		return nil, err
	}
	if names != nil {
		in.Classes = names
	}
	if in.Classes != nil && in.NumClasses > 0 && len(in.Classes) != in.NumClasses {
		return nil, fmt.Errorf("%s: %d class names for %d classes", dir, len(in.Classes), in.NumClasses)
	}
	return in, nil
}

// assetClasses reads the classes.txt asset, if the MetaGraph registers one.
func assetClasses(dir string, meta *corepb.MetaGraphDef) ([]string, error) {
	for _, a := range meta.AssetFileDef {
		if a.Filename != ClassNamesAsset {
			continue
		}
		path := filepath.Join(dir, AssetsDir, ClassNamesAsset)
		data, err := checkpoint.ReadFileLimit(path, checkpoint.MaxStateFileBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: the SavedModel registers the asset %s, but: %w", dir, ClassNamesAsset, err)
		}
		text := strings.TrimRight(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		if text == "" {
			return nil, fmt.Errorf("%s: empty", path)
		}
		return strings.Split(text, "\n"), nil
	}
	return nil, nil
}

// pickInput is the signature's image input: "images", or its only input.
func pickInput(sig *corepb.SignatureDef) (*corepb.TensorInfo, string, error) {
	if ti := sig.Inputs[InputKey]; ti != nil {
		return ti, InputKey, nil
	}
	if len(sig.Inputs) == 1 {
		for k, ti := range sig.Inputs {
			return ti, k, nil
		}
	}
	return nil, "", fmt.Errorf("signature %s has no input %q and %d inputs", SignatureKey, InputKey, len(sig.Inputs))
}

// pickProbabilities is the signature's probabilities output: "probabilities",
// or its only output.
func pickProbabilities(sig *corepb.SignatureDef) (*corepb.TensorInfo, string, error) {
	if ti := sig.Outputs[ProbabilitiesKey]; ti != nil {
		return ti, ProbabilitiesKey, nil
	}
	if len(sig.Outputs) == 1 {
		for k, ti := range sig.Outputs {
			return ti, k, nil
		}
	}
	return nil, "", fmt.Errorf("signature %s has no output %q and %d outputs", SignatureKey, ProbabilitiesKey, len(sig.Outputs))
}
