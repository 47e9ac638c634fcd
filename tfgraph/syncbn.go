package tfgraph

import (
	"bytes"
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	"github.com/wamuir/graft/tensorflow/op"
	"google.golang.org/protobuf/proto"
)

// Synchronised batch normalisation on a cluster. Each replica normalises its
// share of the global batch with the global batch's statistics, as one
// process does with the whole batch, and its backward pass takes the global
// sums the normalisation's gradient needs:
//
//	forward:  M = mean over replicas of each share's mean (equal shares: the
//	          global mean); V = mean over replicas of each share's mean of
//	          (u - M)² (the global biased variance, two-pass as tf.nn.moments);
//	backward: du = ∂L_r/∂u + (G_M + 2(u - M)·G_V) / N, where G_M and G_V are
//	          the sums over the replicas of ∂L_s/∂M and ∂L_s/∂V and N is the
//	          global batch's values per channel.
//
// The second term is what one process's automatic differentiation gives
// through the batch's mean and variance (dM/du = 1/N, dV/du = 2(u - M)/N,
// the variance's path through the mean being zero, as in tf.nn.moments), with
// the other replicas' shares of the batch included. The C API's gradients
// cannot carry a sum over replicas, so the backward pass is built in
// segments, from the cost down to the top normalisation's input, from there
// to the next one's, and so on: each segment's gradient with respect to the
// normalisation's input becomes, after the exchange, the next segment's
// incoming gradient (AddGradients' dx).
//
// The exchanges go through FIFO queues on the parameter server that holds the
// normalisation's moving mean, one queue per receiving replica: every replica
// puts (its rank, its value) in each replica's queue and takes all of them
// from its own, and sums them in rank order, so that every replica gets the
// same bits. A replica cannot start a step before the chief has taken every
// replica's gradients of the last one (the token queues), and each replica's
// gradients wait on its takes, so one step's values never mix with the next.

// syncNorm is one batch normalisation of a replicated training path: its
// variables and input, the global statistics it normalised with, the shape
// of those, and the scope and device its exchanges use.
type syncNorm struct {
	key            string // the layer's scope: "conv1", "fc1"
	bn             *batchNormVars
	u              tf.Output
	mean, variance tf.Output
	channels       int64
	scope          *op.Scope
	device         string
}

// allReduce returns the sum over the replicas of v (shape), or their mean
// with mean set, through queues named under key.
func (b *builder) allReduce(s *op.Scope, device, key string, v tf.Output, shape []int64, mean bool) tf.Output {
	r := b.opt.Replication
	qs := s.WithDevice(device)
	rank := op.Const(s.SubScope("rank"), int32(r.Rank))
	types := []tf.DataType{tf.Int32, tf.Float}
	var sends []*tf.Operation
	var mine tf.Output
	for t := range r.Replicas {
		q := op.FIFOQueueV2(qs.SubScope(fmt.Sprintf("queue_%d", t)), types,
			op.FIFOQueueV2SharedName(fmt.Sprintf("tfcat_sync/%s/to_%d", key, t)),
			op.FIFOQueueV2Shapes([]tf.Shape{tf.ScalarShape(), tf.MakeShape(shape...)}))
		sends = append(sends, op.QueueEnqueueV2(qs.SubScope(fmt.Sprintf("send_%d", t)), q, []tf.Output{rank, v}))
		if t == r.Rank {
			mine = q
		}
	}
	got := op.QueueDequeueManyV2(qs.WithControlDependencies(sends...).SubScope("receive"), mine,
		op.Const(s.SubScope("replicas"), int32(r.Replicas)), types)
	// Row k of got[1] came from replica got[0][k]: put them in rank order.
	ordered := op.Gather(s.SubScope("in_rank_order"), got[1], op.InvertPermutation(s, got[0]))
	sum := op.Sum(s.SubScope("sum"), ordered, op.Const(s.SubScope("over_replicas"), int32(0)))
	if !mean {
		return sum
	}
	return op.RealDiv(s.SubScope("mean"), sum, op.Const(s.SubScope("count"), float32(r.Replicas)))
}

