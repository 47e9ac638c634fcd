// Package trainer trains tfcat's image classifiers from Go: the tutorial's
// train.py loop — class folders, a validation split, Adam, the tutorial's
// report and a checkpoint after the first step of every epoch — with what a
// long run needs: the next batch prepared while the current step runs, the
// whole validation split evaluated each epoch, early stopping, cancellation
// through a context (the last completed step is saved), resuming tfcat's or
// the Python tutorial's checkpoints, TensorBoard logs, and typed events.
//
//	res, err := trainer.Train(ctx, trainer.Options{Data: "training_data", Epochs: 5, ModelDir: "model"})
//
// With Options.Cluster (from TF_CONFIG, see package cluster) the same call
// trains on several machines over TensorFlow's gRPC runtime: parameter
// servers hold the variables, replicas compute slices of each global batch,
// and the chief applies their mean gradient once per step.
//
// At steady state a training step allocates nothing on the Go heap.
package trainer
