package checkpoint

// backboneGradOps are the gradient ops of backboneOps, which a fine-tuned
// backbone's training graph holds (tfgraph.FineTune): arithmetic only, like
// the tutorial's own gradients.
var backboneGradOps = setOf(
	"Relu6Grad", "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter",
	"FusedBatchNormGrad", "FusedBatchNormGradV3", "EluGrad", "SeluGrad", "LeakyReluGrad", "SoftplusGrad",
	"SigmoidGrad", "TanhGrad", "AvgPoolGrad", "MirrorPadGrad", "InvertPermutation", "ResizeBilinearGrad",
	"ResizeNearestNeighborGrad", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "ZerosLike",
)

// allowed says whether a graph checked by CheckGraph may hold op.
func allowed(op string) bool { return allowedOps[op] || backboneOps[op] || backboneGradOps[op] }
