package tfgraph

import (
	"slices"
	"testing"

	"github.com/tfcat/tfcat/network"
)

// small is a quick network for tests: 8x8x1 input, one conv layer, fc 4.
func small(classes int) network.Network {
	n := network.Tutorial(classes).WithInput(8, 8, 1)
	n.Conv = []network.ConvLayer{{Size: 3, Filters: 2}}
	n.FC = 4
	n.LearningRate = 1e-2
	return n
}

func mustBuild(t testing.TB, n network.Network, opt BuildOptions) *Model {
	t.Helper()
	m, err := Build(n, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTutorialGraphNames(t *testing.T) {
	m := mustBuild(t, network.Tutorial(2), BuildOptions{Seed: 1})
	wantShapes := [][]int64{{3, 3, 3, 32}, {32}, {3, 3, 32, 32}, {32}, {3, 3, 32, 64}, {64}, {16384, 128}, {128}, {128, 2}, {2}}
	for i, shape := range wantShapes {
		name := network.VariableName(i)
		v := m.Var(name)
		if v == nil || !slices.Equal(v.Shape, shape) || !v.Trainable {
			t.Fatalf("variable %s: got %+v, want trainable shape %v", name, v, shape)
		}
		for _, n := range []string{name + "/read", name + "/Assign", name + "/Adam", name + "/Adam_1", "Adam/update_" + name + "/ApplyAdam"} {
			if m.Graph.Operation(n) == nil {
				t.Errorf("missing op %s", n)
			}
		}
	}
	types := map[string]string{
		"x": "Placeholder", "y_true": "Placeholder", "y_pred": "Softmax", "Adam": "NoOp", "init": "NoOp",
		"Variable": "VariableV2", "Variable_9/Adam_1": "VariableV2", "beta1_power": "VariableV2", "beta2_power": "VariableV2",
		"Variable/Assign": "Assign", "Variable/read": "Identity", "Adam/update_Variable_6/ApplyAdam": "ApplyAdam",
		"save/filename/input": "Const", "save/filename": "PlaceholderWithDefault", "save/Const": "PlaceholderWithDefault",
		"save/SaveV2": "SaveV2", "save/control_dependency": "Identity", "save/RestoreV2": "RestoreV2",
		"save/Assign": "Assign", "save/Assign_31": "Assign", "save/restore_all": "NoOp",
	}
	for name, typ := range types {
		op := m.Graph.Operation(name)
		if op == nil {
			t.Errorf("missing op %s", name)
			continue
		}
		if op.Type() != typ {
			t.Errorf("op %s is %s, want %s", name, op.Type(), typ)
		}
	}
	if len(m.Vars) != 32 {
		t.Errorf("%d global variables, want 32", len(m.Vars))
	}
	if got := m.Net.FLOPs() / 2; got < 72e6 || got > 74e6 {
		t.Errorf("forward multiply-adds %d, want about 73 M", got)
	}
}
