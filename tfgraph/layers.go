package tfgraph

import (
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/network"
)

// Batch normalisation's constants, Keras's defaults: the moving averages
// keep 0.99 of their value at each step; epsilon is added to the variance.
const (
	BatchNormMomentum = 0.99
	BatchNormEpsilon  = 1e-3
)

// Suffixes of a layer's batch-normalisation variables, after the layer's
// scope ("conv1", "fc1", ...): "conv1/bn/gamma", and so on.
const (
	bnGammaSuffix    = "/bn/gamma"
	bnBetaSuffix     = "/bn/beta"
	bnMeanSuffix     = "/bn/moving_mean"
	bnVarianceSuffix = "/bn/moving_variance"
	// trainScope holds the training path of a network with dropout or batch
	// normalisation; the inference path keeps the tutorial's names.
	trainScope = "train"
)

// layerVars are one layer's variables: weights, and a bias or (with batch
// normalisation) the normalisation's variables.
type layerVars struct {
	w, bias *Variable
	bn      *batchNormVars
}

type batchNormVars struct{ gamma, beta, mean, variance *Variable }

// variables adds every layer's variables to m.Vars: first the weights and
// biases named Variable, Variable_1, ... in the tutorial's order, then the
// batch-normalisation variables of each layer but the last.
func (b *builder) variables(m *Model) []layerVars {
	net := m.Net
	shapes := net.VariableShapes()
	next := 0
	newVar := func() *Variable {
		i, shape := next, shapes[next]
		next++
		var initial tf.Output
		if len(shape) > 1 {
			initial = b.truncatedNormal(shape, net.WeightStddev, int64(i+1))
		} else {
			initial = b.constant(b.unique("Const"), filled(int(shape[0]), float32(net.BiasInit)))
		}
		v := b.variable(network.VariableName(i), shape, true, initial)
		m.Vars = append(m.Vars, v)
		return v
	}
	names := net.LayerNames()
	layers := make([]layerVars, len(names))
	for i := range layers {
		layers[i].w = newVar()
		if !net.BatchNorm || i == len(layers)-1 {
			layers[i].bias = newVar()
		}
	}
	if !net.BatchNorm {
		return layers
	}
	for i, name := range names[:len(names)-1] {
		units := layers[i].w.Shape[len(layers[i].w.Shape)-1]
		bnVar := func(suffix string, trainable bool, value float32) *Variable {
			init := "/Initializer/zeros"
			if value == 1 {
				init = "/Initializer/ones"
			}
			v := b.variable(name+suffix, []int64{units}, trainable, b.constant(name+suffix+init, filled(int(units), value)))
			m.Vars = append(m.Vars, v)
			return v
		}
		layers[i].bn = &batchNormVars{
			gamma: bnVar(bnGammaSuffix, true, 1), beta: bnVar(bnBetaSuffix, true, 0),
			mean: bnVar(bnMeanSuffix, false, 0), variance: bnVar(bnVarianceSuffix, false, 1),
		}
	}
	return layers
}

// forward adds the network from x to the logits under s. With train set it
// is the training path: dropout, and batch normalisation with the batch's
// statistics, whose moving averages' updates it returns; otherwise the
// inference path, with neither dropout nor batch statistics. For the
// tutorial's network both paths are the tutorial's graph.
func (b *builder) forward(s *op.Scope, net network.Network, x tf.Output, layers []layerVars, train bool) (logits tf.Output, updates []*tf.Operation) {
	layer := x
	for i := range net.Conv {
		cs := s.SubScope(fmt.Sprintf("conv%d", i+1))
		conv := op.Conv2D(cs, layer, layers[i].w.Read, []int64{1, 1, 1, 1}, "SAME")
		var pre tf.Output
		if bn := layers[i].bn; bn != nil {
			var upd []*tf.Operation
			pre, upd = b.batchNorm(cs.SubScope("bn"), conv, bn, []int32{0, 1, 2}, train)
			updates = append(updates, upd...)
		} else {
			pre = op.AddV2(cs, conv, layers[i].bias.Read)
			b.biased = append(b.biased, [2]tf.Output{conv, pre})
		}
		pool := op.MaxPool(cs, pre, []int64{1, 2, 2, 1}, []int64{1, 2, 2, 1}, "SAME")
		layer = op.Relu(cs, pool)
	}
	fs := s.SubScope("flatten")
	layer = op.Reshape(fs, layer, op.Const(fs, []int32{-1, int32(net.FlatSize())}))
	k := len(net.Conv)
	for j := range net.Hidden() {
		l := layers[k+j]
		fc := s.SubScope(fmt.Sprintf("fc%d", j+1))
		mm := op.MatMul(fc, layer, l.w.Read)
		var pre tf.Output
		if l.bn != nil {
			var upd []*tf.Operation
			pre, upd = b.batchNorm(fc.SubScope("bn"), mm, l.bn, []int32{0}, train)
			updates = append(updates, upd...)
		} else {
			pre = op.AddV2(fc, mm, l.bias.Read)
			b.biased = append(b.biased, [2]tf.Output{mm, pre})
		}
		layer = op.Relu(fc, pre)
		if train && net.Dropout > 0 {
			layer = b.dropout(fc.SubScope("dropout"), layer, net.Dropout, int64(1000+j))
		}
	}
	out := layers[len(layers)-1]
	fo := s.SubScope(fmt.Sprintf("fc%d", len(net.Hidden())+1))
	mm := op.MatMul(fo, layer, out.w.Read)
	logits = op.AddV2(fo, mm, out.bias.Read)
	b.biased = append(b.biased, [2]tf.Output{mm, logits})
	return logits, updates
}

