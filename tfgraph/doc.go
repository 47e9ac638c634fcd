// Package tfgraph builds the TensorFlow tutorial's image classifier as a
// graph through the TensorFlow C API, node for node as the Python tutorial
// builds it, so that checkpoints and predict.py-style lookups work both ways.
//
// Build makes a network.Network's graph in Go (three conv layers, fc 128,
// softmax y_pred, TF1 Adam, the Saver's nodes, under the names in package
// network) and returns a Model: the graph and the handles a session runs —
// placeholders, the train op, the variables, the Saver's sub-graph, the
// replication nodes (Replication, for a cluster), loss scaling, and a
// pretrained backbone imported under BasePrefix (BuildOptions.Base, with
// fine-tuning and its frozen cut). MetaGraphDef is the Model as the .meta
// Python's Saver writes.
//
// tfgraph only builds: package tfsession runs a Model (train, evaluate,
// save, restore, predict). The split follows the code: a session reads the
// Model's handles, and building reads nothing of a session, so tfsession
// imports tfgraph and never the other way. What describes a network without
// TensorFlow (Network, the node names, what a .meta records) is package
// network; what a backbone is (reading a SavedModel as one, its layers,
// the variables to fine-tune, its batch norms) is package backbone, which
// tfgraph builds into the graph.
package tfgraph
