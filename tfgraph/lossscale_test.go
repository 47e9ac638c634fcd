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

func TestLossScaleRefusedOnCluster(t *testing.T) {
	_, err := Build(smallNet(), BuildOptions{LossScale: true, Replication: &Replication{PSTasks: 1, Replicas: 2, PSJob: "ps"}})
	if err == nil {
		t.Fatal("loss scaling on a cluster was accepted")
	}
}
