package savedmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tfcat/tfcat/checkpoint"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// IsSavedModel reports whether dir is a folder holding a saved_model.pb.
func IsSavedModel(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, ModelFile))
	return err == nil && fi.Mode().IsRegular()
}

// readModelFile parses dir/saved_model.pb.
func readModelFile(dir string) (*corepb.SavedModel, error) {
	path := filepath.Join(dir, ModelFile)
	data, err := checkpoint.ReadFileLimit(path, checkpoint.MaxGraphFileBytes)
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

// readServeGraph parses dir/saved_model.pb and returns its "serve" MetaGraphDef.
func readServeGraph(dir string) (*corepb.MetaGraphDef, error) {
	sm, err := readModelFile(dir)
	if err != nil {
		return nil, err
	}
	return serveGraph(dir, sm)
}

// serveGraph picks the MetaGraphDef tagged exactly or at least "serve".
func serveGraph(dir string, sm *corepb.SavedModel) (*corepb.MetaGraphDef, error) {
	var tagSets []string
	for _, mg := range sm.MetaGraphs {
		tags := mg.GetMetaInfoDef().GetTags()
		if slices.Contains(tags, Tag) && len(tags) == 1 {
			return mg, nil
		}
		tagSets = append(tagSets, fmt.Sprint(tags))
	}
	for _, mg := range sm.MetaGraphs {
		if slices.Contains(mg.GetMetaInfoDef().GetTags(), Tag) {
			return mg, nil
		}
	}
	return nil, fmt.Errorf("%s: no MetaGraph tagged %q (tag sets: %s)", dir, Tag, strings.Join(tagSets, ", "))
}
