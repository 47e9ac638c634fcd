package trainer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/tfcat/tfcat/cluster"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// globalBatch is the images one step takes in all replicas.
func (r *run) globalBatch() int { return r.opt.BatchSize * max(r.replicas, 1) }

// pollEvery is how often a waiting parameter server looks at its peers.
const pollEvery = 2 * time.Second

// onCluster runs this process's part of a distributed run: the parameter
// server serves the variables until the chief is done; the chief trains,
// reports and saves as Train does alone; the other replicas train.
func (r *run) onCluster(ctx context.Context) error {
	o := &r.opt
	c := o.Cluster
	if err := c.Check(o.AllowPublicCluster); err != nil {
		return err
	}
	target, err := c.Start(o.Session.IntraOpThreads)
	if err != nil {
		return err
	}
	cfg := o.Session
	cfg.Target, cfg.DeviceFilters = target, c.DeviceFilters()
	if c.Task.Type == cluster.PS {
		r.setHooks(true)
		return r.serveVariables(ctx, cfg)
	}
	replicas := c.Replicas()
	r.replicas = len(replicas)
	rank := 0
	for i, t := range replicas {
		if t == c.Task {
			rank = i
		}
	}
	if rank > 0 {
		r.setHooks(true) // the chief's hooks only run on the chief
	}
	watch := c.NewWatch(c.Others())
	// Sessions on a cluster wait for the tasks they use: wait here, bounded,
	// for the parameter servers, so that a missing one is named.
	if err := waitFor(ctx, c, c.NewWatch(psTasks(c)), o.ClusterTimeout); err != nil {
		return err
	}
	cfg.OperationTimeout = o.ClusterTimeout
	if rank == 0 && o.Resume {
		// The checkpoint opens in a local session (o.Session is still the
		// local config): it becomes the local copy that initialises the
		// cluster's variables and saves; the cluster's session is built below.
		if err := r.resume(); err != nil {
			return err
		}
		r.local, r.sess = r.sess, nil
	}
	if o.Base != nil {
		// Every replica reads the backbone: it runs it on its own share,
		// with its own copy of the frozen weights (the head's variables are
		// on the parameter servers).
		if err := r.openBase(); err != nil {
			return err
		}
	}
	local := o.Session
	o.Session = cfg
	if err := r.load(); err != nil {
		return err
	}
	net := r.network()
	if r.local != nil {
		net = r.local.Model.Net
	}
	rep := &tfgraph.Replication{PSTasks: len(c.Jobs[cluster.PS]), Replicas: r.replicas, PSJob: cluster.PS, Rank: rank}
	if n, isGPU := tfsession.GPUIndex(o.Session.Device); isGPU {
		// A replica's compute on its GPU; the variables stay on the ps.
		rep.Compute = fmt.Sprintf("%s/device:GPU:%d", c.Task.Device(), n)
	}
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: o.Seed, Replication: rep, ScheduledLearningRate: o.Schedule.Scheduled(),
		Base: r.backbone, UnfusedGradients: o.UnfusedGradients, LossScale: o.lossScale(), FineTune: o.fineTune()})
	if err != nil {
		return fineTuneError(err)
	}
	if r.sess, err = tfsession.NewSession(m, cfg); err != nil {
		return err
	}
	if r.backbone != nil && r.backbone.Variables != "" {
		// This task's copy of the backbone's weights, from its SavedModel
		// (a resumed checkpoint holds the same: they are frozen).
		if err := r.sess.InitBase(); err != nil {
			return err
		}
	}
	blame := func(err error) error { return blameGone(err, watch) }
	if rank > 0 {
		return blame(r.replicate(ctx, rank, watch))
	}
	if err := r.initCluster(net, local); err != nil {
		return blame(err)
	}
	return r.lead(ctx, blame)
}

// lead is the chief's part: the loop of Train, whose step releases the step
// to the other replicas, adds the chief's share of the gradients and
// applies the replicas' mean.
func (r *run) lead(ctx context.Context, blame func(error) error) error {
	// The chief's share of each global batch: sliced from the whole batch,
	// which its epoch reports evaluate as one process does; streamed, only
	// its share is decoded (and the epoch reports evaluate that share).
	own := &pixels.Batch{}
	share := func(b *pixels.Batch) *pixels.Batch { return slice(b, own, 0, r.replicas) }
	if r.opt.Stream {
		if err := r.trainBatches(0, r.replicas); err != nil {
			return err
		}
		share = func(b *pixels.Batch) *pixels.Batch { return b }
	}
	r.stepper = &chiefStep{sess: r.sess, local: r.local, share: share, blame: blame}
	return r.train(ctx)
}

// initCluster sets the cluster's variables from the local copy: the
// checkpoint resumed, or a model initialised as one process would be.
func (r *run) initCluster(net network.Network, local tfsession.SessionConfig) error {
	if r.local == nil {
		m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: r.opt.Seed, ScheduledLearningRate: r.opt.Schedule.Scheduled(),
			Base: r.backbone, UnfusedGradients: r.opt.UnfusedGradients, FineTune: r.opt.fineTune()})
		if err != nil {
			return fineTuneError(err)
		}
		if r.local, err = tfsession.NewSession(m, local); err != nil {
			return err
		}
		if err := r.local.Init(); err != nil {
			return err
		}
		if r.backbone != nil && r.backbone.Variables != "" {
			if err := r.local.InitBase(); err != nil {
				return err
			}
		}
	}
	vals, err := r.local.VariableValues()
	if err != nil {
		return err
	}
	if err := r.sess.SetVariables(vals); err != nil {
		return fmt.Errorf("initialising the cluster's variables: %w", err)
	}
	return r.sess.InitLossScale()
}

