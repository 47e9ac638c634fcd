// Package network describes a tfcat classifier without TensorFlow: the
// Network (the tutorial's layers, or a head on a pretrained Base, and Adam's
// hyper-parameters), its validation, variable shapes and FLOPs, the node
// names the tutorial's graph and Python's predict.py share (names.go), and
// what a tfcat checkpoint's .meta records beside the weights (Info,
// MetaInfo): tfcat's collections, written by Collections and read back by
// InfoFromMeta, and NetworkFromGraph, which infers the network of a graph
// from elsewhere (the Python tutorial's). It needs no cgo: a program that
// only reads or checks these records does not link TensorFlow.
//
// Package tfgraph builds a Network's graph; package tfsession runs it.
package network
