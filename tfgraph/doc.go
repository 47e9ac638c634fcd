// Package tfgraph builds, trains, saves and loads the TensorFlow tutorial's
// image classifier through the TensorFlow C API, file-compatible with the
// Python tutorial both ways.
//
// Build makes the tutorial's graph in Go (three conv layers, fc 128, softmax
// y_pred, TF1 Adam, the Saver's nodes) under the node names Python's graph
// uses (names.go); a Session runs it: Init, Step and Evaluate on
// pixels.Batch values, Predict, Save (the tutorial's .meta, .index, .data and
// checkpoint files, crash-safe), RestoreVariables. ImportCheckpoint loads any
// checkpoint, tfcat's or Python's, as predict.py does, after CheckGraph has
// refused graphs that could do more than restore and predict; Resume
// continues training one. Every loaded model is a Classifier.
//
// Most programs use the packages built on this one: trainer to train, model
// to open and predict, savedmodel to export, serving to serve.
package tfgraph
