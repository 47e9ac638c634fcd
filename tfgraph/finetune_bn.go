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

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// DefaultBNMomentum is the momentum of the moving statistics' update when
// FineTune.BNMomentum is zero: Keras's default for BatchNormalization. A
// Keras 3 SavedModel does not record its layers' momentum (its object graph
// holds no Keras config), so tfcat cannot read it; Keras's MobileNetV2, for
// one, builds its batch norms with 0.999.
const DefaultBNMomentum = 0.99

// bnTrainPrefix scopes the training path's copy of the backbone's part
// above its first fine-tuned batch norm: outside BasePrefix, so that
// BackboneFromGraph (which takes BasePrefix whole) never reads it back.
const bnTrainPrefix = "base_bn_train"

// BatchNormError is the refusal of FineTune.BatchNorm for a batch norm of
// the backbone whose graph is not the inference arithmetic tfcat rewrites.
type BatchNormError struct {
	Layer  string
	Reason string
}

func (e *BatchNormError) Error() string { return "fine-tune-bn: " + e.Why() }

// Why names the layer and what is wrong with its graph.
func (e *BatchNormError) Why() string {
	return fmt.Sprintf("cannot put batch norm %s in training mode: it %s", e.Layer, e.Reason)
}

// batchNorm is one batch norm of the inlined backbone in inference form,
// as Keras's tf.nn.batch_normalization writes it:
//
//	add   = AddV2(read(moving_variance), epsilon)
//	rsqrt = Rsqrt(add)
//	mul   = Mul(rsqrt, read(gamma))
//	mul_1 = Mul(x, mul)
//	mul_2 = Mul(read(moving_mean), mul)
//	sub   = Sub(read(beta), mul_2)
//	out   = AddV2(mul_1, sub)
type batchNorm struct {
	layer               string
	mean, variance      string // the moving statistics' VarHandleOps
	x                   string // the normalised tensor
	add, mul2           string // the nodes that read the moving statistics
	addArg, mul2Arg     int    // which of their inputs does
	batchMean, batchVar string
}

