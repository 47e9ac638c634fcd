package backbone_test

import (
	"bytes"
	"fmt"
	"log"

	tf "github.com/wamuir/graft/tensorflow"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	functionpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/backbone"
)

// A SavedModel's graph is mostly function calls, and its variables are read
// inside the functions, where a graph's gradients (the C API's
// TF_AddGradients) cannot be taken with respect to them: InlineFunctions
// replaces each call by the function's body, named under the call, whose
// tensors are then the graph's. Here y = scale(x), a PartitionedCall of
// scale(x) = x·w with w a constant 2 inside the function (a SavedModel's
// variable read in its place); the gradient is taken with respect to w.
func ExampleInlineFunctions() {
	float := &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: typespb.DataType_DT_FLOAT}}
	floats := &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{Type: []typespb.DataType{typespb.DataType_DT_FLOAT}}}}
	arg := func(name string) *opdefpb.OpDef_ArgDef {
		return &opdefpb.OpDef_ArgDef{Name: name, Type: typespb.DataType_DT_FLOAT}
	}
	two, _ := tf.NewTensor(float32(2))
	scale := &functionpb.FunctionDef{
		Signature: &opdefpb.OpDef{Name: "scale", InputArg: []*opdefpb.OpDef_ArgDef{arg("x")}, OutputArg: []*opdefpb.OpDef_ArgDef{arg("y")}},
		NodeDef: []*nodepb.NodeDef{
			{Name: "w", Op: "Const", Attr: map[string]*attrpb.AttrValue{"dtype": float, "value": tensorAttr(two)}},
			{Name: "mul", Op: "Mul", Input: []string{"x", "w:output:0"}, Attr: map[string]*attrpb.AttrValue{"T": float}},
		},
		Ret: map[string]string{"y": "mul:z:0"},
	}
	gd := &graphpb.GraphDef{
		Node: []*nodepb.NodeDef{
			{Name: "x", Op: "Placeholder", Attr: map[string]*attrpb.AttrValue{"dtype": float}},
			{Name: "y", Op: "PartitionedCall", Input: []string{"x"}, Attr: map[string]*attrpb.AttrValue{
				"f": {Value: &attrpb.AttrValue_Func{Func: &attrpb.NameAttrList{Name: "scale"}}}, "Tin": floats, "Tout": floats}},
		},
		Library: &functionpb.FunctionDefLibrary{Function: []*functionpb.FunctionDef{scale}},
	}
	inlined, err := backbone.InlineFunctions(gd)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range inlined.Node {
		fmt.Println(n.Name, n.Op, n.Input)
	}

	// y = x·w; dy/dw = x: at x = 3, y = 6 and dy/dw = 3.
	def, err := proto.Marshal(inlined)
	if err != nil {
		log.Fatal(err)
	}
	g := tf.NewGraph()
	if err := g.Import(def, ""); err != nil {
		log.Fatal(err)
	}
	w := g.Operation("y/w")
	if w == nil {
		log.Fatal("no node y/w: the call was not inlined")
	}
	x, y := g.Operation("x").Output(0), g.Operation("y").Output(0)
	dy, err := g.AddGradients("", []tf.Output{y}, []tf.Output{w.Output(0)}, nil)
	if err != nil {
		log.Fatal(err)
	}
	s, err := tf.NewSession(g, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	three, _ := tf.NewTensor(float32(3))
	out, err := s.Run(map[tf.Output]*tf.Tensor{x: three}, []tf.Output{y, dy[0]}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("y =", out[0].Value(), "dy/dw =", out[1].Value())
	// Output:
	// x Placeholder []
	// y/w Const []
	// y/mul Mul [x y/w:0]
	// y Identity [y/mul:0]
	// y = 6 dy/dw = 3
}

// tensorAttr is t as a Const's value attribute.
func tensorAttr(t *tf.Tensor) *attrpb.AttrValue {
	g := tf.NewGraph()
	g.AddOperation(tf.OpSpec{Type: "Const", Name: "c", Attrs: map[string]any{"dtype": t.DataType(), "value": t}})
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}
	var gd graphpb.GraphDef
	if err := proto.Unmarshal(buf.Bytes(), &gd); err != nil {
		log.Fatal(err)
	}
	return gd.Node[0].Attr["value"]
}