// syncMoments is batchNorm's training statistics on a cluster: the global
// batch's mean and biased variance of x over axes, recorded for the
// segmented backward pass.
func (b *builder) syncMoments(s *op.Scope, x tf.Output, bn *batchNormVars, axes []int32) (mean, variance tf.Output) {
	key := strings.TrimSuffix(bn.mean.Name, bnMeanSuffix)
	device := b.devices[bn.mean.Name]
	shape := bn.mean.Shape
	ax := op.Const(s.SubScope("axes"), axes)
	mean = b.allReduce(s.SubScope("global_mean"), device, "bn/"+key+"/mean", op.Mean(s.SubScope("share_mean"), x, ax), shape, true)
	sq := op.SquaredDifference(s, x, mean)
	variance = b.allReduce(s.SubScope("global_variance"), device, "bn/"+key+"/variance", op.Mean(s.SubScope("share_variance"), sq, ax), shape, true)
	b.syncNorms = append(b.syncNorms, syncNorm{key: key, bn: bn, u: x, mean: mean, variance: variance, channels: shape[0], scope: s, device: device})
	return mean, variance
}

// inputGradient is du for one normalisation, from this replica's partial
// gradients with respect to its input and the global statistics.
func (b *builder) inputGradient(n syncNorm, du, dMean, dVariance tf.Output) tf.Output {
	s := n.scope.SubScope("sync_grad")
	both := op.Pack(s, []tf.Output{dMean, dVariance})
	sums := op.Unpack(s, b.allReduce(s.SubScope("sums"), n.device, "bn/"+n.key+"/grad", both, []int64{2, n.channels}, false), 2)
	// N: this share's values per channel times the replicas.
	share := op.RealDiv(s.SubScope("share_count"), op.Cast(s, op.Size(s, n.u), tf.Float), op.Const(s.SubScope("channels"), float32(n.channels)))
	count := op.Mul(s.SubScope("count"), share, op.Const(s.SubScope("replicas"), float32(b.opt.Replication.Replicas)))
	centred := op.Sub(s.SubScope("centred"), n.u, n.mean)
	two := op.Const(s.SubScope("two"), float32(2))
	cross := op.AddV2(s.SubScope("cross"), sums[0], op.Mul(s.SubScope("through_variance"), op.Mul(s, centred, two), sums[1]))
	return op.AddV2(s.SubScope("du"), du, op.RealDiv(s.SubScope("per_value"), cross, count))
}

// syncGradientsOf is AddGradients(cost, xs) for a training path with
// synchronised batch normalisations (see the top of this file): one segment
// per normalisation, from the top down. Each x must be used between two
// normalisations' inputs only (true of tfcat's networks, a chain of layers);
// one that is used on both sides of one is refused.
func (b *builder) syncGradientsOf(cost tf.Output, xs []tf.Output) ([]tf.Output, error) {
	var buf bytes.Buffer
	if _, err := b.g.WriteTo(&buf); err != nil {
		return nil, err
	}
	gd := &graphpb.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		return nil, err
	}
	g := newNodeGraph(gd)
	above := func(o tf.Output) map[int]bool {
		i, ok := g.idx[o.Op.Name()]
		if !ok {
			return map[int]bool{}
		}
		return g.dataAncestors([]int{i})
	}
	grads := make([]tf.Output, len(xs))
	done := make([]bool, len(xs))
	top, dTop := cost, []tf.Output(nil)
	for l := len(b.syncNorms) - 1; l >= -1; l-- {
		upper, lower := above(top), map[int]bool{}
		var seg []tf.Output
		if l >= 0 {
			n := b.syncNorms[l]
			lower, seg = above(n.u), []tf.Output{n.u, n.mean, n.variance}
		}
		fixed := len(seg)
		var idx []int
		for i, x := range xs {
			j, ok := g.idx[x.Op.Name()]
			if !ok || done[i] || !upper[j] {
				continue
			}
			if lower[j] {
				for _, c := range g.out[j] {
					if upper[c] && !lower[c] {
						return nil, fmt.Errorf("gradients: %s is read on both sides of %s's batch normalisation", x.Op.Name(), b.syncNorms[l].key)
					}
				}
				continue
			}
			idx, seg = append(idx, i), append(seg, x)
		}
		out, err := b.g.AddGradients("", []tf.Output{top}, seg, dTop)
		if err != nil {
			return nil, gradientError(err)
		}
		for k, i := range idx {
			grads[i], done[i] = out[fixed+k], true
		}
		if l >= 0 {
			n := b.syncNorms[l]
			top, dTop = n.u, []tf.Output{b.inputGradient(n, out[0], out[1], out[2])}
			if err := b.s.Err(); err != nil {
				return nil, err
			}
		}
	}
	for i, ok := range done {
		if !ok {
			return nil, fmt.Errorf("gradients: %s is not on the training path", xs[i].Op.Name())
		}
	}
	return grads, nil
}
