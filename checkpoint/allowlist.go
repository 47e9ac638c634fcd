package checkpoint

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

// backboneOps are the further op types of image feature extractors
// (MobileNet, EfficientNet, ResNet, VGG, Inception as Keras saves them, and
// tfcat's own models) and of TF2 SavedModels' function calls and savers: a
// backbone (Network.Base) may hold them. Calls are checked through: every
// node of every function must pass as well.
var backboneOps = setOf(
	"DepthwiseConv2dNative", "FusedBatchNorm", "FusedBatchNormV3", "Relu6", "Elu", "Selu", "LeakyRelu",
	"Softplus", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Pow", "Minimum", "ClipByValue", "Max", "Min",
	"Pad", "PadV2", "MirrorPad", "AvgPool", "Transpose", "ReverseV2", "ResizeBilinear", "ResizeNearestNeighbor",
	"BatchMatMulV2", "Einsum", "IdentityN", "Select", "SelectV2", "StaticRegexFullMatch", "Relu6",
	"PartitionedCall", "StatefulPartitionedCall", "DisableCopyOnRead",
)

// fileWritingOps may sit in an allowed graph (Python's Saver has them) but must
// not be reached by what tfcat runs to restore and predict.
var fileWritingOps = setOf("SaveV2", "MergeV2Checkpoints")

// TutorialOp reports whether op is one of the op types of the tutorial's
// graph as Python or tfcat build it (not a backbone's): tfcat's own graphs
// must hold only these, so that it always loads its own checkpoints.
func TutorialOp(op string) bool { return allowedOps[op] }

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
// variables and predict: every node's op type, in the graph and in its
// functions, must be one the tutorial's graph or an image feature extractor
// uses (backboneOps), and nothing reachable (through function calls too) from the nodes tfcat runs (roots) may write files.
// file names the .meta in errors.
func CheckGraph(gd *graphpb.GraphDef, roots []string, file string) error {
	byName := make(map[string]*nodepb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		if !allowed(n.Op) {
			return fmt.Errorf("%s: node %q has op type %s, which restoring and predicting do not need; %w", file, n.Name, n.Op, ErrUntrustedGraph)
		}
		byName[n.Name] = n
	}
	funcs := map[string][]*nodepb.NodeDef{}
	for _, f := range gd.GetLibrary().GetFunction() {
		name := f.GetSignature().GetName()
		for _, n := range f.NodeDef {
			if !allowed(n.Op) {
				return fmt.Errorf("%s: node %q of function %s has op type %s, which feature extractors do not need; %w", file, n.Name, name, n.Op, ErrUntrustedGraph)
			}
		}
		funcs[name] = f.NodeDef
	}
	if err := checkCalls(gd, funcs, file); err != nil {
		return err
	}
	called := map[string]bool{}
	var calls func(n *nodepb.NodeDef) error
	calls = func(n *nodepb.NodeDef) error {
		for _, f := range CalledFunctions(n.Attr) {
			if called[f] {
				continue
			}
			called[f] = true
			for _, fn := range funcs[f] {
				if fileWritingOps[fn.Op] {
					return fmt.Errorf("%s: restoring or predicting would run %q (%s) in function %s, which writes files: %w", file, fn.Name, fn.Op, f, ErrUntrustedGraph)
				}
				if err := calls(fn); err != nil {
					return err
				}
			}
		}
		return nil
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
		if err := calls(n); err != nil {
			return err
		}
		for _, in := range n.Input {
			stack = append(stack, NodeName(in))
		}
	}
	return nil
}

// checkCalls refuses a node or function node that calls a function the
// library does not define (TensorFlow would resolve it elsewhere).
func checkCalls(gd *graphpb.GraphDef, funcs map[string][]*nodepb.NodeDef, file string) error {
	check := func(n *nodepb.NodeDef) error {
		for _, f := range CalledFunctions(n.Attr) {
			if _, ok := funcs[f]; !ok {
				return fmt.Errorf("%s: node %q calls %s, which the graph does not define: %w", file, n.Name, f, ErrUntrustedGraph)
			}
		}
		return nil
	}
	for _, n := range gd.Node {
		if err := check(n); err != nil {
			return err
		}
	}
	for _, nodes := range funcs {
		for _, n := range nodes {
			if err := check(n); err != nil {
				return err
			}
		}
	}
	return nil
}
