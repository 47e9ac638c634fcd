package network

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/pixels"
)

// small is a quick network for tests: 8x8x1 input, one conv layer, fc 4.
func small(classes int) Network {
	n := Tutorial(classes).WithInput(8, 8, 1)
	n.Conv = []ConvLayer{{3, 2}}
	n.FC = 4
	n.LearningRate = 1e-2
	return n
}

func TestTutorialNetworkRecordUnchanged(t *testing.T) {
	b, err := json.Marshal(Tutorial(2))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"Height":128,"Width":128,"Channels":3,"Classes":2,"Conv":[{"Size":3,"Filters":32},{"Size":3,"Filters":32},{"Size":3,"Filters":64}],"FC":128,"LearningRate":0.0001,"Beta1":0.9,"Beta2":0.999,"Epsilon":1e-8,"WeightStddev":0.05,"BiasInit":0.05}`
	if string(b) != want {
		t.Errorf("the tutorial's network records as\n%s\nwant\n%s", b, want)
	}
	if !Tutorial(2).IsTutorial() {
		t.Error("Tutorial(2).IsTutorial() is false")
	}
}

func TestNetworkValidateLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Network)
		want   string // "" for valid
	}{
		{"dropout and batch norm", func(n *Network) { n.Dropout, n.BatchNorm, n.MoreFC = 0.5, true, []int{8} }, ""},
		{"negative dropout", func(n *Network) { n.Dropout = -0.1 }, "dropout -0.1"},
		{"dropout of one", func(n *Network) { n.Dropout = 1 }, "dropout 1"},
		{"empty fc layer", func(n *Network) { n.MoreFC = []int{4, 0} }, "fully connected layer 3 has 0 units"},
		{"no conv", func(n *Network) { n.Conv = nil }, "no conv layers"},
		{"resize mode", func(n *Network) { n.Resize = "squash" }, `resize mode "squash"`},
		{"pad", func(n *Network) { n.Resize = pixels.Pad }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := small(2)
			tc.change(&n)
			err := n.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
