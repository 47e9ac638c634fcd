package network

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
)

// NetworkFromGraph infers the tutorial-style network of a graph from its
// variables Variable, Variable_1, ... (weights then bias, layer by layer) and
// its input placeholder x. Hyper-parameters are the tutorial's.
func NetworkFromGraph(gd *graphpb.GraphDef) (Network, error) {
	shapes := map[int][]int64{}
	var inShape []int64
	for _, n := range gd.Node {
		if n.Name == InputName && n.Op == "Placeholder" {
			for _, d := range n.Attr["shape"].GetShape().GetDim() {
				inShape = append(inShape, d.Size)
			}
		}
	}
	for _, v := range checkpoint.GraphDefVariables(gd, nil) {
		idx := -1
		if v.Name == "Variable" {
			idx = 0
		} else if rest, ok := strings.CutPrefix(v.Name, "Variable_"); ok {
			if i, err := strconv.Atoi(rest); err == nil && i > 0 {
				idx = i
			}
		}
		if idx >= 0 {
			shapes[idx] = v.Shape
		}
	}
	if len(inShape) != 4 {
		return Network{}, fmt.Errorf("no input placeholder %q of rank 4", InputName)
	}
	idx := make([]int, 0, len(shapes))
	for i := range shapes {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for i, v := range idx {
		if i != v {
			return Network{}, fmt.Errorf("variables are not numbered Variable, Variable_1, ... (missing Variable_%d)", i)
		}
	}
	if len(idx) < 6 || len(idx)%2 != 0 {
		return Network{}, fmt.Errorf("%d variables: not the tutorial's layout of weight and bias pairs", len(idx))
	}
	net := Tutorial(2).WithInput(int(inShape[1]), int(inShape[2]), int(inShape[3]))
	net.Conv = nil
	nconv := len(idx)/2 - 2
	for l := range nconv {
		w := shapes[2*l]
		if len(w) != 4 || w[0] != w[1] {
			return Network{}, fmt.Errorf("Variable_%d has shape %v; want a square conv filter", 2*l, w)
		}
		net.Conv = append(net.Conv, ConvLayer{Size: int(w[0]), Filters: int(w[3])})
	}
	fc1, fc2 := shapes[2*nconv], shapes[2*nconv+2]
	if len(fc1) != 2 || len(fc2) != 2 {
		return Network{}, fmt.Errorf("fully connected weights have shapes %v and %v; want matrices", fc1, fc2)
	}
	net.FC, net.Classes = int(fc1[1]), int(fc2[1])
	if err := net.Validate(); err != nil {
		return Network{}, err
	}
	got := net.VariableShapes()
	for i, s := range got {
		if fmt.Sprint(s) != fmt.Sprint(shapes[i]) {
			return Network{}, fmt.Errorf("Variable_%d has shape %v; the inferred network needs %v", i, shapes[i], s)
		}
	}
	return net, nil
}