// replicate is a replica other than the chief: it waits for the chief's
// token, computes its share of that step's global batch (augmented as the
// whole batch would be), adds its gradients, and again, until the chief says
// stop.
func (r *run) replicate(ctx context.Context, rank int, watch *cluster.Watch) error {
	if err := r.cacheFeatures(); err != nil {
		return err
	}
	if err := r.trainBatches(rank, r.replicas); err != nil {
		return err
	}
	r.start = time.Now()
	for {
		token, err := r.next(ctx, rank, watch)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			r.res.Reason = Interrupted
			return nil
		}
		if err != nil {
			return err
		}
		if token < 0 {
			r.res.Reason = Completed
			return r.emit(Event{Kind: Done, Step: r.res.Step})
		}
		if r.res.Step == 0 && r.res.StartStep == 0 {
			r.res.StartStep = int(token)
		}
		b, err := r.trainSrc.next()
		if err != nil {
			return fmt.Errorf("step %d: training batch: %w", token+1, err)
		}
		if err := r.sess.SyncApply(b, int(token)); err != nil {
			return err
		}
		r.res.Step = int(token) + 1
		if err := r.emit(Event{Kind: Step, Step: r.res.Step, Elapsed: time.Since(r.start)}); err != nil {
			return err
		}
	}
}

// next waits for replica rank's next token, looking at the peers whenever
// the wait times out: a peer gone for longer than the cluster timeout ends
// the wait with its name.
func (r *run) next(ctx context.Context, rank int, watch *cluster.Watch) (int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		token, err := r.sess.SyncNext(rank)
		if err == nil {
			return token, nil
		}
		if gone := watch.Check(r.opt.ClusterTimeout); gone != nil {
			return 0, gone
		}
		if !isTimeout(err) {
			return 0, fmt.Errorf("waiting for the chief: %w", err)
		}
	}
}

// serveVariables is a parameter server's whole run: it hosts the variables
// and waits on its done queue until the chief has finished, or until a peer
// has been gone for longer than the cluster timeout.
func (r *run) serveVariables(ctx context.Context, cfg tfsession.SessionConfig) error {
	c := r.opt.Cluster
	w, err := tfgraph.NewPSWait(cluster.PS, c.Task.Index)
	if err != nil {
		return err
	}
	cfg.OperationTimeout = pollEvery
	sess, err := tfsession.NewGraphSession(w.Graph, cfg)
	if err != nil {
		return err
	}
	defer closeWithin(sess, 5*time.Second)
	watch := c.NewWatch(c.Replicas())
	for {
		if err := ctx.Err(); err != nil {
			r.res.Reason = Interrupted
			return nil
		}
		err := sess.Run(w.Wait)
		if err == nil {
			// Stay until the replicas have closed their sessions, which
			// talk to this server one last time (bounded by the timeout).
			for end := time.Now().Add(r.opt.ClusterTimeout); time.Now().Before(end) && len(watch.Unreachable()) < len(c.Replicas()); {
				time.Sleep(100 * time.Millisecond)
			}
			r.res.Reason = Completed
			return r.emit(Event{Kind: Done})
		}
		if !isTimeout(err) {
			return fmt.Errorf("%s: waiting for the chief: %w", c.Task, err)
		}
		if gone := watch.Check(r.opt.ClusterTimeout); gone != nil {
			return gone
		}
	}
}

func psTasks(c *cluster.Config) []cluster.Task {
	var ts []cluster.Task
	for i := range c.Jobs[cluster.PS] {
		ts = append(ts, cluster.Task{Type: cluster.PS, Index: i})
	}
	return ts
}

// waitFor waits until every watched task answers, or one has not for limit.
func waitFor(ctx context.Context, c *cluster.Config, w *cluster.Watch, limit time.Duration) error {
	for {
		if len(w.Unreachable()) == 0 {
			return nil
		}
		if err := w.Check(limit); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// blameGone turns a failed run into the name of the peer that is gone, when
// one is: TensorFlow's own message then says little.
func blameGone(err error, watch *cluster.Watch) error {
	if err == nil {
		return nil
	}
	var gone *cluster.GoneError
	if errors.As(err, &gone) || errors.Is(err, context.Canceled) {
		return err
	}
	if gone := watch.Unreachable(); len(gone) > 0 {
		return gone[0] // TensorFlow's own message says less
	}
	return err
}

// isTimeout reports whether a run ended at the session's operation timeout.
func isTimeout(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "timed out") || strings.Contains(msg, "deadline")
}

// slice points part at replica i's share of the global batch b.
func slice(b, part *pixels.Batch, i, n int) *pixels.Batch {
	per := b.N / n
	img, k := len(b.X)/max(b.N, 1), len(b.Y)/max(b.N, 1)
	part.N = per
	part.X = b.X[i*per*img : (i+1)*per*img]
	part.Y = b.Y[i*per*k : (i+1)*per*k]
	if len(b.Labels) >= b.N {
		part.Labels = b.Labels[i*per : (i+1)*per]
	}
	if len(b.Paths) >= b.N {
		part.Paths = b.Paths[i*per : (i+1)*per]
	}
	return part
}

// closeWithin closes s, waiting at most d: TensorFlow's close of a cluster
// session blocks while a task it used is unreachable.
func closeWithin(s interface{ Close() error }, d time.Duration) {
	if s == nil || reflect.ValueOf(s).IsNil() {
		return
	}
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
