package tfgraph

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// Cut is where a fine-tuned model's frozen part ends: the tensors that
// nodes computed from the image alone (the preprocessing and the backbone
// below the first fine-tuned variable, with batch norm in inference mode)
// hand to the nodes a training step recomputes (the fine-tuned layers, the
// head, the gradients). An image's cut tensors are the same at every step,
// so a session can compute them once and feed them in place of the image:
// TensorFlow then prunes the frozen part from the step (FrozenCut).
type Cut struct {
	// Tensors are the cut, each float32 of shape [batch, Shapes[i]...]:
	// what a step is fed. Fetch are Identities of them, what computes them
	// (cutFetchScope).
	Tensors, Fetch []tf.Output
	Shapes         [][]int64
	// Values is the float32 values one image has over all Tensors.
	Values int
	// Frozen is the number of nodes the cut skips at every step, and Reads
	// the variable reads among them.
	Frozen, Reads int
}

// Bytes is the memory one image's cut takes.
func (c *Cut) Bytes() int64 { return 4 * int64(c.Values) }

// NoCutError says why a model has no frozen part to cache.
type NoCutError struct{ Reason string }

func (e *NoCutError) Error() string { return "no frozen part to cache: " + e.Reason }

// ErrNotFineTuned is FrozenCut's error for a model that fine-tunes no
// variable: its whole backbone is frozen, and its features are the cut.
var ErrNotFineTuned = errors.New("the model fine-tunes no backbone variable")

// readerOps consume a variable without writing it.
var readerOps = map[string]bool{"ReadVariableOp": true, "Identity": true, "VariableShape": true,
	"VarIsInitializedOp": true, "IsVariableInitialized": true}

// statefulFrozen are the stateful ops the frozen part may hold: a
// variable's handle and its reads (of variables no training op writes).
var statefulFrozen = map[string]bool{"VarHandleOp": true, opVariableV2: true, "ReadVariableOp": true, "Placeholder": true}

