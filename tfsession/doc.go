// Package tfsession runs the graphs package tfgraph builds: a Session trains
// a tfgraph.Model (Init, Step and Evaluate on pixels.Batch values,
// SetLearningRate, the replicas' Sync* steps on a cluster, a backbone's
// features cached per image), saves it (Save writes the tutorial's .meta,
// .index, .data and checkpoint files, crash-safe; a Snapshot writes one in
// the background) and restores it (RestoreVariables, Resume), and predicts
// with it. ImportCheckpoint loads any checkpoint, tfcat's or Python's, as
// predict.py does, after checkpoint.CheckGraph has refused graphs that could
// do more than restore and predict. Every loaded model is a Classifier,
// predicting through the one Predictor. SessionConfig chooses the device,
// threads, cluster target and precision; ProfileStep traces a step per op.
//
// It is the half of tfgraph's old job that holds TensorFlow sessions:
// tfgraph builds the graph and never runs it; tfsession reads the Model's
// handles and never adds to its graph (the checkpoint writer's own small
// graph aside). GraphSession runs a graph that is not a Model, such as
// tfgraph.NewPSWait's.
//
// Most programs use the packages built on this one: trainer to train, model
// to open and predict, savedmodel to export, serving to serve.
package tfsession
