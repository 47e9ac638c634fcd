package tfgraph

import (
	"fmt"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"github.com/wamuir/graft/tensorflow/op"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// DefaultBNMomentum is the momentum of the moving statistics' update when
// FineTune.BNMomentum is zero: Keras's default for BatchNormalization. A
// Keras 3 SavedModel does not record its layers' momentum (its object graph
// holds no Keras config), so tfcat cannot read it; Keras's MobileNetV2, for
// one, builds its batch norms with 0.999.
const DefaultBNMomentum = 0.99

// bnTrainPrefix scopes the training path's copy of the backbone's part
// above its first fine-tuned batch norm: outside BasePrefix, so that
// backbone.FromGraph (which takes BasePrefix whole) never reads it back.
const bnTrainPrefix = "base_bn_train"

// fineTuneBN puts the batch norms of the fine-tuned layers into training
// mode on the training path, as Keras's training=True does: the part of
// the backbone from the first of them up is copied under bnTrainPrefix,
// where each reads its input's batch mean and (biased) variance over all
// axes but the last in place of its moving statistics; those move towards
// the batch's with each step (momentum; on a cluster the global batch's,
// see trainBatchNorms). The part below is shared, and
// predict, eval and export keep the inference form under BasePrefix, with
// the moving statistics the checkpoint holds. It returns the training
// path's features.
func (b *builder) fineTuneBN(m *Model) (tf.Output, error) {
	gd, err := backbone.InlineFunctions(m.backbone.Graph)
	if err != nil {
		return tf.Output{}, fmt.Errorf("fine-tune-bn: %w", err)
	}
	vars := m.Net.Base.Variables
	layerOf := map[string]string{}
	for _, v := range vars {
		layerOf[v.Node] = v.Layer()
	}
	var layers []string // the fine-tuned layers, in TuneVars's order
	for _, t := range m.TuneVars {
		if l, ok := layerOf[strings.TrimPrefix(t.Name, BasePrefix+"/")]; ok && !slices.Contains(layers, l) {
			layers = append(layers, l)
		}
	}
	bns, err := backbone.FindBatchNorms(gd, vars, layers)
	if err != nil {
		return tf.Output{}, err
	}
	outOp, outIdx, err := checkpoint.ParseTensorName(m.Net.Base.Output)
	if err != nil {
		return tf.Output{}, fmt.Errorf("backbone output: %w", err)
	}
	if len(bns) == 0 {
		return tf.Output{}, nil // no fine-tuned batch norm: the training path is the inference one
	}
	copied, byName := copiedAbove(gd, bns)
	if !copied[outOp] {
		return tf.Output{}, fmt.Errorf("fine-tune-bn: the backbone's output %s does not depend on its fine-tuned batch norms", m.Net.Base.Output)
	}
	part := &graphpb.GraphDef{Versions: gd.Versions}
	opts := tf.GraphImportOptions{Prefix: bnTrainPrefix}
	mapped := map[string]bool{}
	// ref is a reference of the copy to tensor s: inside the copy, or
	// mapped to the inference graph's.
	ref := func(s string) (string, error) {
		name, idx, err := checkpoint.ParseTensorName(s)
		if err != nil {
			return "", err
		}
		if copied[name] {
			return s, nil
		}
		if key := fmt.Sprintf("%s:%d", name, idx); !mapped[key] {
			o := b.g.Operation(BasePrefix + "/" + name)
			if o == nil || idx >= o.NumOutputs() {
				return "", fmt.Errorf("fine-tune-bn: the backbone has no tensor %s", s)
			}
			opts.AddInputMapping(name, idx, o.Output(idx))
			mapped[key] = true
		}
		return s, nil
	}
	for _, n := range gd.Node {
		if !copied[n.Name] {
			continue
		}
		c := proto.Clone(n).(*nodepb.NodeDef)
		c.Input = c.Input[:0]
		for _, s := range n.Input {
			if strings.HasPrefix(s, "^") {
				// The import cannot map a control input to the
				// inference graph's node: a copied node waits only for
				// copied ones (the backbone's ops are stateless reads
				// and arithmetic; what they waited for orders nothing
				// the copy changes).
				if copied[s[1:]] {
					c.Input = append(c.Input, s)
				}
				continue
			}
			r, err := ref(s)
			if err != nil {
				return tf.Output{}, err
			}
			c.Input = append(c.Input, r)
		}
		part.Node = append(part.Node, c)
	}
	for _, bn := range bns {
		x, err := ref(bn.X)
		if err != nil {
			return tf.Output{}, err
		}
		xn, xi, _ := checkpoint.ParseTensorName(bn.X)
		xo := b.g.Operation(BasePrefix + "/" + xn)
		if xo == nil {
			return tf.Output{}, &backbone.BatchNormError{Layer: bn.Layer, Reason: "normalises a tensor the graph lacks"}
		}
		rank := xo.Output(xi).Shape().NumDimensions()
		if rank < 2 {
			return tf.Output{}, &backbone.BatchNormError{Layer: bn.Layer, Reason: "normalises a tensor of unknown rank"}
		}
		nodes, err := batchStatNodes(bn, x, rank, byName)
		if err != nil {
			return tf.Output{}, err
		}
		part.Node = append(part.Node, nodes...)
	}
	for _, c := range part.Node {
		for _, bn := range bns {
			_, batchMean, batchVar := batchStats(bn)
			switch c.Name {
			case bn.Add:
				c.Input[bn.AddArg] = batchVar
			case bn.Mul2:
				c.Input[bn.Mul2Arg] = batchMean
			}
		}
	}
	def, err := proto.Marshal(part)
	if err != nil {
		return tf.Output{}, err
	}
	if err := b.g.ImportWithOptions(def, opts); err != nil {
		return tf.Output{}, fmt.Errorf("fine-tune-bn: importing the training path's batch norms: %w", err)
	}
	if err := b.trainBatchNorms(m, bns); err != nil {
		return tf.Output{}, err
	}
	o := b.g.Operation(bnTrainPrefix + "/" + outOp)
	if o == nil || outIdx >= o.NumOutputs() {
		return tf.Output{}, fmt.Errorf("fine-tune-bn: the training path has no tensor %s", m.Net.Base.Output)
	}
	m.TuneBN = make([]string, len(bns))
	for i, bn := range bns {
		m.TuneBN[i] = bn.Layer
	}
	return o.Output(outIdx), b.s.Err()
}

// copiedAbove is what the training path's copy holds: every node of gd
// that the rewritten batch norms' nodes reach by data edges, themselves
// included; and gd's nodes by name.
func copiedAbove(gd *graphpb.GraphDef, bns []*backbone.BatchNorm) (copied map[string]bool, byName map[string]*nodepb.NodeDef) {
	g := newNodeGraph(gd)
	var roots []int
	for _, bn := range bns {
		for _, name := range []string{bn.Add, bn.Mul2} {
			if i, ok := g.idx[name]; ok {
				roots = append(roots, i)
			}
		}
	}
	copied = map[string]bool{}
	for i := range g.descendants(roots) {
		copied[gd.Node[i].Name] = true
	}
	byName = map[string]*nodepb.NodeDef{}
	for _, n := range gd.Node {
		byName[n.Name] = n
	}
	return copied, byName
}

// batchStatNodes are the copy's nodes for bn's batch mean and (biased)
// variance of x over every axis of its rank but the last, as tf.nn.moments:
// the variance is the mean of the squared differences from the mean,
// through which no gradient goes. taken are the names already used.
func batchStatNodes(bn *backbone.BatchNorm, x string, rank int, taken map[string]*nodepb.NodeDef) ([]*nodepb.NodeDef, error) {
	axes := make([]int32, rank-1)
	for i := range axes {
		axes[i] = int32(i)
	}
	pre, batchMean, batchVar := batchStats(bn)
	for _, name := range []string{pre + "axes", batchMean, pre + "stop_gradient", pre + "squared_difference", batchVar} {
		if taken[name] != nil {
			return nil, &backbone.BatchNormError{Layer: bn.Layer, Reason: "has a node named " + name + " already"}
		}
	}
	f32 := &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: typespb.DataType_DT_FLOAT}}
	axesNode := &nodepb.NodeDef{Name: pre + "axes", Op: "Const", Attr: map[string]*attrpb.AttrValue{
		"dtype": {Value: &attrpb.AttrValue_Type{Type: typespb.DataType_DT_INT32}},
		"value": {Value: &attrpb.AttrValue_Tensor{Tensor: &tensorpb.TensorProto{
			Dtype: typespb.DataType_DT_INT32, IntVal: axes,
			TensorShape: &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: int64(len(axes))}}}}}}}}
	mean := func(name, in string) *nodepb.NodeDef {
		return &nodepb.NodeDef{Name: name, Op: "Mean", Input: []string{in, axesNode.Name}, Attr: map[string]*attrpb.AttrValue{
			"T": f32, "Tidx": {Value: &attrpb.AttrValue_Type{Type: typespb.DataType_DT_INT32}},
			"keep_dims": {Value: &attrpb.AttrValue_B{B: false}}}}
	}
	return []*nodepb.NodeDef{axesNode, mean(batchMean, x),
		{Name: pre + "stop_gradient", Op: "StopGradient", Input: []string{batchMean}, Attr: map[string]*attrpb.AttrValue{"T": f32}},
		{Name: pre + "squared_difference", Op: "SquaredDifference", Input: []string{x, pre + "stop_gradient"}, Attr: map[string]*attrpb.AttrValue{"T": f32}},
		mean(batchVar, pre+"squared_difference")}, nil
}

