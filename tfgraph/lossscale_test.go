package tfgraph

import (
	"testing"

	"github.com/tfcat/tfcat/network"
)

// smallNet is the tutorial's layout at 16×16×3, quick to step.
func smallNet() network.Network {
	n := network.Tutorial(2)
	n.Height, n.Width = 16, 16
	return n
}

// TestLossScaleOnCluster: replicated, the loss scale and its count of good
// steps live on the first parameter server (every replica reads S, the
// chief updates it), and the overflow check reads the replicas' mean
// gradients, not this replica's (tfsession's TestSyncLossScaling runs it).
func TestLossScaleOnCluster(t *testing.T) {
	m, err := Build(smallNet(), BuildOptions{LossScale: true, Replication: &Replication{PSTasks: 2, Replicas: 2, PSJob: "ps"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.LossScaling == nil {
		t.Fatal("no loss scaling")
	}
	for _, v := range []*Variable{m.LossScaling.Scale, m.LossScaling.Good} {
		if d := v.Ref.Op.Device(); d != "/job:ps/task:0" {
			t.Errorf("%s on %q, want the first parameter server", v.Name, d)
		}
	}
	// The first weight's Switch passes its unscaled mean: taken from its accumulator.
	sw := m.Graph.Operation(lossScaleName + "/apply_" + network.VariableName(0))
	if sw == nil {
		t.Fatal("no Switch for the first weight")
	}
	var typ string
	for _, o := range m.Graph.Operations() {
		for i := range o.NumOutputs() {
			for _, c := range o.Output(i).Consumers() {
				if c.Op.Name() == sw.Name() && c.Index == 0 {
					typ = o.Type()
				}
			}
		}
	}
	if typ != "ResourceAccumulatorTakeGradient" {
		t.Errorf("the overflow check reads a %q, want the accumulated mean", typ)
	}
}
