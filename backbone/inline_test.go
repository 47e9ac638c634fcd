package backbone

import (
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	functionpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/protobuf/proto"
)

// TestInlineFunctions inlines a call of g, which calls f, whose second
// output the graph reads: the inlined graph has no call left, computes the
// same values, and has gradients (the C API has none through a call).
func TestInlineFunctions(t *testing.T) {
	float := typespb.DataType_DT_FLOAT
	typ := &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: float}}
	types := func(n int) *attrpb.AttrValue {
		l := make([]typespb.DataType, n)
		for i := range l {
			l[i] = float
		}
		return &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{Type: l}}}
	}
	arg := func(name string) *opdefpb.OpDef_ArgDef { return &opdefpb.OpDef_ArgDef{Name: name, Type: float} }
	call := func(name, fn string, nin, nout int, in ...string) *nodepb.NodeDef {
		return &nodepb.NodeDef{Name: name, Op: "PartitionedCall", Input: in, Attr: map[string]*attrpb.AttrValue{
			"f": {Value: &attrpb.AttrValue_Func{Func: &attrpb.NameAttrList{Name: fn}}}, "Tin": types(nin), "Tout": types(nout)}}
	}
	// f(x, y) = (x·y, x + y); g(x) = f(x, 3)[1] · x.
	f := &functionpb.FunctionDef{
		Signature: &opdefpb.OpDef{Name: "f", InputArg: []*opdefpb.OpDef_ArgDef{arg("x"), arg("y")},
			OutputArg: []*opdefpb.OpDef_ArgDef{arg("prod"), arg("sum")}},
		NodeDef: []*nodepb.NodeDef{
			{Name: "mul", Op: "Mul", Input: []string{"x", "y"}, Attr: map[string]*attrpb.AttrValue{"T": typ}},
			{Name: "add", Op: "AddV2", Input: []string{"x", "y"}, Attr: map[string]*attrpb.AttrValue{"T": typ}},
		},
		Ret: map[string]string{"prod": "mul:z:0", "sum": "add:z:0"},
	}
	three, _ := tf.NewTensor(float32(3))
	g := &functionpb.FunctionDef{
		Signature: &opdefpb.OpDef{Name: "g", InputArg: []*opdefpb.OpDef_ArgDef{arg("x")}, OutputArg: []*opdefpb.OpDef_ArgDef{arg("out")}},
		NodeDef: []*nodepb.NodeDef{
			constNode("three", three),
			call("inner", "f", 2, 2, "x", "three:output:0"),
			{Name: "mul", Op: "Mul", Input: []string{"inner:output:1", "x"}, Attr: map[string]*attrpb.AttrValue{"T": typ}},
		},
		Ret: map[string]string{"out": "mul:z:0"},
	}
	gd := &graphpb.GraphDef{
		Node: []*nodepb.NodeDef{
			{Name: "a", Op: "Placeholder", Attr: map[string]*attrpb.AttrValue{"dtype": typ}},
			call("outer", "g", 1, 1, "a"),
			call("pair", "f", 2, 2, "a", "outer"),
			{Name: "out", Op: "AddV2", Input: []string{"pair:1", "pair"}, Attr: map[string]*attrpb.AttrValue{"T": typ}},
		},
		Library: &functionpb.FunctionDefLibrary{Function: []*functionpb.FunctionDef{f, g}},
	}
	inlined, err := InlineFunctions(gd)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range inlined.Node {
		if n.Op == "PartitionedCall" {
			t.Errorf("node %s (%s) is still a call", n.Name, n.Op)
		}
	}
	// a = 2: o = outer = (a+3)·a = 10; pair = (a·o, a+o) = (20, 12); out =
	// 32, and d out/d a = o + a·o' + 1 + o' with o' = 2a+3: 10 + 14 + 1 + 7 = 32.
	run := func(gd *graphpb.GraphDef, grad bool) []float32 {
		def, err := proto.Marshal(gd)
		if err != nil {
			t.Fatal(err)
		}
		gr := tf.NewGraph()
		if err := gr.Import(def, ""); err != nil {
			t.Fatal(err)
		}
		fetch := []tf.Output{gr.Operation("out").Output(0)}
		if grad {
			d, err := gr.AddGradients("", fetch, []tf.Output{gr.Operation("a").Output(0)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			fetch = append(fetch, d...)
		}
		s, err := tf.NewSession(gr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		two, _ := tf.NewTensor(float32(2))
		out, err := s.Run(map[tf.Output]*tf.Tensor{gr.Operation("a").Output(0): two}, fetch, nil)
		if err != nil {
			t.Fatal(err)
		}
		var v []float32
		for _, o := range out {
			v = append(v, o.Value().(float32))
		}
		return v
	}
	want, got := run(gd, false), run(inlined, true)
	if want[0] != 32 || got[0] != 32 || got[1] != 32 {
		t.Errorf("out %v with calls, %v inlined (value, gradient); want 32 and 32", want, got)
	}
}

func constNode(name string, t *tf.Tensor) *nodepb.NodeDef {
	g := tf.NewGraph()
	g.AddOperation(tf.OpSpec{Type: "Const", Name: "c", Attrs: map[string]any{"dtype": t.DataType(), "value": t}})
	var buf []byte
	w := &sliceWriter{&buf}
	if _, err := g.WriteTo(w); err != nil {
		panic(err)
	}
	var gd graphpb.GraphDef
	if err := proto.Unmarshal(buf, &gd); err != nil {
		panic(err)
	}
	n := gd.Node[0]
	n.Name = name
	return n
}

type sliceWriter struct{ b *[]byte }

func (w *sliceWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
