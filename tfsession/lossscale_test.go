package tfsession

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// smallNet is the tutorial's layout at 16×16×3, quick to step.
func smallNet() network.Network {
	n := network.Tutorial(2)
	n.Height, n.Width = 16, 16
	return n
}

// lossScaled builds net with loss scaling (growth after growth finite steps;
// 0: the default) and initialises it.
func lossScaled(t *testing.T, net network.Network, growth int) *Session {
	t.Helper()
	m := mustBuild(t, net, tfgraph.BuildOptions{Seed: 1, LossScale: true, LossScaleGrowth: growth})
	s := mustSession(t, m)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func allValues(t *testing.T, s *Session) map[string][]float32 {
	t.Helper()
	var names []string
	for _, v := range s.Model.Vars {
		names = append(names, v.Name)
	}
	vals, err := s.VariableValues(names...)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// In float32 a power-of-two scale changes no bit: 10 steps with loss scaling
// give every variable, slot and beta power exactly as without it. (Bound:
// exact. Scaling by 2^k and back is exact in binary floating point while no
// value overflows or goes subnormal; the cost's gradients here are within
// 2^-30..2^10 of 1, far from both.)
func TestLossScaleKeepsFloat32(t *testing.T) {
	net := smallNet()
	plain := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}))
	if err := plain.Init(); err != nil {
		t.Fatal(err)
	}
	scaled := lossScaled(t, net, 0)
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 10 {
		b := randomBatch(r, net, 8)
		lp, err := plain.Step(b)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := scaled.Step(b)
		if err != nil {
			t.Fatal(err)
		}
		if lp != ls {
			t.Fatalf("step %d: loss %v with loss scaling, %v without", i, ls, lp)
		}
	}
	want, got := allValues(t, plain), allValues(t, scaled)
	for name, w := range want {
		g := got[name]
		for j := range w {
			if math.Float32bits(w[j]) != math.Float32bits(g[j]) {
				t.Fatalf("%s[%d] = %v with loss scaling, %v without", name, j, g[j], w[j])
			}
		}
	}
	scale, good, ok, err := scaled.LossScale()
	if err != nil || !ok || scale != tfgraph.LossScaleInitial || good != 10 {
		t.Errorf("LossScale() = %v, %d, %v, %v; want %v, 10, true, nil", scale, good, ok, err, float32(tfgraph.LossScaleInitial))
	}
}

// A step whose gradients are not finite changes nothing but the scale, which
// halves; finite steps count up, and after the growth period the scale
// doubles.
func TestLossScaleSkipsOverflow(t *testing.T) {
	net := smallNet()
	s := lossScaled(t, net, 3)
	r := rand.New(rand.NewPCG(4, 4))
	expect := func(step string, scale float32, good int) {
		t.Helper()
		gs, gg, _, err := s.LossScale()
		if err != nil {
			t.Fatal(err)
		}
		if gs != scale || gg != good {
			t.Fatalf("after %s: scale %v, good steps %d; want %v, %d", step, gs, gg, scale, good)
		}
	}
	if _, err := s.Step(randomBatch(r, net, 8)); err != nil {
		t.Fatal(err)
	}
	expect("a finite step", tfgraph.LossScaleInitial, 1)

	before := allValues(t, s)
	bad := randomBatch(r, net, 8)
	bad.X[5] = float32(math.Inf(1)) // the forward pass, hence every gradient, turns NaN
	if _, err := s.Step(bad); err != nil {
		t.Fatalf("a step with non-finite gradients failed instead of being skipped: %v", err)
	}
	expect("a non-finite step", tfgraph.LossScaleInitial/2, 0)
	after := allValues(t, s)
	for name, w := range before {
		for j := range w {
			if math.Float32bits(w[j]) != math.Float32bits(after[name][j]) {
				t.Fatalf("the skipped step changed %s[%d]: %v -> %v", name, j, w[j], after[name][j])
			}
		}
	}

	for i := 1; i <= 2; i++ {
		if _, err := s.Step(randomBatch(r, net, 8)); err != nil {
			t.Fatal(err)
		}
		expect("finite steps", tfgraph.LossScaleInitial/2, i)
	}
	if _, err := s.Step(randomBatch(r, net, 8)); err != nil {
		t.Fatal(err)
	}
	expect("the growth period", tfgraph.LossScaleInitial, 0)
	changed := allValues(t, s)
	if math.Float32bits(changed[network.Beta1PowerName][0]) == math.Float32bits(after[network.Beta1PowerName][0]) {
		t.Error("finite steps after a skipped one did not step Adam")
	}
}
