package backbone

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// Layers returns the backbone's trainable variables from its input
// to its output (by where each joins the data path of its inlined graph:
// readRanks), and its layers in that order. base.Variables
// names them; without it (a TF1 backbone) each variable is its own layer.
func Layers(base *network.Base, bb *Backbone) ([]network.BaseVariable, []string, error) {
	gd, err := InlineFunctions(bb.Graph)
	if err != nil {
		return nil, nil, fmt.Errorf("the backbone's graph: %w", err)
	}
	in, _, err := checkpoint.ParseTensorName(bb.Input)
	if err != nil {
		return nil, nil, fmt.Errorf("the backbone's input: %w", err)
	}
	rank := readRanks(gd, in)
	vars := base.Variables
	if len(vars) == 0 {
		for _, n := range gd.Node {
			if isVariable(n.Op) {
				vars = append(vars, network.BaseVariable{Node: n.Name, Name: n.Name, Trainable: true})
			}
		}
	}
	var out []network.BaseVariable
	for _, v := range vars {
		if _, ok := rank[v.Node]; ok && v.Trainable {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b network.BaseVariable) int { return rank[a.Node] - rank[b.Node] })
	var layers []string
	for _, v := range out {
		if l := v.Layer(); !slices.Contains(layers, l) {
			layers = append(layers, l)
		}
	}
	return out, layers, nil
}

// readRanks maps each variable node of gd to how far from the image input
// (node in) its value joins the data path: the least depth, counted from
// the input, of the nodes the input reaches that its reads reach first (a
// kernel's convolution; a batch norm's gamma through the scale it makes).
func readRanks(gd *graphpb.GraphDef, in string) map[string]int {
	idx := map[string]int{}
	for i, n := range gd.Node {
		idx[n.Name] = i
	}
	pending := make([]int, len(gd.Node))
	users := make([][]int, len(gd.Node))
	for i, n := range gd.Node {
		for _, s := range n.Input {
			if j, ok := idx[checkpoint.NodeName(s)]; ok {
				pending[i]++
				users[j] = append(users[j], i)
			}
		}
	}
	var order, queue []int
	for i, p := range pending {
		if p == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		order = append(order, i)
		for _, u := range users[i] {
			if pending[u]--; pending[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	// depth: the longest path from the input; -1 where it does not reach.
	depth := make([]int, len(gd.Node))
	for i := range depth {
		depth[i] = -1
	}
	if j, ok := idx[in]; ok {
		depth[j] = 0
	}
	for _, i := range order {
		for _, s := range gd.Node[i].Input {
			if j, ok := idx[checkpoint.NodeName(s)]; ok && depth[j] >= 0 && !strings.HasPrefix(s, "^") {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
	}
	rank := map[string]int{}
	for i, n := range gd.Node {
		if !isVariable(n.Op) {
			continue
		}
		best := -1
		seen := map[int]bool{i: true}
		stack := []int{i}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, u := range users[k] {
				switch {
				case seen[u]:
				case depth[u] >= 0:
					if best < 0 || depth[u] < best {
						best = depth[u]
					}
				default:
					seen[u] = true
					stack = append(stack, u)
				}
			}
		}
		if best >= 0 {
			rank[n.Name] = best
		}
	}
	return rank
}

// FineTuneError is FineTuneVars's refusal of a --fine-tune value: the
// backbone has no such layer, or fewer trainable variables.
type FineTuneError struct {
	Spec   string
	Reason string
	Layers []string // the backbone's layers, input to output
}

func (e *FineTuneError) Error() string {
	return fmt.Sprintf("fine-tune %s %s", e.Spec, e.Why())
}

// Why is the reason, with the backbone's layers where they help.
func (e *FineTuneError) Why() string {
	if len(e.Layers) > 0 {
		return fmt.Sprintf("%s; its %d layers, input to output: %s", e.Reason, len(e.Layers), strings.Join(e.Layers, " "))
	}
	return e.Reason
}

// FineTuneVars picks the backbone variables spec names: "all" its
// trainable variables, N the top N of them (nearest the output), a layer
// name that layer and every one above it.
func FineTuneVars(base *network.Base, bb *Backbone, spec string) ([]string, error) {
	vars, layers, err := Layers(base, bb)
	if err != nil {
		return nil, err
	}
	if len(vars) == 0 {
		return nil, &FineTuneError{Spec: spec, Reason: "finds no trainable variable: the backbone is a frozen graph"}
	}
	pick := func(vs []network.BaseVariable) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Node
		}
		return out
	}
	if spec == "all" {
		return pick(vars), nil
	}
	if n, err := strconv.Atoi(spec); err == nil {
		if n <= 0 || n > len(vars) {
			return nil, &FineTuneError{Spec: spec, Reason: fmt.Sprintf("must lie in 1..%d, the backbone's trainable variables", len(vars))}
		}
		return pick(vars[len(vars)-n:]), nil
	}
	for i, v := range vars {
		if v.Layer() == spec {
			return pick(vars[i:]), nil
		}
	}
	return nil, &FineTuneError{Spec: spec, Reason: "names no layer of the backbone (all, a count, or a layer's name)", Layers: layers}
}
