package tfgraph

import (
	"strings"
	"testing"

	"github.com/tfcat/tfcat/network"
)

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
	m := mustBuild(t, network.Tutorial(2), opt)
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

// Each bias's gradient is one GEMV (see biasGradients) by default, and the
// C API's Sum with UnfusedGradients.
func TestBiasGradientsAreGEMVs(t *testing.T) {
	for _, tc := range []struct {
		opt  BuildOptions
		want int
	}{{BuildOptions{Seed: 1}, 5}, {BuildOptions{Seed: 1, UnfusedGradients: true}, 0}} {
		m := mustBuild(t, network.Tutorial(2), tc.opt)
		n := 0
		for i, v := range m.Vars[:len(m.Grads)] {
			g := m.Grads[i].Op
			if len(v.Shape) != 1 || g.Type() != "Reshape" {
				continue
			}
			if mm := m.Graph.Operation(strings.TrimSuffix(g.Name(), "sum") + "MatMul"); strings.HasSuffix(g.Name(), "/sum") && mm != nil && mm.Type() == "MatMul" {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("UnfusedGradients %v: %d bias gradients are GEMVs, want %d", tc.opt.UnfusedGradients, n, tc.want)
		}
	}
}
