package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// A SavedModel's layout and names, as TensorFlow writes and serves it.
const (
	// SavedModelFile holds the SavedModel's MetaGraphs.
	SavedModelFile = "saved_model.pb"
	// SavedModelVariablesDir and SavedModelVariablesName place the weights'
	// bundle: DIR/variables/variables.index and .data-*.
	SavedModelVariablesDir  = "variables"
	SavedModelVariablesName = "variables"
	// ServeTag tags the MetaGraph servers look for.
	ServeTag = "serve"
	// ServingSignatureKey is the signature TensorFlow Serving uses by default.
	ServingSignatureKey = "serving_default"
)

// IsSavedModel reports whether dir is a folder holding a saved_model.pb.
func IsSavedModel(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, SavedModelFile))
	return err == nil && fi.Mode().IsRegular()
}

// ReadSavedModel parses dir/saved_model.pb.
func ReadSavedModel(dir string) (*corepb.SavedModel, error) {
	path := filepath.Join(dir, SavedModelFile)
	data, err := ReadFileLimit(path, MaxGraphFileBytes)
	if err != nil {
		if _, terr := os.Stat(filepath.Join(dir, "saved_model.pbtxt")); terr == nil {
			return nil, fmt.Errorf("%s: text SavedModels (saved_model.pbtxt) are not supported; re-export in binary form", dir)
		}
		return nil, err
	}
	sm := &corepb.SavedModel{}
	if err := proto.Unmarshal(data, sm); err != nil {
		return nil, fmt.Errorf("%s: not a SavedModel (corrupt or truncated): %w", path, err)
	}
	return sm, nil
}

// ReadServeGraph parses dir/saved_model.pb and returns its "serve" MetaGraphDef.
func ReadServeGraph(dir string) (*corepb.MetaGraphDef, error) {
	sm, err := ReadSavedModel(dir)
	if err != nil {
		return nil, err
	}
	return ServeGraph(dir, sm)
}

// ServeGraph picks the MetaGraphDef of sm (read from dir) tagged exactly or
// at least "serve".
func ServeGraph(dir string, sm *corepb.SavedModel) (*corepb.MetaGraphDef, error) {
	var tagSets []string
	for _, mg := range sm.MetaGraphs {
		tags := mg.GetMetaInfoDef().GetTags()
		if slices.Contains(tags, ServeTag) && len(tags) == 1 {
			return mg, nil
		}
		tagSets = append(tagSets, fmt.Sprint(tags))
	}
	for _, mg := range sm.MetaGraphs {
		if slices.Contains(mg.GetMetaInfoDef().GetTags(), ServeTag) {
			return mg, nil
		}
	}
	return nil, fmt.Errorf("%s: no MetaGraph tagged %q (tag sets: %s)", dir, ServeTag, strings.Join(tagSets, ", "))
}

// TensorInfoDims is the shape a signature's TensorInfo gives (-1 for an
// unknown dimension), or nil when its rank is unknown.
func TensorInfoDims(ti *corepb.TensorInfo) []int64 {
	if ti.GetTensorShape() == nil || ti.GetTensorShape().UnknownRank {
		return nil
	}
	d := make([]int64, len(ti.TensorShape.Dim))
	for i, x := range ti.TensorShape.Dim {
		d[i] = x.Size
	}
	return d
}