// FrozenCut finds the cut of a model built with BuildOptions.FineTune:
// the frozen part is every node that a training or evaluation step runs
// (the ancestors of Train, TrainCost, Cost and Accuracy) and that depends
// on the image x but on nothing that changes from step to step: no
// variable the training step writes (the fine-tuned ones, the head's, their
// Adam state; batch-norm moving statistics where they are updated), no
// other placeholder (labels, learning rate), no stateful op but variable
// reads (random numbers), no batch norm in training mode (its output
// depends on the whole batch). The cut is the frozen part's outputs that
// the other nodes read; a node of the frozen part that an other node waits
// on (a control edge), or whose read output is not one float32 row per
// image (a gradient's Shape of a frozen tensor), moves to the recomputed
// side, its inputs to the cut. It assumes what inference graphs do: the
// frozen part's ops compute each image's row from that image alone
// (convolutions, inference batch norm, activations, pooling).
//
// It returns a *NoCutError when nothing worth caching is frozen (with
// --fine-tune all only the preprocessing is) and ErrNotFineTuned for a
// model that fine-tunes nothing.
func (m *Model) FrozenCut() (*Cut, error) {
	if len(m.TuneVars) == 0 || m.Train == nil {
		return nil, ErrNotFineTuned
	}
	gd, err := graphDef(m.Graph)
	if err != nil {
		return nil, fmt.Errorf("the model's graph: %w", err)
	}
	g := newNodeGraph(gd)
	x, ok := g.idx[m.X.Op.Name()]
	if !ok {
		return nil, fmt.Errorf("the graph has no input %s", m.X.Op.Name())
	}
	var roots []int
	for _, o := range []*tf.Operation{m.Train, m.TrainCost.Op, m.Cost.Op, m.Accuracy.Op} {
		if o != nil {
			roots = append(roots, g.idx[o.Name()])
		}
	}
	needed := g.ancestors(roots)

	// What changes between steps.
	var sources []int
	for i := range needed {
		n := gd.Node[i]
		switch {
		case i == x:
		case n.Op == "Placeholder" || n.Op == "PlaceholderWithDefault":
			sources = append(sources, i)
		case strings.HasPrefix(n.Op, "FusedBatchNorm") && n.Attr["is_training"].GetB():
			sources = append(sources, i)
		case !statefulFrozen[n.Op]:
			if d, err := tfc.RegisteredOp(n.Op); err == nil && d.IsStateful {
				sources = append(sources, i)
			}
		}
		if readerOps[n.Op] {
			continue
		}
		for _, in := range g.in[i] {
			if v := gd.Node[in.node].Op; !in.control && (v == "VarHandleOp" || v == opVariableV2) {
				sources = append(sources, in.node) // written by a step
			}
		}
	}
	varying := g.descendants(sources)
	frozen := map[int]bool{}
	for i := range g.descendants([]int{x}) {
		if needed[i] && !varying[i] {
			frozen[i] = true
		}
	}

	// Move to the recomputed side what cannot be cut, until nothing moves.
	type tensor struct{ node, out int }
	var cut []tensor
	unknown := "" // a tensor moved for want of a static shape per image
	for {
		cut = cut[:0]
		seen := map[tensor]bool{}
		move := map[int]bool{}
		for i := range needed {
			if frozen[i] {
				continue
			}
			for _, in := range g.in[i] {
				if !frozen[in.node] {
					continue
				}
				if in.control {
					move[in.node] = true
					continue
				}
				t := tensor{in.node, in.out}
				if seen[t] {
					continue
				}
				seen[t] = true
				if _, ok := perImage(m.Graph, gd.Node[t.node].Name, t.out); !ok {
					move[t.node] = true
					if unknown == "" && gd.Node[t.node].Op != "Shape" {
						unknown = fmt.Sprintf("%s:%d", gd.Node[t.node].Name, t.out)
					}
				}
				cut = append(cut, t)
			}
		}
		if len(move) == 0 {
			break
		}
		if move[x] {
			return nil, &NoCutError{Reason: "the image input itself is read by the recomputed part"}
		}
		for i := range move {
			delete(frozen, i)
		}
	}
	// The nodes the cut skips: the frozen ancestors of its tensors.
	var heads []int
	for _, t := range cut {
		heads = append(heads, t.node)
	}
	skipped := 0
	read := map[int]bool{} // the variable reads of the skipped nodes
	for i := range g.ancestors(heads) {
		if !frozen[i] {
			continue
		}
		skipped++
		for _, in := range g.in[i] {
			if op := gd.Node[in.node].Op; !in.control && (op == "ReadVariableOp" || op == opVariableV2) {
				read[in.node] = true
			}
		}
	}
	reads := len(read)
	switch {
	case reads == 0 && unknown != "":
		return nil, &NoCutError{Reason: fmt.Sprintf("the frozen part's output %s is not float32 [batch, known dimensions]", unknown)}
	case reads == 0:
		return nil, &NoCutError{Reason: "no backbone variable is frozen below the fine-tuned ones (only the preprocessing is)"}
	}
	slices.SortFunc(cut, func(a, b tensor) int {
		if c := strings.Compare(gd.Node[a.node].Name, gd.Node[b.node].Name); c != 0 {
			return c
		}
		return a.out - b.out
	})
	c := &Cut{Frozen: skipped, Reads: reads}
	for k, t := range cut {
		o := m.Graph.Operation(gd.Node[t.node].Name)
		if o == nil {
			return nil, fmt.Errorf("the graph has no node %s", gd.Node[t.node].Name)
		}
		shape, _ := perImage(m.Graph, o.Name(), t.out)
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		f, err := m.cutFetch(k, o.Output(t.out))
		if err != nil {
			return nil, err
		}
		c.Tensors = append(c.Tensors, o.Output(t.out))
		c.Fetch = append(c.Fetch, f)
		c.Shapes = append(c.Shapes, shape)
		c.Values += n
	}
	return c, nil
}

// cutFetchScope names the Identities of a cut's tensors, which a session
// fetches to compute them. A fetched tensor is kept from Grappler's
// rewrites, while inside a step the same tensor is not: its arithmetic
// optimizer reassociates a residual connection's adds (MobileNetV2's
// "block_14_add" of a batch norm's two terms and the block's input becomes
// an AddN and an add in another order) when nothing fetches the sum.
// Fetching an Identity of the sum leaves the sum to be rewritten as it is
// in a step, so the cached tensors are the step's, bit for bit. (The step
// fed them is not quite the step that computes them: Grappler does not know
// a fed tensor's shape, and leaves the residual add above the cut as the
// graph has it; see TestFineTuneCutCache.) The Identities stay in the
// graph, outside BasePrefix, and so in the checkpoints' .meta, where
// nothing reads them.
const cutFetchScope = "frozen_cut"

