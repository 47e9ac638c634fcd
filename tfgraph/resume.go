package tfgraph

import (
	"fmt"
	"math"
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

// stepFromBeta1Power recovers the step count from Adam's beta1 accumulator,
// which is β₁^(t+1) after t steps: Python's tutorial saves no global step.
func stepFromBeta1Power(b1p float32, beta1 float64) int {
	if b1p <= 0 || b1p >= 1 || beta1 <= 0 || beta1 >= 1 {
		return 0
	}
	return max(int(math.Round(math.Log(float64(b1p))/math.Log(beta1)))-1, 0)
}

// Resume opens a training session on the checkpoint at prefix, written by tfcat
// or by the Python tutorial: the network comes from tfcat's record in the .meta
// or is inferred from the variables, every variable (Adam's slots and beta
// powers included) is restored, and the step count is tfcat's record or, for
// Python's checkpoints, recovered from beta1_power.
func Resume(prefix string, c SessionConfig, lr float64) (*Session, MetaInfo, error) {
	return ResumeWithOptions(prefix, c, lr, BuildOptions{})
}

// ResumeWithOptions is Resume building the graph with opt (its Seed
// matters only to variables the checkpoint lacks, which are none).
func ResumeWithOptions(prefix string, c SessionConfig, lr float64, opt BuildOptions) (*Session, MetaInfo, error) {
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return nil, MetaInfo{}, err
	}
	mi := InfoFromMeta(meta)
	var net Network
	if mi.Network != nil {
		net = *mi.Network
	} else if net, err = NetworkFromGraph(meta.GraphDef); err != nil {
		return nil, mi, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
	}
	if lr > 0 {
		net.LearningRate = lr
	}
	if net.Base != nil && opt.Base == nil {
		if opt.Base, err = BackboneFromGraph(meta.GraphDef, net.Base); err != nil {
			return nil, mi, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
		}
	}
	m, err := Build(net, opt)
	if err != nil {
		return nil, mi, err
	}
	s, err := NewSession(m, c)
	if err != nil {
		return nil, mi, err
	}
	restore := s.RestoreVariables
	if len(m.TuneVars) > 0 && !m.hasFineTuneState(meta.GraphDef) {
		restore = s.StartFineTune // a frozen head's checkpoint: fine-tuning starts
	}
	if err := restore(prefix); err != nil {
		s.Close()
		return nil, mi, err
	}
	if !mi.Tfcat {
		b, err := s.VariableValues(Beta1PowerName)
		if err != nil {
			s.Close()
			return nil, mi, err
		}
		mi.Step = stepFromBeta1Power(b[Beta1PowerName][0], net.Beta1)
	}
	return s, mi, nil
}
