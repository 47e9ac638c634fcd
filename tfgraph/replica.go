package tfgraph

import (
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
)

// Replication builds the graph for synchronous data-parallel training on a
// TensorFlow cluster, as TF1's replica_device_setter and
// SyncReplicasOptimizer did: every replica builds the same graph; the
// trainable variables go to the parameter servers round-robin in creation
// order (each Adam slot with its variable, the beta powers with the first);
// everything else runs on the task whose session runs it. Each step every
// replica feeds its slice of the global batch and adds its gradients (and its
// loss) to a ConditionalAccumulator beside each variable; the chief takes the
// mean of Replicas gradients and applies Adam once; token queues keep the
// other replicas in step.
type Replication struct {
	// PSTasks is the number of parameter servers, Replicas the number of
	// tasks that train (the chief first).
	PSTasks, Replicas int
	// PSJob names the parameter servers' job ("ps").
	PSJob string
	// Compute, when set, is the device of everything but the variables and
	// their updates, such as "/job:worker/task:1/device:GPU:0"; empty leaves
	// it to TensorFlow's placement on the task that runs the session.
	Compute string
	// Rank is this task's place among the replicas (the chief is 0): each
	// replica draws its dropout masks from its own seeds, so that the
	// replicas' shares of a global batch get independent masks, as the
	// images of one process's batch do.
	Rank int
}

// SyncOps are the nodes of a replicated graph that the replicas run. Node
// names are under "sync/".
type SyncOps struct {
	// LocalStep (int64) is fed with the global step a replica computes.
	LocalStep tf.Output
	// Apply adds this replica's gradients and loss to the accumulators.
	Apply *tf.Operation
	// MeanLoss is the step's loss averaged over the replicas, taken from its
	// accumulator; the chief fetches it with the Model's Train op, which
	// takes the mean gradients and applies Adam once.
	MeanLoss tf.Output
	// Token (int64) is fed to Release: it puts the token in every other
	// replica's queue (the next step's number, or -1 to stop).
	Token   tf.Output
	Release *tf.Operation
	// Next[r] dequeues replica r's next token (r ≥ 1).
	Next []tf.Output
	// Done puts one element in every parameter server's done queue.
	Done *tf.Operation
}

func (r *Replication) psDevice(k int) string {
	job := r.PSJob
	if job == "" {
		job = "ps"
	}
	return fmt.Sprintf("/job:%s/task:%d", job, k)
}

// devices places the variables of net's training graph by name.
func (r *Replication) devices(net network.Network) map[string]string {
	if r == nil || r.PSTasks <= 0 {
		return nil
	}
	d := map[string]string{}
	for i := range net.VariableShapes() {
		dev := r.psDevice(i % r.PSTasks)
		name := network.VariableName(i)
		d[name], d[name+adamMSuffix], d[name+adamVSuffix] = dev, dev, dev
	}
	d[network.Beta1PowerName], d[network.Beta2PowerName] = d[network.VariableName(0)], d[network.VariableName(0)]
	// The loss scale (float16 training), which every replica multiplies its
	// cost by and the chief updates: on the first parameter server.
	d[lossScaleName], d[lossScaleGood] = r.psDevice(0), r.psDevice(0)
	if net.BatchNorm {
		// Batch normalisation's variables too, round-robin after the
		// others: gamma and beta with their Adam slots, the moving averages.
		k := len(net.VariableShapes())
		names := net.LayerNames()
		for _, layer := range names[:len(names)-1] {
			for _, suffix := range []string{bnGammaSuffix, bnBetaSuffix, bnMeanSuffix, bnVarianceSuffix} {
				dev := r.psDevice(k % r.PSTasks)
				k++
				name := layer + suffix
				d[name], d[name+adamMSuffix], d[name+adamVSuffix] = dev, dev, dev
			}
		}
	}
	return d
}