// findBatchNorms finds, in the inlined backbone gd, the batch norm of each
// layer in layers, by its variables' names (LAYER/moving_mean,
// LAYER/moving_variance, LAYER/gamma, LAYER/beta) and the arithmetic
// around their reads.
func findBatchNorms(gd *graphpb.GraphDef, vars []network.BaseVariable, layers []string) ([]*batchNorm, error) {
	byName := map[string]*nodepb.NodeDef{}
	users := map[string][]*nodepb.NodeDef{}
	for _, n := range gd.Node {
		byName[n.Name] = n
		for _, s := range n.Input {
			if !strings.HasPrefix(s, "^") {
				users[checkpoint.NodeName(s)] = append(users[checkpoint.NodeName(s)], n)
			}
		}
	}
	node := map[string]string{} // variable name -> VarHandleOp
	for _, v := range vars {
		node[v.Name] = v.Node
	}
	// read is the variable's only ReadVariableOp on a data path.
	read := func(layer, v string) (string, error) {
		h, ok := node[layer+"/"+v]
		if !ok {
			return "", &BatchNormError{layer, "has no variable " + v}
		}
		var reads []string
		for _, u := range users[h] {
			if u.Op == "ReadVariableOp" && len(users[u.Name]) > 0 {
				reads = append(reads, u.Name)
			}
		}
		if len(reads) != 1 {
			return "", &BatchNormError{layer, fmt.Sprintf("reads %s %d times in the backbone's graph, not once", v, len(reads))}
		}
		return reads[0], nil
	}
	// only is the only user of name, which must be an op of type typ.
	only := func(layer, name string, typ ...string) (*nodepb.NodeDef, error) {
		u := users[name]
		if len(u) != 1 || !slices.Contains(typ, u[0].Op) {
			return nil, &BatchNormError{layer, fmt.Sprintf("is not the inference arithmetic tfcat knows: %s does not feed one %s", name, strings.Join(typ, " or "))}
		}
		return u[0], nil
	}
	// other is the input of n that is not from node from, with its index.
	other := func(n *nodepb.NodeDef, from string) (string, int) {
		if len(n.Input) < 2 {
			return "", -1
		}
		for i := range 2 {
			if checkpoint.NodeName(n.Input[i]) == from {
				return n.Input[1-i], 1 - i
			}
		}
		return "", -1
	}
	wrong := func(layer, what string) error {
		return &BatchNormError{layer, "is not the inference arithmetic tfcat knows: " + what}
	}
	var out []*batchNorm
	for _, layer := range layers {
		if _, ok := node[layer+"/moving_mean"]; !ok {
			continue // not a batch norm
		}
		bn := &batchNorm{layer: layer, mean: node[layer+"/moving_mean"], variance: node[layer+"/moving_variance"]}
		rm, err := read(layer, "moving_mean")
		if err != nil {
			return nil, err
		}
		rv, err := read(layer, "moving_variance")
		if err != nil {
			return nil, err
		}
		rg, err := read(layer, "gamma")
		if err != nil {
			return nil, err
		}
		rb, err := read(layer, "beta")
		if err != nil {
			return nil, err
		}
		add, err := only(layer, rv, "AddV2", "Add")
		if err != nil {
			return nil, err
		}
		eps, k := other(add, rv)
		if e := byName[checkpoint.NodeName(eps)]; e == nil || e.Op != "Const" {
			return nil, wrong(layer, "the moving variance is not added to a constant epsilon")
		}
		bn.add, bn.addArg = add.Name, 1-k
		rsqrt, err := only(layer, add.Name, "Rsqrt")
		if err != nil {
			return nil, err
		}
		mul, err := only(layer, rsqrt.Name, "Mul")
		if err != nil {
			return nil, err
		}
		if g, _ := other(mul, rsqrt.Name); checkpoint.NodeName(g) != rg {
			return nil, wrong(layer, "gamma does not scale 1/sqrt(variance+epsilon)")
		}
		mul2, err := only(layer, rm, "Mul")
		if err != nil {
			return nil, err
		}
		if s, k := other(mul2, rm); checkpoint.NodeName(s) != mul.Name {
			return nil, wrong(layer, "the moving mean is not multiplied by the scale")
		} else {
			bn.mul2, bn.mul2Arg = mul2.Name, 1-k
		}
		var mul1 *nodepb.NodeDef
		for _, u := range users[mul.Name] {
			if u.Name != mul2.Name {
				if mul1 != nil || u.Op != "Mul" {
					return nil, wrong(layer, "the scale feeds more than the input's and the mean's products")
				}
				mul1 = u
			}
		}
		if mul1 == nil {
			return nil, wrong(layer, "the scale multiplies no input")
		}
		bn.x, _ = other(mul1, mul.Name)
		sub, err := only(layer, mul2.Name, "Sub")
		if err != nil {
			return nil, err
		}
		if len(sub.Input) < 2 || checkpoint.NodeName(sub.Input[0]) != rb || checkpoint.NodeName(sub.Input[1]) != mul2.Name {
			return nil, wrong(layer, "beta minus the scaled mean is not the offset")
		}
		sum, err := only(layer, sub.Name, "AddV2", "Add")
		if err != nil {
			return nil, err
		}
		if o, _ := other(sum, sub.Name); checkpoint.NodeName(o) != mul1.Name {
			return nil, wrong(layer, "the offset is not added to the scaled input")
		}
		out = append(out, bn)
	}
	return out, nil
}

