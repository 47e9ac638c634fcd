package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
)

// loadSavedModel opens path when it is a SavedModel folder; ok is false when it
// is not one.
func loadSavedModel(c *cli.Context, path string, cfg tfgraph.SessionConfig) (lm *loadedModel, ok bool, err error) {
	if !savedmodel.IsSavedModel(path) {
		return nil, false, nil
	}
	m, err := savedmodel.LoadWithOptions(path, savedmodel.LoadOptions{Session: cfg, Trust: c.Bool("trust-graph")})
	if err != nil {
		return nil, true, err
	}
	return &loadedModel{Classifier: m, Path: path, Classes: m.Classes(), Variables: m.Variables}, true, nil
}

// inspectSavedModel describes path when it is a SavedModel folder; ok is false
// when it is not one.
func inspectSavedModel(path string) (in *inspection, ok bool, err error) {
	if !savedmodel.IsSavedModel(path) {
		return nil, false, nil
	}
	info, err := savedmodel.Inspect(path)
	if err != nil {
		return nil, true, err
	}
	in = &inspection{Checkpoint: path, WrittenBy: "a SavedModel (signatures " + strings.Join(info.Signatures, ", ") + ")",
		TensorFlowVersion: info.TensorFlowVersion, InputSize: []int{info.Height, info.Width, info.Channels},
		Classes: info.Classes, Steps: info.Step, StepsKnown: info.Tfcat}
	if info.Tfcat {
		in.WrittenBy = "tfcat export (SavedModel, signatures " + strings.Join(info.Signatures, ", ") + ")"
	}
	for _, v := range info.Variables {
		in.Variables = append(in.Variables, variableInfo{Name: v.Name, Shape: v.Shape, Trainable: true})
		n := int64(1)
		for _, d := range v.Shape {
			n *= d
		}
		in.Parameters += n
	}
	return in, true, nil
}
