package tfsession

import (
	"math/rand/v2"
	"testing"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

func TestProfileStep(t *testing.T) {
	net := small(2)
	s := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	b := randomBatch(rand.New(rand.NewPCG(1, 1)), net, 8)
	before, err := s.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.ProfileStep(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Wall <= 0 || p.OpTime <= 0 || len(p.Ops) < 10 {
		t.Fatalf("profile %+v: want a positive wall and op time and the step's many op types", p)
	}
	var sum float64
	types := map[string]bool{}
	for i, o := range p.Ops {
		sum += o.Share
		types[o.Type] = true
		if o.Count < 1 || (i > 0 && o.Time > p.Ops[i-1].Time) {
			t.Errorf("op %d %+v: want a count and the largest time first", i, o)
		}
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("shares sum to %v, want 1", sum)
	}
	// The step ran the convolution's forward and backward passes and Adam,
	// whichever kernels TensorFlow chose for them.
	for _, want := range [][]string{{"Conv2D", "_MklConv2D", "_MklNativeConv2D", "_MklNativeConv2DWithBias", "_FusedConv2D", "_MklNativeFusedConv2D"},
		{"Conv2DBackpropFilter", "_MklConv2DBackpropFilter", "_MklNativeConv2DBackpropFilter", "_MklNativeConv2DBackpropFilterWithBias"},
		{"ApplyAdam", "ResourceApplyAdam", "_MklApplyAdam"}} {
		found := false
		for _, w := range want {
			found = found || types[w]
		}
		if !found {
			t.Errorf("no op of %v in the profile's types %v", want, types)
		}
	}
	// It trained: the variables moved, like a Step's.
	after, err := s.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	if w0, w1 := before[network.VariableName(0)], after[network.VariableName(0)]; len(w0) == 0 || w0[0] == w1[0] {
		t.Errorf("the conv weights did not change (%d values)", len(w0))
	}

	var m StepProfile
	m.Merge(p)
	m.Merge(p)
	m.Scale(2)
	if m.OpTime != p.OpTime || len(m.Ops) != len(p.Ops) || m.Ops[0].Count != p.Ops[0].Count {
		t.Errorf("merging a profile with itself and halving: %+v, want %+v", m, p)
	}
	s.Close()
	if _, err := s.ProfileStep(b); err == nil {
		t.Error("profiling on a closed session: no error")
	}
}

func TestOpType(t *testing.T) {
	for label, want := range map[string]string{
		"layer_conv1/Conv2D = Conv2D(x, layer_conv1/weights)": "Conv2D",
		"Adam/update = _MklApplyAdam(a, b)":                   "_MklApplyAdam",
		"no label":                                            "",
	} {
		if got := opType(label); got != want {
			t.Errorf("opType(%q) = %q, want %q", label, got, want)
		}
	}
}
