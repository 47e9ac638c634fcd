package tfgraph

import "testing"

// The training graph must let TensorFlow fuse each convolution and MatMul
// with its bias add: the gradients read neither their outputs' shapes nor
// their outputs, so the bias AddV2 is each one's only consumer.
func TestGradientsLeaveContractionsFusable(t *testing.T) {
	if n := fusableContractions(t, BuildOptions{Seed: 1}); n != 5 { // three convolutions, two fully connected layers
		t.Errorf("%d contractions feed only their bias add, want 5", n)
	}
	if n := fusableContractions(t, BuildOptions{Seed: 1, UnfusedGradients: true}); n != 0 {
		t.Errorf("with UnfusedGradients, %d contractions feed only their bias add, want 0", n)
	}
}

// fusableContractions counts the convolutions and MatMuls of the forward
// graph whose only consumer is their bias add.
func fusableContractions(t *testing.T, opt BuildOptions) int {
	m := mustBuild(t, Tutorial(2), opt)
	n := 0
	for _, o := range m.Graph.Operations() {
		if o.Type() != "Conv2D" && o.Type() != "MatMul" {
			continue
		}
		cons := o.Output(0).Consumers()
		if len(cons) == 1 && cons[0].Op.Type() == "AddV2" {
			n++
			continue
		}
		// Only the gradients' own MatMuls and convolutions may differ.
		if cons[0].Op.Type() == "AddV2" && !opt.UnfusedGradients {
			var names []string
			for _, c := range cons {
				names = append(names, c.Op.Name()+" ("+c.Op.Type()+")")
			}
			t.Errorf("%s feeds %v: the bias add is not its only consumer", o.Name(), names)
		}
	}
	return n
}
