package main

import "github.com/tfcat/tfcat/tfgraph"

// loadSavedModel opens path when it is a SavedModel folder; ok is false when it
// is not one.
func loadSavedModel(path string, cfg tfgraph.SessionConfig) (lm *loadedModel, ok bool, err error) {
	return nil, false, nil
}

// inspectSavedModel describes path when it is a SavedModel folder; ok is false
// when it is not one.
func inspectSavedModel(path string) (in *inspection, ok bool, err error) {
	return nil, false, nil
}