// syncGradients adds the accumulators, the token and done queues, and
// returns the mean gradients that Adam applies in place of grads.
func (b *builder) syncGradients(m *Model, vars []*Variable, grads []tf.Output) ([]tf.Output, error) {
	r := b.opt.Replication
	if r.PSTasks <= 0 || r.Replicas <= 0 {
		return nil, fmt.Errorf("replication needs parameter servers and replicas, not %d and %d", r.PSTasks, r.Replicas)
	}
	s := b.s.SubScope("sync")
	sync := &SyncOps{}
	sync.LocalStep = op.Placeholder(s.SubScope("local_step"), tf.Int64, op.PlaceholderShape(tf.ScalarShape()))
	n := op.Const(s.SubScope("replicas"), int32(r.Replicas))
	mean := make([]tf.Output, len(vars))
	var applies []*tf.Operation
	accumulate := func(name, dev string, shape tf.Shape, value tf.Output) tf.Output {
		ds := s.WithDevice(dev).SubScope(name)
		acc := op.ResourceConditionalAccumulator(ds, tf.Float, shape,
			op.ResourceConditionalAccumulatorSharedName("tfcat_sync/"+name), op.ResourceConditionalAccumulatorReductionType("MEAN"))
		applies = append(applies, op.ResourceAccumulatorApplyGradient(ds, acc, sync.LocalStep, value))
		return op.ResourceAccumulatorTakeGradient(ds, acc, n, tf.Float)
	}
	for i, v := range vars {
		mean[i] = accumulate(v.Name, b.devices[v.Name], tf.MakeShape(v.Shape...), grads[i])
	}
	sync.MeanLoss = accumulate("loss", r.psDevice(0), tf.ScalarShape(), m.Cost)
	// Batch normalisation: every replica normalised its share with the
	// global batch's mean and variance (syncbn.go) and adds them here; the
	// chief's update moves the moving averages towards them once per step,
	// as one process does with the whole batch. (The replicas' values are
	// the same bits: their mean is the value.)
	for _, n := range b.syncNorms {
		shape := tf.MakeShape(n.channels)
		mean := accumulate("bn/"+n.key+"/moving_mean", n.device, shape, n.mean)
		variance := accumulate("bn/"+n.key+"/moving_variance", n.device, shape, n.variance)
		us := s.WithDevice(n.device).SubScope(strings.ReplaceAll(n.key, "/", "_") + "_global")
		m.updates = append(m.updates, n.update(us, mean, variance)...)
	}
	sync.Apply = s.AddOperation(tf.OpSpec{Type: "NoOp", Name: "apply", ControlDependencies: applies})

	// One token queue per replica other than the chief, on the first ps: a
	// shared queue would let a fast replica take two tokens in one step.
	sync.Token = op.Placeholder(s.SubScope("token"), tf.Int64, op.PlaceholderShape(tf.ScalarShape()))
	qs := s.WithDevice(r.psDevice(0))
	var enqueues []*tf.Operation
	sync.Next = make([]tf.Output, r.Replicas)
	for i := 1; i < r.Replicas; i++ {
		q := op.FIFOQueueV2(qs.SubScope(fmt.Sprintf("token_queue_%d", i)), []tf.DataType{tf.Int64},
			op.FIFOQueueV2SharedName(fmt.Sprintf("tfcat_sync/token_queue_%d", i)), op.FIFOQueueV2Shapes([]tf.Shape{tf.ScalarShape()}))
		enqueues = append(enqueues, op.QueueEnqueueV2(qs.SubScope(fmt.Sprintf("release_%d", i)), q, []tf.Output{sync.Token}))
		sync.Next[i] = op.QueueDequeueV2(qs.SubScope(fmt.Sprintf("next_%d", i)), q, []tf.DataType{tf.Int64})[0]
	}
	sync.Release = s.AddOperation(tf.OpSpec{Type: "NoOp", Name: "release", ControlDependencies: enqueues})
	var dones []*tf.Operation
	for k := range r.PSTasks {
		ds := s.WithDevice(r.psDevice(k))
		q := doneQueue(ds, k)
		dones = append(dones, op.QueueEnqueueV2(ds.SubScope(fmt.Sprintf("done_%d", k)), q, []tf.Output{op.Const(ds.SubScope(fmt.Sprintf("done_value_%d", k)), int32(1))}))
	}
	sync.Done = s.AddOperation(tf.OpSpec{Type: "NoOp", Name: "done", ControlDependencies: dones})
	m.Sync = sync
	return mean, b.s.Err()
}

// doneQueue is parameter server k's queue on which it waits for the end of
// training: the chief puts one element in it when it is done.
func doneQueue(s *op.Scope, k int) tf.Output {
	return op.FIFOQueueV2(s.SubScope(fmt.Sprintf("done_queue_%d", k)), []tf.DataType{tf.Int32},
		op.FIFOQueueV2SharedName(fmt.Sprintf("tfcat_sync/done_queue_%d", k)), op.FIFOQueueV2Shapes([]tf.Shape{tf.ScalarShape()}))
}

// PSWait is the graph a parameter server runs while it serves: Wait dequeues
// from its done queue, blocking until the chief has finished.
type PSWait struct {
	Graph *tf.Graph
	Wait  tf.Output
}

// NewPSWait builds parameter server k's wait graph, with job psJob.
func NewPSWait(psJob string, k int) (*PSWait, error) {
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g).WithDevice((&Replication{PSJob: psJob}).psDevice(k)).SubScope("sync")
	q := doneQueue(s, k)
	w := op.QueueDequeueV2(s.SubScope("wait"), q, []tf.DataType{tf.Int32})[0]
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building the parameter server's graph: %w", tfc.ScopeErr(err))
	}
	return &PSWait{Graph: g, Wait: w}, nil
}
