package tfgraph

import (
	"fmt"
	"maps"
	"slices"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/internal/tfc"
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
// cannot carry a sum over replicas, so the backward pass is built in stages,
// one per normalisation from the top down (syncGradientsOf): each stage takes
// the gradients of the tensors that cross from the part of the graph below
// the normalisations not yet done into the rest, given theirs at the stage
// before (AddGradients' dx), and the normalisation's input gradient gains the
// second term after its exchange. A chain of layers crosses at the
// normalisation's input alone; a residual connection adds its skipped tensor.
//
// The exchanges go through FIFO queues on the parameter server that holds the
// normalisation's moving mean, one queue per receiving replica: every replica
// puts (its rank, its value) in each replica's queue and takes all of them
// from its own, and sums them in rank order, so that every replica gets the
// same bits. A replica cannot start a step before the chief has taken every
// replica's gradients of the last one (the token queues), and each replica's
// gradients wait on its takes, so one step's values never mix with the next.

// syncNorm is one batch normalisation of a replicated training path: its
// input, the global statistics it normalised with, their shape, the scope
// and device its exchanges use, and the chief's update of its moving
// averages.
type syncNorm struct {
	key            string // names its exchanges and accumulators: "conv1", "base/Conv_1_bn"
	u              tf.Output
	mean, variance tf.Output
	channels       int64
	scope          *op.Scope
	device         string
	// update returns the assignments that move the moving averages
	// towards a step's mean and variance (the replicas' accumulated ones,
	// in the chief's update).
	update func(s *op.Scope, mean, variance tf.Output) []*tf.Operation
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

// syncMoments returns the global batch's mean and biased variance of x over
// axes, and records the normalisation n (its key, channels, device and
// update) for the backward pass and the chief's update.
func (b *builder) syncMoments(s *op.Scope, x tf.Output, axes []int32, n syncNorm) (mean, variance tf.Output) {
	shape := []int64{n.channels}
	ax := op.Const(s.SubScope("axes"), axes)
	mean = b.allReduce(s.SubScope("global_mean"), n.device, "bn/"+n.key+"/mean", op.Mean(s.SubScope("share_mean"), x, ax), shape, true)
	sq := op.SquaredDifference(s, x, mean)
	variance = b.allReduce(s.SubScope("global_variance"), n.device, "bn/"+n.key+"/variance", op.Mean(s.SubScope("share_variance"), sq, ax), shape, true)
	n.u, n.mean, n.variance, n.scope = x, mean, variance, s
	b.syncNorms = append(b.syncNorms, n)
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
// synchronised batch normalisations (see the top of this file). The
// normalisations are taken from the top down (sorted by their inputs'
// ancestors, which nest); at each stage "lower" is every node the inputs of
// the normalisations not yet done read, and the crossing tensors are those
// lower produces and a node of the training path outside it reads. Each
// crossing tensor gets an Identity that those readers read instead, so that
// its gradient counts only the paths that leave lower there (one crossing
// tensor may be read by another: a residual connection's skipped input and
// the convolution of the same input). The stage's AddGradients goes from
// the last stage's Identities to this stage's, the normalisation's
// statistics and the variables that leave lower; the normalisation's input
// gradient then gains the other replicas' part.
func (b *builder) syncGradientsOf(cost tf.Output, xs []tf.Output) ([]tf.Output, error) {
	gd, err := graphDef(b.g)
	if err != nil {
		return nil, err
	}
	g := newNodeGraph(gd)
	names := make([]string, len(gd.Node))
	for i, n := range gd.Node {
		names[i] = n.Name
	}
	node := func(o tf.Output) int {
		if i, ok := g.idx[o.Op.Name()]; ok {
			return i
		}
		return -1
	}
	norms := slices.Clone(b.syncNorms)
	anc := map[string]map[int]bool{}
	for _, n := range norms {
		anc[n.key] = g.dataAncestors([]int{node(n.u)})
	}
	slices.SortStableFunc(norms, func(a, c syncNorm) int { return len(anc[a.key]) - len(anc[c.key]) })
	// lowers[i]: what the inputs of norms[0..i] read.
	lowers := make([]map[int]bool, len(norms))
	for i, n := range norms {
		lowers[i] = maps.Clone(anc[n.key])
		if i > 0 {
			maps.Copy(lowers[i], lowers[i-1])
		}
	}
	onPath := g.dataAncestors([]int{node(cost)})
	isVar := map[string]int{}
	for i, x := range xs {
		isVar[tensorKey(x)] = i
	}
	grads := make([]tf.Output, len(xs))
	done := make([]bool, len(xs))
	var ys, dys []tf.Output // the last stage's Identities and their gradients; the cost at first
	ys = []tf.Output{cost}
	cs := b.s.SubScope("sync_cross")
	for i := len(norms) - 1; i >= -1; i-- {
		lower := map[int]bool{}
		if i >= 0 {
			lower = lowers[i]
		}
		// The crossing tensors, in node order (every replica builds the
		// same graph), each behind an Identity read by its readers outside.
		var want []tf.Output
		cross := map[string]tf.Output{} // a crossing tensor's key: its Identity
		path := slices.Sorted(maps.Keys(onPath))
		for _, c := range path {
			if lower[c] {
				continue
			}
			for p, e := range g.in[c] {
				if e.control || !lower[e.node] {
					continue
				}
				t := b.g.Operation(names[e.node]).Output(e.out)
				if t.DataType() != tf.Float {
					continue
				}
				id, ok := cross[tensorKey(t)]
				if !ok {
					id = op.Identity(cs.SubScope("cross"), t)
					if err := b.s.Err(); err != nil {
						return nil, err
					}
					cross[tensorKey(t)] = id
					want = append(want, id)
					g.idx[id.Op.Name()] = len(names)
					names = append(names, id.Op.Name())
					g.in = append(g.in, []edge{{node: e.node, out: e.out}})
					g.out = append(g.out, nil)
					onPath[len(names)-1] = true
				}
				if err := tfc.UpdateEdge(b.g, id, b.g.Operation(names[c]), p); err != nil {
					return nil, fmt.Errorf("gradients: %w", err)
				}
				g.in[c][p] = edge{node: g.idx[id.Op.Name()], out: 0}
			}
		}
		var n syncNorm
		if i >= 0 {
			n = norms[i]
			want = append(want, n.mean, n.variance)
		}
		for j, x := range xs {
			if !done[j] && !lower[node(x)] {
				want = append(want, x)
			}
		}
		out, err := b.g.AddGradients("", ys, want, dys)
		if err != nil {
			return nil, gradientError(err)
		}
		ys, dys = nil, []tf.Output{}
		total := map[string]tf.Output{}
		for k, w := range want {
			if tfc.NoGradient(out[k]) {
				continue
			}
			key := tensorKey(w)
			total[key] = out[k]
			if j, isX := isVar[key]; isX && !lower[node(w)] {
				grads[j], done[j] = out[k], true
			} else if i < 0 || (key != tensorKey(n.mean) && key != tensorKey(n.variance)) {
				ys, dys = append(ys, w), append(dys, out[k])
			}
		}
		if i < 0 {
			break
		}
		u, ok := cross[tensorKey(n.u)]
		du, dMean, dVariance := total[tensorKey(u)], total[tensorKey(n.mean)], total[tensorKey(n.variance)]
		if !ok || du.Op == nil || dMean.Op == nil || dVariance.Op == nil {
			return nil, fmt.Errorf("gradients: batch norm %s: no gradient reaches its input or statistics", n.key)
		}
		full := b.inputGradient(n, du, dMean, dVariance)
		for k := range ys {
			if tensorKey(ys[k]) == tensorKey(u) {
				dys[k] = full
			}
		}
		if err := b.s.Err(); err != nil {
			return nil, err
		}
	}
	for j, ok := range done {
		if !ok {
			return nil, fmt.Errorf("gradients: %s is not on the training path", xs[j].Op.Name())
		}
	}
	return grads, nil
}

func tensorKey(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }
