package tfgraph

import (
	"errors"
	"fmt"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
)

// Op types an imported graph may hold: those of the tutorial's graph as Python
// TF 1.x/2.x and tfcat build it (forward pass, gradients, Adam with reference or
// resource variables, initialisers, the Saver). Anything else — file writes,
// Python callbacks — is refused unless the caller trusts the file.
var allowedOps = setOf(
	// forward pass and metrics
	"Placeholder", "PlaceholderWithDefault", "Const", "Identity", "Conv2D", "Add", "AddV2", "BiasAdd",
	"MaxPool", "Relu", "Reshape", "MatMul", "Softmax", "SoftmaxCrossEntropyWithLogits", "Mean",
	"ArgMax", "Equal", "Cast", "NoOp", "StopGradient", "LogSoftmax",
	// variables and initialisers
	"VariableV2", "Variable", "Assign", "TruncatedNormal", "Mul", "Fill",
	"VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp", "IsVariableInitialized",
	// gradients and Adam
	"Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad", "ReluGrad", "BiasAddGrad",
	"ApplyAdam", "ResourceApplyAdam", "ConcatV2", "ExpandDims", "FloorMod", "FloorDiv", "GatherV2",
	"Neg", "Pack", "Prod", "RealDiv", "Shape", "ShapeN", "Slice", "Sub", "Sum", "Tile", "ZerosLike",
	"BroadcastGradientArgs", "Maximum", "Size", "Range", "Rank", "StridedSlice", "Squeeze", "Sqrt",
	"OnesLike", "DivNoNan", "Reciprocal", "Square", "Mod", "Div", "DynamicStitch",
	// tfcat's dropout and batch normalisation (layers.go)
	"RandomUniform", "Floor", "Rsqrt", "RsqrtGrad", "SquaredDifference", "AddN",
	// the Saver
	"SaveV2", "RestoreV2", "MergeV2Checkpoints", "StringJoin", "ShardedFilename",
)

// fileWritingOps may sit in an allowed graph (Python's Saver has them) but must
// not be reached by what tfcat runs to restore and predict.
var fileWritingOps = setOf("SaveV2", "MergeV2Checkpoints")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// ErrUntrustedGraph is wrapped by CheckGraph's refusals: the graph could do
// more than restore variables and predict. Callers that let a user vouch for
// the file say so in their own words.
var ErrUntrustedGraph = errors.New("refusing to run this graph")

// CheckGraph refuses a graph from elsewhere that could do more than restore
// variables and predict: every node's op type must be one the tutorial's graph
// uses, and nothing reachable from the nodes tfcat runs (roots) may write files.
// file names the .meta in errors.
func CheckGraph(gd *graphpb.GraphDef, roots []string, file string) error {
	byName := make(map[string]*nodepb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		if !allowedOps[n.Op] {
			return fmt.Errorf("%s: node %q has op type %s, which restoring and predicting do not need; %w", file, n.Name, n.Op, ErrUntrustedGraph)
		}
		byName[n.Name] = n
	}
	if lib := gd.GetLibrary(); lib != nil && len(lib.Function) > 0 {
		return fmt.Errorf("%s: the graph defines %d functions and the tutorial's graph has none: %w", file, len(lib.Function), ErrUntrustedGraph)
	}
	seen := map[string]bool{}
	stack := append([]string(nil), roots...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		n := byName[name]
		if n == nil {
			return fmt.Errorf("%s: the graph has no node %q", file, name)
		}
		if fileWritingOps[n.Op] {
			return fmt.Errorf("%s: restoring or predicting would run %q (%s), which writes files: %w", file, n.Name, n.Op, ErrUntrustedGraph)
		}
		for _, in := range n.Input {
			stack = append(stack, NodeName(in))
		}
	}
	return nil
}
