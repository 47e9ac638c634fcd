package backbone

import (
	"fmt"
	"slices"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// variableKeys maps the variables of gd (node names) to their keys in the
// SavedModel's checkpoint. A TF1 SavedModel's Saver keys a variable by its
// name. A TF2 one keys it by its path in the object graph, and its graph's
// function calls capture the variables' handles: og's concrete functions
// tell which object each captured input is.
func variableKeys(gd *graphpb.GraphDef, og *corepb.SavedObjectGraph) (map[string]string, error) {
	keys := map[string]string{}
	isVar := func(n *nodepb.NodeDef) bool { return n != nil && isVariable(n.Op) }
	byName := map[string]*nodepb.NodeDef{}
	for _, n := range gd.Node {
		byName[n.Name] = n
	}
	if len(og.GetNodes()) == 0 {
		for _, n := range gd.Node {
			if isVar(n) {
				keys[n.Name] = n.Name
			}
		}
		return keys, nil
	}
	paths := objectPaths(og)
	for _, n := range gd.Node {
		fn := n.Attr["f"].GetFunc().GetName()
		cf := og.GetConcreteFunctions()[fn]
		if cf == nil {
			continue
		}
		var data []string
		for _, in := range n.Input {
			if !strings.HasPrefix(in, "^") {
				data = append(data, in)
			}
		}
		bound := cf.GetBoundInputs()
		if len(bound) > len(data) {
			return nil, fmt.Errorf("node %s captures %d values but has %d inputs", n.Name, len(bound), len(data))
		}
		for i, id := range bound {
			v := byName[checkpoint.NodeName(data[len(data)-len(bound)+i])]
			if !isVar(v) {
				continue
			}
			if int(id) >= len(og.Nodes) || og.Nodes[id].GetVariable() == nil || paths[id] == "" {
				return nil, fmt.Errorf("variable %s: object %d of the object graph is not a variable", v.Name, id)
			}
			keys[v.Name] = paths[id] + "/.ATTRIBUTES/VARIABLE_VALUE"
		}
	}
	for _, n := range gd.Node {
		if isVar(n) && keys[n.Name] == "" {
			return nil, fmt.Errorf("variable %s is not one the object graph saves", n.Name)
		}
	}
	return keys, nil
}

// objectPaths is each object's checkpoint key prefix: the local names on
// the first path to it in a breadth-first walk from the root, each with
// "." escaped as ".." and "/" as ".S", joined by "/" (TensorFlow's
// checkpoint naming).
func objectPaths(og *corepb.SavedObjectGraph) []string {
	paths := make([]string, len(og.Nodes))
	seen := make([]bool, len(og.Nodes))
	seen[0] = true
	queue := []int32{0}
	esc := strings.NewReplacer(".", "..", "/", ".S")
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, c := range og.Nodes[id].GetChildren() {
			k := c.GetNodeId()
			if k < 0 || int(k) >= len(og.Nodes) || seen[k] {
				continue
			}
			seen[k] = true
			paths[k] = esc.Replace(c.GetLocalName())
			if paths[id] != "" {
				paths[k] = paths[id] + "/" + paths[k]
			}
			queue = append(queue, k)
		}
	}
	return paths
}

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
