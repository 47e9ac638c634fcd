package network

import (
	"errors"
	"fmt"
	"strings"
)

// Base records the pretrained backbone a network's head sits on
// (Network.Base): where its features come from and how tfcat's input — BGR
// (or grey), scaled by 1/255 — becomes the backbone's input. The backbone's
// graph and weights travel in the checkpoint itself (its .meta and variables),
// so a trained model does not depend on Source still existing.
type Base struct {
	// Source is the SavedModel folder the backbone was read from; it is only
	// a record.
	Source string `json:",omitempty"`
	// Input and Output are the backbone's image input and feature output,
	// tensor names in its own graph (without tfgraph.BasePrefix).
	Input, Output string
	// Features is the width of the feature output, [batch, Features].
	Features int
	// RGB is set when the backbone takes RGB: tfcat's BGR channels are then
	// reversed in the graph.
	RGB bool `json:",omitempty"`
	// Mean and Std map a pixel p in 0..255 (in the backbone's channel order)
	// to (p − Mean)/Std: one value for every channel, or one per channel.
	// Keras's MobileNetV2 takes [-1, 1] (Mean 127.5, Std 127.5); tfcat's own
	// models take [0, 1] (Mean 0, Std 255).
	Mean, Std []float64
	// Variables names the backbone's variables (from its SavedModel's
	// object graph) for fine-tuning (backbone.FineTuneVars).
	Variables []BaseVariable `json:",omitempty"`
}

// BaseVariable is one of a backbone's variables: its node in the backbone's
// graph and its own name, "LAYER/ROLE" ("block_16_project/kernel") in a
// Keras model, with whether the model trains it (a batch norm's moving
// statistics it does not).
type BaseVariable struct {
	Node      string
	Name      string
	Trainable bool `json:",omitempty"`
}

// Layer is the layer part of the variable's name ("block_16_project").
func (v BaseVariable) Layer() string {
	if i := strings.LastIndex(v.Name, "/"); i > 0 {
		return v.Name[:i]
	}
	return v.Name
}

// Validate reports the first thing wrong with b for an input of channels.
func (b *Base) Validate(channels int) error {
	switch {
	case b.Input == "" || b.Output == "":
		return errors.New("base: no input or output tensor")
	case b.Features <= 0:
		return fmt.Errorf("base: %d features; must be positive", b.Features)
	case b.RGB && channels != 3:
		return fmt.Errorf("base: RGB needs 3 channels, not %d", channels)
	case len(b.Mean) != 1 && len(b.Mean) != channels, len(b.Std) != 1 && len(b.Std) != channels:
		return fmt.Errorf("base: mean %v and std %v need 1 or %d values", b.Mean, b.Std, channels)
	}
	for _, s := range b.Std {
		if !(s > 0) {
			return fmt.Errorf("base: std %v must be positive", b.Std)
		}
	}
	return nil
}