// fineTuneBN puts the batch norms of the fine-tuned layers into training
// mode on the training path, as Keras's training=True does: the part of
// the backbone from the first of them up is copied under bnTrainPrefix,
// where each reads its input's batch mean and (biased) variance over all
// axes but the last in place of its moving statistics; those move towards
// the batch's with each step (momentum). The part below is shared, and
// predict, eval and export keep the inference form under BasePrefix, with
// the moving statistics the checkpoint holds. It returns the training
// path's features.
func (b *builder) fineTuneBN(m *Model) (tf.Output, error) {
	gd, err := InlineFunctions(m.backbone.Graph)
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
	bns, err := findBatchNorms(gd, vars, layers)
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
	byName := map[string]*nodepb.NodeDef{}
	users := map[string][]string{}
	for _, n := range gd.Node {
		byName[n.Name] = n
		for _, s := range n.Input {
			if !strings.HasPrefix(s, "^") {
				users[checkpoint.NodeName(s)] = append(users[checkpoint.NodeName(s)], n.Name)
			}
		}
	}
	// copied: what the rewritten nodes reach by data edges, themselves included.
	copied := map[string]bool{}
	var stack []string
	for _, bn := range bns {
		stack = append(stack, bn.add, bn.mul2)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if copied[n] {
			continue
		}
		copied[n] = true
		stack = append(stack, users[n]...)
	}
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
	f32 := &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: typespb.DataType_DT_FLOAT}}
	for _, bn := range bns {
		x, err := ref(bn.x)
		if err != nil {
			return tf.Output{}, err
		}
		xn, xi, _ := checkpoint.ParseTensorName(bn.x)
		xo := b.g.Operation(BasePrefix + "/" + xn)
		if xo == nil {
			return tf.Output{}, &BatchNormError{bn.layer, "normalises a tensor the graph lacks"}
		}
		rank := xo.Output(xi).Shape().NumDimensions()
		if rank < 2 {
			return tf.Output{}, &BatchNormError{bn.layer, "normalises a tensor of unknown rank"}
		}
		axes := make([]int32, rank-1)
		for i := range axes {
			axes[i] = int32(i)
		}
		pre := bn.add + "/_fine_tune_bn/"
		bn.batchMean, bn.batchVar = pre+"mean", pre+"variance"
		for _, name := range []string{pre + "axes", bn.batchMean, pre + "stop_gradient", pre + "squared_difference", bn.batchVar} {
			if byName[name] != nil {
				return tf.Output{}, &BatchNormError{bn.layer, "has a node named " + name + " already"}
			}
		}
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
		// tf.nn.moments: the variance is the mean of the squared
		// differences from the mean, through which no gradient goes.
		part.Node = append(part.Node, axesNode, mean(bn.batchMean, x),
			&nodepb.NodeDef{Name: pre + "stop_gradient", Op: "StopGradient", Input: []string{bn.batchMean}, Attr: map[string]*attrpb.AttrValue{"T": f32}},
			&nodepb.NodeDef{Name: pre + "squared_difference", Op: "SquaredDifference", Input: []string{x, pre + "stop_gradient"}, Attr: map[string]*attrpb.AttrValue{"T": f32}},
			mean(bn.batchVar, pre+"squared_difference"))
	}
	for _, c := range part.Node {
		for _, bn := range bns {
			switch c.Name {
			case bn.add:
				c.Input[bn.addArg] = bn.batchVar
			case bn.mul2:
				c.Input[bn.mul2Arg] = bn.batchMean
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
	mom := b.opt.FineTune.BNMomentum
	if mom == 0 {
		mom = DefaultBNMomentum
	}
	handles := map[string]tf.Output{}
	for _, v := range m.BaseVars {
		handles[strings.TrimPrefix(v.Name, BasePrefix+"/")] = v.Ref
	}
	s := b.s.SubScope(fineTuneScope).SubScope("batch_norm")
	for _, bn := range bns {
		ls := s.SubScope(bn.layer)
		for _, st := range []struct{ v, batch string }{{bn.mean, bn.batchMean}, {bn.variance, bn.batchVar}} {
			batch := b.g.Operation(bnTrainPrefix + "/" + st.batch)
			h, ok := handles[st.v]
			if batch == nil || !ok {
				return tf.Output{}, fmt.Errorf("fine-tune-bn: batch norm %s: no variable %s or batch statistic", bn.layer, st.v)
			}
			// Keras: moving * momentum + batch * (1 - momentum), in float32.
			vs := ls.SubScope(st.v[strings.LastIndex(st.v, "/")+1:])
			moving := op.ReadVariableOp(vs, h, tf.Float)
			next := op.AddV2(vs, op.Mul(vs.SubScope("decay"), moving, op.Const(vs.SubScope("momentum"), float32(mom))),
				op.Mul(vs.SubScope("batch"), batch.Output(0), op.Const(vs.SubScope("one_minus_momentum"), float32(1-mom))))
			m.updates = append(m.updates, op.AssignVariableOp(vs, h, next))
		}
	}
	o := b.g.Operation(bnTrainPrefix + "/" + outOp)
	if o == nil || outIdx >= o.NumOutputs() {
		return tf.Output{}, fmt.Errorf("fine-tune-bn: the training path has no tensor %s", m.Net.Base.Output)
	}
	m.TuneBN = make([]string, len(bns))
	for i, bn := range bns {
		m.TuneBN[i] = bn.layer
	}
	return o.Output(outIdx), b.s.Err()
}
