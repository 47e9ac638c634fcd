package network

import "fmt"

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
)

// VariableName is the name TF1 gives the i-th unnamed tf.Variable: "Variable",
// "Variable_1", "Variable_2", ...
func VariableName(i int) string {
	if i == 0 {
		return "Variable"
	}
	return fmt.Sprintf("Variable_%d", i)
}
