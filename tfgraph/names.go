package tfgraph

// The tutorial graph's node names, which Python's predict.py and checkpoints
// rely on, are in package network (network.InputName, network.VariableName,
// ...); these are the ones only the builder uses.
const (
	// Op types tfcat adds by hand because graft has no wrapper for them.
	opVariableV2 = "VariableV2"
	opAssign     = "Assign"
	opApplyAdam  = "ApplyAdam"
)

// Suffixes of the nodes around each reference variable, as TF1 names them.
const (
	readSuffix    = "/read"
	assignSuffix  = "/Assign"
	adamMSuffix   = "/Adam"   // first-moment slot
	adamVSuffix   = "/Adam_1" // second-moment slot
	initialSuffix = "/Initializer/zeros"
)
