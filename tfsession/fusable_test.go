package tfsession

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// BenchmarkGradients measures what each change to the C API's gradients
// does to the tutorial's training step (batch 32, 128×128×3, TensorFlow's
// default threads): as the C API builds them, with the contractions fusable
// (fusable), and with the bias gradients as GEMVs too (biasGradients, the
// default). The three sessions take turns in blocks of steps, so that drift
// on a shared machine falls on all alike; it reports ms per step and the
// ratio of each to the C API's:
//
//	go test -run '^$' -bench Gradients -benchtime 10x ./tfsession/
func BenchmarkGradients(b *testing.B) {
	variants := []struct {
		name string
		opt  tfgraph.BuildOptions
	}{
		{"capi", tfgraph.BuildOptions{Seed: 1, UnfusedGradients: true}},
		{"fusable", tfgraph.BuildOptions{Seed: 1, SumBiasGradients: true}},
		{"default", tfgraph.BuildOptions{Seed: 1}},
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