// trainBatchNorms adds the moving statistics' updates of the batch norms
// the training path's copy puts in training mode, and sets m.TuneStats to
// their variables. On a cluster (syncBackboneNorms) the copy's batch norms
// normalise with the global batch's statistics instead, which the chief's
// update moves the moving statistics towards.
func (b *builder) trainBatchNorms(m *Model, bns []*backbone.BatchNorm) error {
	mom := b.opt.FineTune.BNMomentum
	if mom == 0 {
		mom = DefaultBNMomentum
	}
	byName := m.baseVarsByNode()
	s := b.s.SubScope(fineTuneScope).SubScope("batch_norm")
	for _, bn := range bns {
		ls := s.SubScope(bn.Layer)
		vMean, vVar := byName[bn.Mean], byName[bn.Variance]
		if vMean == nil || vVar == nil || !vMean.Resource || !vVar.Resource {
			return fmt.Errorf("fine-tune-bn: batch norm %s: no resource variables %s and %s", bn.Layer, bn.Mean, bn.Variance)
		}
		for _, v := range []*Variable{vMean, vVar} {
			b.settable(v, fmt.Sprintf("set_stat_%d", len(m.TuneStats)))
			m.TuneStats = append(m.TuneStats, v)
		}
		update := func(s *op.Scope, mean, variance tf.Output) []*tf.Operation {
			return []*tf.Operation{movingStat(s.SubScope("moving_mean"), vMean.Ref, mean, mom), movingStat(s.SubScope("moving_variance"), vVar.Ref, variance, mom)}
		}
		if b.opt.Replication != nil {
			if err := b.syncBackboneNorm(ls.SubScope("sync"), bn, vMean, update); err != nil {
				return err
			}
			continue
		}
		_, batchMean, batchVar := batchStats(bn)
		mean, variance := b.g.Operation(bnTrainPrefix+"/"+batchMean), b.g.Operation(bnTrainPrefix+"/"+batchVar)
		if mean == nil || variance == nil {
			return fmt.Errorf("fine-tune-bn: batch norm %s: no batch statistics", bn.Layer)
		}
		m.updates = append(m.updates, update(ls, mean.Output(0), variance.Output(0))...)
	}
	return b.s.Err()
}

