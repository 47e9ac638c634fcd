package backbone

import (
	"errors"
	"strings"
	"testing"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"

	"github.com/tfcat/tfcat/network"
)

// bnGraph is a batch norm's inference arithmetic as Keras writes it, for
// layer bn on input x, with its variables named as a SavedModel's object
// graph names them.
func bnGraph() (*graphpb.GraphDef, []network.BaseVariable) {
	n := func(name, op string, in ...string) *nodepb.NodeDef {
		return &nodepb.NodeDef{Name: name, Op: op, Input: in}
	}
	gd := &graphpb.GraphDef{Node: []*nodepb.NodeDef{
		n("x", "Placeholder"),
		n("mm", "VarHandleOp"), n("mv", "VarHandleOp"), n("g", "VarHandleOp"), n("b", "VarHandleOp"),
		n("rm", "ReadVariableOp", "mm"), n("rv", "ReadVariableOp", "mv"), n("rg", "ReadVariableOp", "g"), n("rb", "ReadVariableOp", "b"),
		n("eps", "Const"),
		n("add", "AddV2", "rv", "eps"), n("rsqrt", "Rsqrt", "add"), n("mul", "Mul", "rsqrt", "rg"),
		n("mul_1", "Mul", "x", "mul"), n("mul_2", "Mul", "rm", "mul"), n("sub", "Sub", "rb", "mul_2"),
		n("add_1", "AddV2", "mul_1", "sub"), n("out", "Relu6", "add_1"),
	}}
	vars := []network.BaseVariable{{Node: "mm", Name: "bn/moving_mean"}, {Node: "mv", Name: "bn/moving_variance"},
		{Node: "g", Name: "bn/gamma", Trainable: true}, {Node: "b", Name: "bn/beta", Trainable: true}}
	return gd, vars
}

// TestFindBatchNorms finds Keras's inference arithmetic and refuses, in
// one line naming the layer, a batch norm of another shape.
func TestFindBatchNorms(t *testing.T) {
	gd, vars := bnGraph()
	bns, err := FindBatchNorms(gd, vars, []string{"bn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(bns) != 1 || bns[0].X != "x" || bns[0].Add != "add" || bns[0].AddArg != 0 || bns[0].Mul2 != "mul_2" || bns[0].Mul2Arg != 0 {
		t.Fatalf("found %+v", bns)
	}
	for _, c := range []struct {
		name   string
		change func(gd *graphpb.GraphDef, vars []network.BaseVariable) []network.BaseVariable
		reason string
	}{
		{"sqrt and a division", func(gd *graphpb.GraphDef, v []network.BaseVariable) []network.BaseVariable {
			gd.Node[11].Op = "Sqrt"
			return v
		}, "does not feed one Rsqrt"},
		{"no beta (center=False)", func(gd *graphpb.GraphDef, v []network.BaseVariable) []network.BaseVariable {
			return v[:3]
		}, "has no variable beta"},
		{"a variable epsilon", func(gd *graphpb.GraphDef, v []network.BaseVariable) []network.BaseVariable {
			gd.Node[9].Op = "Placeholder"
			return v
		}, "not added to a constant epsilon"},
		{"mean and offset swapped", func(gd *graphpb.GraphDef, v []network.BaseVariable) []network.BaseVariable {
			gd.Node[15].Input = []string{"mul_2", "rb"}
			return v
		}, "beta minus the scaled mean"},
	} {
		gd, vars := bnGraph()
		_, err := FindBatchNorms(gd, c.change(gd, vars), []string{"bn"})
		var be *BatchNormError
		if !errors.As(err, &be) || be.Layer != "bn" || !strings.Contains(err.Error(), c.reason) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want a one-line BatchNormError for bn: %s", c.name, err, c.reason)
		}
	}
}
