package tfgraph

import (
	"fmt"
	"strconv"
	"strings"
)

// The node names of the tutorial's graph. Python's predict.py and tfcat find the
// model's tensors by these names, and checkpoints key variables by them, so they
// live here and nowhere else.
const (
	// InputName is the image placeholder, float32 [batch, height, width, channels].
	InputName = "x"
	// LabelsName is the one-hot label placeholder, float32 [batch, classes].
	LabelsName = "y_true"
	// PredictionName is the softmax of the logits.
	PredictionName = "y_pred"
	// TrainOpName is the NoOp that runs one Adam step (Python's minimize()).
	TrainOpName = "Adam"
	// InitOpName initialises every variable (Python's global_variables_initializer).
	InitOpName = "init"
	// CostName is the mean softmax cross-entropy.
	CostName = "cost"
	// AccuracyName is the fraction of the batch whose argmax matches y_true's.
	AccuracyName = "accuracy"

	// Beta1PowerName and Beta2PowerName are Adam's non-slot accumulators.
	Beta1PowerName = "beta1_power"
	Beta2PowerName = "beta2_power"

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

// VariableName is the name TF1 gives the i-th unnamed tf.Variable: "Variable",
// "Variable_1", "Variable_2", ...
func VariableName(i int) string {
	if i == 0 {
		return "Variable"
	}
	return fmt.Sprintf("Variable_%d", i)
}

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