// movingStat is Keras's update of a moving statistic, in float32: moving ←
// moving · momentum + batch · (1 - momentum).
func movingStat(s *op.Scope, handle, batch tf.Output, momentum float64) *tf.Operation {
	moving := op.ReadVariableOp(s, handle, tf.Float)
	next := op.AddV2(s, op.Mul(s.SubScope("decay"), moving, op.Const(s.SubScope("momentum"), float32(momentum))),
		op.Mul(s.SubScope("batch"), batch, op.Const(s.SubScope("one_minus_momentum"), float32(1-momentum))))
	return op.AssignVariableOp(s, handle, next)
}

// syncBackboneNorm makes the training path's copy of bn normalise with the
// global batch's mean and variance (syncbn.go) in place of its share's:
// the copy's reads of its batch statistics are rewired to them.
func (b *builder) syncBackboneNorm(s *op.Scope, bn *backbone.BatchNorm, mean *Variable, update func(*op.Scope, tf.Output, tf.Output) []*tf.Operation) error {
	xn, xi, err := checkpoint.ParseTensorName(bn.X)
	if err != nil {
		return err
	}
	xo := b.g.Operation(bnTrainPrefix + "/" + xn) // in the copy, or below it
	if xo == nil {
		xo = b.g.Operation(BasePrefix + "/" + xn)
	}
	add, mul2 := b.g.Operation(bnTrainPrefix+"/"+bn.Add), b.g.Operation(bnTrainPrefix+"/"+bn.Mul2)
	if xo == nil || add == nil || mul2 == nil || len(mean.Shape) != 1 {
		return fmt.Errorf("fine-tune-bn: batch norm %s: the training path's copy lacks its nodes", bn.Layer)
	}
	x := xo.Output(xi)
	axes := make([]int32, x.Shape().NumDimensions()-1)
	for i := range axes {
		axes[i] = int32(i)
	}
	gm, gv := b.syncMoments(s, x, axes, syncNorm{key: "base/" + bn.Layer, channels: mean.Shape[0], device: b.devices[mean.Name], update: update})
	if err := b.s.Err(); err != nil {
		return err
	}
	if err := tfc.UpdateEdge(b.g, gv, add, bn.AddArg); err != nil {
		return fmt.Errorf("fine-tune-bn: batch norm %s: %w", bn.Layer, err)
	}
	if err := tfc.UpdateEdge(b.g, gm, mul2, bn.Mul2Arg); err != nil {
		return fmt.Errorf("fine-tune-bn: batch norm %s: %w", bn.Layer, err)
	}
	return nil
}

// batchStats names what the training path's copy adds for bn: the scope
// of its batch statistics, and the nodes of its batch mean and variance,
// which replace the moving statistics' reads.
func batchStats(bn *backbone.BatchNorm) (scope, mean, variance string) {
	scope = bn.Add + "/_fine_tune_bn/"
	return scope, scope + "mean", scope + "variance"
}
