package checkpoint

import (
	"fmt"
	"strconv"
	"strings"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	funcpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
)

// TensorName is an op name with an output index, as in "y_pred:0".
func TensorName(op string, index int) string { return fmt.Sprintf("%s:%d", op, index) }

// ParseTensorName splits a tensor name such as "y_pred:0" into its op and
// output index; a name without ":N" is output 0, as TensorFlow reads it.
func ParseTensorName(name string) (op string, index int, err error) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return name, 0, nil
	}
	index, err = strconv.Atoi(name[i+1:])
	if err != nil || index < 0 || i == 0 {
		return "", 0, fmt.Errorf("bad tensor name %q", name)
	}
	return name[:i], index, nil
}

// NodeName is the node an input reference of a NodeDef names: "^a" (a
// control input), "a:1" and "a" all name "a".
func NodeName(input string) string {
	input = strings.TrimPrefix(input, "^")
	if op, _, err := ParseTensorName(input); err == nil {
		return op
	}
	return input
}

// CalledFunctions lists the functions a node's attributes name (the "f" of
// a PartitionedCall, the branches of an If, ...).
func CalledFunctions(attrs map[string]*attrpb.AttrValue) []string {
	var out []string
	for _, a := range attrs {
		if f := a.GetFunc(); f != nil {
			out = append(out, f.GetName())
		}
		for _, f := range a.GetList().GetFunc() {
			out = append(out, f.GetName())
		}
	}
	return out
}

// PruneGraph keeps the nodes of gd that roots (node or tensor names) need and
// the functions they call, directly or through other functions.
func PruneGraph(gd *graphpb.GraphDef, roots []string) (*graphpb.GraphDef, error) {
	byName := make(map[string]int, len(gd.Node))
	for i, n := range gd.Node {
		byName[n.Name] = i
	}
	keep := map[string]bool{}
	stack := make([]string, len(roots))
	for i, r := range roots {
		stack[i] = NodeName(r)
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[name] {
			continue
		}
		i, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("the graph has no node %q", name)
		}
		keep[name] = true
		for _, in := range gd.Node[i].Input {
			stack = append(stack, NodeName(in))
		}
	}
	out := &graphpb.GraphDef{Versions: gd.Versions}
	var calls []string
	for _, n := range gd.Node {
		if keep[n.Name] {
			out.Node = append(out.Node, n)
			calls = append(calls, CalledFunctions(n.Attr)...)
		}
	}
	lib := gd.GetLibrary()
	if lib == nil {
		return out, nil
	}
	funcs := map[string]int{}
	for i, f := range lib.Function {
		funcs[f.GetSignature().GetName()] = i
	}
	used := map[string]bool{}
	for len(calls) > 0 {
		name := calls[len(calls)-1]
		calls = calls[:len(calls)-1]
		i, ok := funcs[name]
		if used[name] || !ok {
			continue
		}
		used[name] = true
		for _, n := range lib.Function[i].NodeDef {
			calls = append(calls, CalledFunctions(n.Attr)...)
		}
	}
	out.Library = &funcpb.FunctionDefLibrary{}
	for _, f := range lib.Function {
		if used[f.GetSignature().GetName()] {
			out.Library.Function = append(out.Library.Function, f)
		}
	}
	return out, nil
}
