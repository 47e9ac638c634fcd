package tfgraph

import (
	"bytes"
	"fmt"
	"testing"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/network"
)

// TestReplicationPlacement: variables go to the parameter servers
// round-robin in creation order, each Adam slot with its variable, the beta
// powers with the first, as TF1's replica_device_setter places them; the
// single-process graph places nothing.
func TestReplicationPlacement(t *testing.T) {
	net := small(2)
	for _, tc := range []struct {
		rep  *Replication
		want func(name string, i int) string
	}{
		{nil, func(string, int) string { return "" }},
		{&Replication{PSTasks: 2, Replicas: 3, PSJob: "ps"}, func(_ string, i int) string { return fmt.Sprintf("/job:ps/task:%d", i%2) }},
		// A replica with a GPU: its compute there, the variables on the ps.
		{&Replication{PSTasks: 3, Replicas: 2, PSJob: "ps", Compute: "/job:worker/task:1/device:GPU:0"}, func(_ string, i int) string { return fmt.Sprintf("/job:ps/task:%d", i%3) }},
	} {
		m, err := Build(net, BuildOptions{Seed: 1, Replication: tc.rep})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := m.Graph.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		var gd graphpb.GraphDef
		if err := proto.Unmarshal(buf.Bytes(), &gd); err != nil {
			t.Fatal(err)
		}
		device := map[string]string{}
		for _, n := range gd.Node {
			device[n.Name] = n.Device
		}
		for i := range net.VariableShapes() {
			v := network.VariableName(i)
			want := tc.want(v, i)
			for _, name := range []string{v, v + adamMSuffix, v + adamVSuffix, network.TrainOpName + "/update_" + v + "/ApplyAdam"} {
				if got := device[name]; got != want {
					t.Errorf("replication %v: %s on %q, want %q", tc.rep, name, got, want)
				}
			}
		}
		for _, name := range []string{network.Beta1PowerName, network.Beta2PowerName} {
			if got, want := device[name], tc.want(network.VariableName(0), 0); got != want {
				t.Errorf("replication %v: %s on %q, want %q", tc.rep, name, got, want)
			}
		}
		if tc.rep != nil && tc.rep.Compute != "" {
			for _, name := range []string{network.PredictionName, network.CostName, "conv1/Conv2D"} {
				if device[name] != tc.rep.Compute {
					t.Errorf("%s on %q, want the compute device %q", name, device[name], tc.rep.Compute)
				}
			}
		}
		if (m.Sync != nil) != (tc.rep != nil) {
			t.Errorf("replication %v: sync ops %v", tc.rep, m.Sync)
		}
		if tc.rep != nil && len(m.Sync.Next) != tc.rep.Replicas {
			t.Errorf("%d token queues for %d replicas", len(m.Sync.Next), tc.rep.Replicas)
		}
	}
}