// batchNorm normalises x over axes (tf.nn.batch_normalization): in training
// with the batch's mean and variance (tf.nn.moments), returning the
// assignments that move the moving averages towards them; at inference with
// the moving averages.
func (b *builder) batchNorm(s *op.Scope, x tf.Output, bn *batchNormVars, axes []int32, train bool) (tf.Output, []*tf.Operation) {
	mean, variance := bn.mean.Read, bn.variance.Read
	var updates []*tf.Operation
	if train {
		if b.opt.Replication != nil {
			// The global batch's statistics (syncbn.go), which the chief's
			// update moves the moving averages towards.
			mean, variance = b.syncMoments(s, x, axes, syncNorm{
				key: strings.TrimSuffix(bn.mean.Name, bnMeanSuffix), channels: bn.mean.Shape[0], device: b.devices[bn.mean.Name],
				update: func(s *op.Scope, mean, variance tf.Output) []*tf.Operation {
					return movingAverages(s, bn, mean, variance)
				},
			})
		} else {
			ax := op.Const(s.SubScope("axes"), axes)
			mean = op.Mean(s.SubScope("mean"), x, ax)
			// As tf.nn.moments: the variance's gradient through the mean is zero.
			sq := op.SquaredDifference(s, x, op.StopGradient(s, mean))
			variance = op.Mean(s.SubScope("variance"), sq, ax)
			updates = movingAverages(s, bn, mean, variance)
		}
	}
	inv := op.Mul(s.SubScope("inv"), op.Rsqrt(s, op.AddV2(s.SubScope("var_eps"), variance,
		op.Const(s.SubScope("epsilon"), float32(BatchNormEpsilon)))), bn.gamma.Read)
	shift := op.Sub(s, bn.beta.Read, op.Mul(s.SubScope("shift"), mean, inv))
	return op.AddV2(s.SubScope("out"), op.Mul(s.SubScope("scale"), x, inv), shift), updates
}

// movingAverages returns the assignments that move bn's moving averages
// towards mean and variance: moving -= (moving - stat) · (1 - momentum).
func movingAverages(s *op.Scope, bn *batchNormVars, mean, variance tf.Output) []*tf.Operation {
	var updates []*tf.Operation
	decay := op.Const(s.SubScope("decay"), float32(1-BatchNormMomentum))
	for _, u := range []struct {
		v    *Variable
		stat tf.Output
		name string
	}{{bn.mean, mean, "update_moving_mean"}, {bn.variance, variance, "update_moving_variance"}} {
		us := s.SubScope(u.name)
		next := op.Sub(us, u.v.Read, op.Mul(us, op.Sub(us.SubScope("delta"), u.v.Read, u.stat), decay))
		updates = append(updates, us.AddOperation(tf.OpSpec{Type: opAssign, Name: "Assign",
			Input: []tf.Input{u.v.Ref, next}, Attrs: map[string]any{"validate_shape": true, "use_locking": false}}))
	}
	return updates
}

// dropout is tf.nn.dropout(x, rate): each value kept with probability
// 1-rate and scaled by 1/(1-rate), the others zero.
func (b *builder) dropout(s *op.Scope, x tf.Output, rate float64, seed2 int64) tf.Output {
	keep := float32(1 - rate)
	var attrs []op.RandomUniformAttr
	if b.opt.Seed != 0 {
		if r := b.opt.Replication; r != nil {
			seed2 += 1_000_003 * int64(r.Rank) // far from every layer's seed2
		}
		attrs = append(attrs, op.RandomUniformSeed(b.opt.Seed), op.RandomUniformSeed2(seed2))
	}
	rnd := op.RandomUniform(s, op.Shape(s, x), tf.Float, attrs...)
	mask := op.Floor(s, op.AddV2(s, rnd, op.Const(s.SubScope("keep"), keep)))
	return op.Mul(s, op.RealDiv(s, x, op.Const(s.SubScope("keep_prob"), keep)), mask)
}

// trainingPath sets m.TrainCost: the inference cost for the tutorial's
// network, whose single path serves both; otherwise a second forward path
// under "train/" that shares the variables, with dropout and batch
// statistics, and its cost "train/cost".
func (b *builder) trainingPath(m *Model, layers []layerVars) error {
	net := m.Net
	if net.Dropout == 0 && !net.BatchNorm && b.trainFeatures.Op == nil {
		m.TrainCost = m.Cost
		return nil
	}
	ts := b.s.SubScope(trainScope)
	head := m.X
	if net.Base != nil {
		head = m.Features
		if b.trainFeatures.Op != nil {
			head = b.trainFeatures
		}
	}
	logits, updates := b.forward(ts, net, head, layers, true)
	cs := ts.SubScope("softmax_cross_entropy")
	loss, _ := op.SoftmaxCrossEntropyWithLogits(cs, logits, m.Labels)
	if mean := ts.AddOperation(tf.OpSpec{Type: "Mean", Name: network.CostName,
		Input: []tf.Input{loss, op.Const(cs.SubScope("axes"), []int32{0})}}); mean != nil {
		m.TrainCost = mean.Output(0)
	}
	m.updates = append(m.updates, updates...)
	return b.s.Err()
}
