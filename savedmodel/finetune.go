package savedmodel

import (
	"slices"
	"strings"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/network"
)

// baseVariables names the backbone's variables (nodes, keyed as
// variableKeys keys them) as the object graph saves them, with whether the
// model trains them; a TF1 SavedModel's are named by node, all trainable.
func baseVariables(keys map[string]string, og *corepb.SavedObjectGraph) []network.BaseVariable {
	byPath := map[string]int{}
	if len(og.GetNodes()) > 0 {
		for id, p := range objectPaths(og) {
			if p != "" {
				byPath[p] = id
			}
		}
	}
	var out []network.BaseVariable
	for node, key := range keys {
		v := network.BaseVariable{Node: node, Name: node, Trainable: true}
		if id, ok := byPath[strings.TrimSuffix(key, "/.ATTRIBUTES/VARIABLE_VALUE")]; ok {
			if sv := og.Nodes[id].GetVariable(); sv != nil && sv.GetName() != "" {
				v.Name, v.Trainable = sv.GetName(), sv.GetTrainable()
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b network.BaseVariable) int { return strings.Compare(a.Node, b.Node) })
	return out
}
