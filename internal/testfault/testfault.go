// Package testfault commits, for the numerics tests, the one deliberate error
// that needs TensorFlow: a checkpoint with one variable from the wrong
// training step (TFCAT_TEST_FAULT=step; internal/testenv has the others and
// says why they exist). Tests only.
package testfault

import (
	"fmt"
	"path/filepath"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfsession"
)

// Checkpoint returns the checkpoint tfcat's side of a comparison should use:
// prefix itself, or, under TFCAT_TEST_FAULT=step, a copy in dir in which the
// first trainable variable holds its value after one more Adam step on x
// (n images, labelled class 0) and every other variable its saved value.
func Checkpoint(prefix, dir string, x []float32, n int) (string, error) {
	if testenv.Fault() != testenv.FaultStep {
		return prefix, nil
	}
	s, mi, err := tfsession.Resume(prefix, tfsession.SessionConfig{Device: tfsession.DeviceCPU}, 0)
	if err != nil {
		return "", fmt.Errorf("testfault: %w", err)
	}
	defer s.Close()
	saved, err := s.VariableValues()
	if err != nil {
		return "", fmt.Errorf("testfault: %w", err)
	}
	var name string
	for _, v := range s.Model.Vars {
		if v.Trainable {
			name = v.Name
			break
		}
	}
	classes := s.Model.Net.Classes
	b := &pixels.Batch{X: x, Y: make([]float32, n*classes), Labels: make([]int, n), N: n}
	for i := range n {
		b.Y[i*classes] = 1
	}
	if _, err := s.Step(b); err != nil {
		return "", fmt.Errorf("testfault: %w", err)
	}
	delete(saved, name)
	if err := s.SetVariables(saved); err != nil {
		return "", fmt.Errorf("testfault: %w", err)
	}
	out, err := s.Save(tfsession.SaveOptions{Dir: filepath.Join(dir, "step-fault")}, mi.Info)
	if err != nil {
		return "", fmt.Errorf("testfault: %w", err)
	}
	return out, nil
}
