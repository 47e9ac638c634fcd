package checkpoint

import (
	"errors"
	"strings"
	"testing"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	funcpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
)

// call is a node (or function node) calling the function fn.
func call(name, fn string, inputs ...string) *nodepb.NodeDef {
	return &nodepb.NodeDef{Name: name, Op: "StatefulPartitionedCall", Input: inputs,
		Attr: map[string]*attrpb.AttrValue{"f": {Value: &attrpb.AttrValue_Func{Func: &attrpb.NameAttrList{Name: fn}}}}}
}

func function(name string, nodes ...*nodepb.NodeDef) *funcpb.FunctionDef {
	return &funcpb.FunctionDef{Signature: &opdefpb.OpDef{Name: name}, NodeDef: nodes}
}

// TestCheckGraphFunctions checks the ops inside functions, and what calls
// reach through nested functions.
func TestCheckGraphFunctions(t *testing.T) {
	features := function("features", &nodepb.NodeDef{Name: "conv", Op: "DepthwiseConv2dNative"}, &nodepb.NodeDef{Name: "r", Op: "Relu6"})
	save := function("save", &nodepb.NodeDef{Name: "s", Op: "SaveV2"})
	for _, c := range []struct {
		name  string
		roots []string
		nodes []*nodepb.NodeDef
		funcs []*funcpb.FunctionDef
		want  string // "" accepts
	}{
		{"feature extractor", []string{"out"}, []*nodepb.NodeDef{call("out", "features", "x")}, []*funcpb.FunctionDef{features}, ""},
		{"python callback in a function", nil, nil, []*funcpb.FunctionDef{function("cb", &nodepb.NodeDef{Name: "py", Op: "EagerPyFunc"})}, "op type EagerPyFunc"},
		{"file write two calls deep", []string{"out"}, []*nodepb.NodeDef{call("out", "outer", "x")},
			[]*funcpb.FunctionDef{function("outer", call("inner_call", "save")), save}, "SaveV2"},
		{"file write not reached", []string{"out"}, []*nodepb.NodeDef{call("out", "features", "x"), call("saver", "save")},
			[]*funcpb.FunctionDef{features, save}, ""},
		{"undefined function", []string{"out"}, []*nodepb.NodeDef{call("out", "elsewhere", "x")}, nil, "does not define"},
	} {
		t.Run(c.name, func(t *testing.T) {
			gd := &graphpb.GraphDef{Node: append([]*nodepb.NodeDef{{Name: "x", Op: "Placeholder"}}, c.nodes...),
				Library: &funcpb.FunctionDefLibrary{Function: c.funcs}}
			err := CheckGraph(gd, c.roots, "m/saved_model.pb")
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrUntrustedGraph)):
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// TestPruneGraph keeps what the roots need and the functions they call.
func TestPruneGraph(t *testing.T) {
	gd := &graphpb.GraphDef{
		Node: []*nodepb.NodeDef{{Name: "x", Op: "Placeholder"}, call("out", "outer", "x"), call("saver", "save")},
		Library: &funcpb.FunctionDefLibrary{Function: []*funcpb.FunctionDef{
			function("outer", call("c", "inner")), function("inner"), function("save", &nodepb.NodeDef{Name: "s", Op: "SaveV2"}),
		}},
	}
	p, err := PruneGraph(gd, []string{"out:0"})
	if err != nil {
		t.Fatal(err)
	}
	var nodes, funcs []string
	for _, n := range p.Node {
		nodes = append(nodes, n.Name)
	}
	for _, f := range p.Library.Function {
		funcs = append(funcs, f.Signature.Name)
	}
	if strings.Join(nodes, ",") != "x,out" || strings.Join(funcs, ",") != "outer,inner" {
		t.Errorf("kept nodes %v and functions %v, want x,out and outer,inner", nodes, funcs)
	}
	if _, err := PruneGraph(gd, []string{"missing"}); err == nil {
		t.Error("a missing root was accepted")
	}
}