// cutFetch returns the Identity "frozen_cut/<k>" of t, adding it to the
// graph unless it is there. Nodes added after a session opened on the
// graph are added to the session's at its next run.
func (m *Model) cutFetch(k int, t tf.Output) (tf.Output, error) {
	name := fmt.Sprintf("%s/%d", cutFetchScope, k)
	if o := m.Graph.Operation(name); o != nil {
		for _, c := range t.Consumers() {
			if c.Op.Name() == name && o.Type() == "Identity" {
				return o.Output(0), nil
			}
		}
		return tf.Output{}, fmt.Errorf("the graph's %s is not an Identity of %s:%d", name, t.Op.Name(), t.Index)
	}
	o, err := m.Graph.AddOperation(tf.OpSpec{Type: "Identity", Name: name, Input: []tf.Input{t}})
	if err != nil {
		return tf.Output{}, fmt.Errorf("adding %s: %w", name, err)
	}
	return o.Output(0), nil
}

// perImage returns the shape of one image's row of tensor name:out, when
// the tensor is float32 [batch, known dimensions...].
func perImage(g *tf.Graph, name string, out int) ([]int64, bool) {
	o := g.Operation(name)
	if o == nil || out >= o.NumOutputs() {
		return nil, false
	}
	t := o.Output(out)
	if t.DataType() != tf.Float {
		return nil, false
	}
	sh := t.Shape()
	if sh.NumDimensions() < 1 {
		return nil, false
	}
	dims, err := sh.ToSlice()
	if err != nil || dims[0] != -1 {
		return nil, false
	}
	for _, d := range dims[1:] {
		if d < 0 {
			return nil, false
		}
	}
	return dims[1:], true
}

// nodeGraph is a GraphDef's edges by node index.
type nodeGraph struct {
	idx map[string]int
	in  [][]edge // each node's inputs
	out [][]int  // each node's data consumers
}

type edge struct {
	node, out int
	control   bool
}

func newNodeGraph(gd *graphpb.GraphDef) *nodeGraph {
	g := &nodeGraph{idx: map[string]int{}, in: make([][]edge, len(gd.Node)), out: make([][]int, len(gd.Node))}
	for i, n := range gd.Node {
		g.idx[n.Name] = i
	}
	for i, n := range gd.Node {
		for _, s := range n.Input {
			control := strings.HasPrefix(s, "^")
			name, k, err := checkpoint.ParseTensorName(strings.TrimPrefix(s, "^"))
			j, ok := g.idx[name]
			if err != nil || !ok {
				continue
			}
			g.in[i] = append(g.in[i], edge{node: j, out: k, control: control})
			if !control {
				g.out[j] = append(g.out[j], i)
			}
		}
	}
	return g
}

// ancestors are the roots and every node they wait on, data or control.
func (g *nodeGraph) ancestors(roots []int) map[int]bool {
	return reach(roots, func(stack []int, i int) []int {
		for _, e := range g.in[i] {
			stack = append(stack, e.node)
		}
		return stack
	})
}

// dataAncestors are the roots and every node they read through data edges,
// directly or not: the nodes a gradient of the roots can reach.
func (g *nodeGraph) dataAncestors(roots []int) map[int]bool {
	return reach(roots, func(stack []int, i int) []int {
		for _, e := range g.in[i] {
			if !e.control {
				stack = append(stack, e.node)
			}
		}
		return stack
	})
}

// descendants are the roots and every node that reads them through data
// edges, directly or not.
func (g *nodeGraph) descendants(roots []int) map[int]bool {
	return reach(roots, func(stack []int, i int) []int { return append(stack, g.out[i]...) })
}

// reach is the roots and every node next leads to from them: next pushes
// node i's neighbours onto the stack.
func reach(roots []int, next func(stack []int, i int) []int) map[int]bool {
	seen := map[int]bool{}
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[i] {
			continue
		}
		seen[i] = true
		stack = next(stack, i)
	}
	return seen
}
