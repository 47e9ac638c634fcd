package tfgraph

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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

// BenchmarkGradients measures what each change to the C API's gradients
// does to the tutorial's training step (batch 32, 128×128×3, TensorFlow's
// default threads): as the C API builds them, with the contractions fusable
// (fusable), and with the bias gradients as GEMVs too (biasGradients, the
// default). The three sessions take turns in blocks of steps, so that drift
// on a shared machine falls on all alike; it reports ms per step and the
// ratio of each to the C API's:
//
//	go test -run '^$' -bench Gradients -benchtime 10x ./tfgraph/
func BenchmarkGradients(b *testing.B) {
	variants := []struct {
		name string
		opt  BuildOptions
	}{
		{"capi", BuildOptions{Seed: 1, UnfusedGradients: true}},
		{"fusable", BuildOptions{Seed: 1, sumBiasGradients: true}},
		{"default", BuildOptions{Seed: 1}},
	}
	var names []string
	var sessions []*Session
	for _, v := range variants {
		s, err := NewSession(mustBuild(b, network.Tutorial(2), v.opt), SessionConfig{Device: DeviceCPU})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		names, sessions = append(names, v.name), append(sessions, s)
	}
	alternateSteps(b, names, sessions)
}

// alternateSteps runs the tutorial's training step on each session in turn,
// in blocks of steps, and reports ms per step and each session's wall time
// as a ratio of the first's.
func alternateSteps(b *testing.B, names []string, sessions []*Session) {
	const blockSteps = 5
	for _, s := range sessions {
		if err := s.Init(); err != nil {
			b.Fatal(err)
		}
	}
	batch := randomBatch(rand.New(rand.NewPCG(1, 2)), network.Tutorial(2), 32)
	wall := make([]time.Duration, len(sessions))
	round := func() {
		for i, s := range sessions {
			t0 := time.Now()
			for range blockSteps {
				if _, err := s.Step(batch); err != nil {
					b.Fatal(err)
				}
			}
			wall[i] += time.Since(t0)
		}
	}
	round() // warm up: the first steps optimise the graph
	clear(wall)
	b.ResetTimer()
	for range b.N {
		round()
	}
	for i, name := range names {
		b.ReportMetric(wall[i].Seconds()*1e3/float64(b.N*blockSteps), name+"-ms/step")
		if i > 0 {
			b.ReportMetric(wall[i].Seconds()/wall[0].Seconds(), name+"/"+names[0])
		}
	}
}
