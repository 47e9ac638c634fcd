package trainer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tensorboard"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// Result is what a run reached.
type Result struct {
	// Step is the step count reached, counting a resumed checkpoint's.
	Step int
	// StartStep is where the run began (0, or the resumed checkpoint's).
	StartStep int
	// Checkpoint is the prefix of the last checkpoint written, "" if none,
	// and CheckpointStep the step it holds.
	Checkpoint     string
	CheckpointStep int
	// Reason says why the run ended: Completed, Interrupted (saved),
	// EarlyStop (saved) or Failed (saved when a step had completed).
	Reason Reason
	// Classes are the class names in label order.
	Classes []string
}

// Train trains a classifier on the class folders in opt.Data and saves it in
// the tutorial's checkpoint format in opt.ModelDir: after the first step of
// every epoch and at the end. Cancelling ctx stops it after the current step;
// the last completed step is then saved and Train returns a nil error with
// Reason Interrupted. On any other error it saves what it learned (when a
// step completed) and returns the error with the Result.
func Train(ctx context.Context, opt Options) (*Result, error) {
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	r := &run{opt: opt, res: &Result{}}
	defer r.close()
	r.history = keepHistory(&r.opt)
	defer r.history.close()
	if opt.LogDir != "" {
		var err error
		if r.tb, err = tensorboard.NewWriter(opt.LogDir); err != nil {
			return nil, err
		}
	}
	r.setHooks(false)
	if opt.Cluster != nil {
		err := r.onCluster(ctx)
		return r.res, err
	}
	if opt.Resume {
		if err := r.resume(); err != nil {
			return nil, err
		}
	} else if opt.Base != nil {
		if err := r.openBase(); err != nil {
			return nil, err
		}
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	if r.sess == nil {
		if err := r.build(); err != nil {
			return nil, err
		}
	}
	if err := r.history.fineTune(r.sess.Model, r.res.StartStep); err != nil {
		return nil, err
	}
	err := r.train(ctx)
	return r.res, err
}

// run is one call of Train.
type run struct {
	opt   Options
	res   *Result
	sess  *tfsession.Session
	set   *dataset.Set
	steps int // the step count to reach
	perEp int // the tutorial's int(num_train/batch_size)

	trainSrc, validSrc *prefetcher
	validN             int // validation batch size
	validBatches       int

	tb      *tensorboard.Writer // nil without LogDir
	history *history            // nil with NoHistory
	// hookList is the hooks emit calls (hooks.go); stop is set when one
	// asked to stop (Stopped, or EarlyStop from the early-stop hook).
	hookList []Hook
	stop     Reason

	// The loop's step (step.go) and the trainer's own hooks, installed by
	// startLoop: the schedule (nil for a constant learning rate), early
	// stopping and keep-best (nil without a validation split), checkpoints.
	stepper  stepper
	schedule *scheduleHook
	early    *earlyStopHook
	best     *keepBestHook
	ckpt     *checkpointHook

	// On a cluster (distributed.go): the local copy of the network that
	// initialises the parameter servers and writes checkpoints, and the
	// number of replicas.
	local    *tfsession.Session
	replicas int

	resumed []byte // the resumed checkpoint's trainer state (state.go)
	start   time.Time

	backbone *backbone.Backbone // Base: the backbone read, and its record
	base     *network.Base
}

func (r *run) close() {
	if r.ckpt != nil && r.ckpt.pending != nil {
		<-r.ckpt.pending // the write uses the session
	}
	if r.trainSrc != nil {
		r.trainSrc.close()
	}
	if r.validSrc != nil {
		r.validSrc.close()
	}
	if r.opt.Cluster != nil {
		// Closing a cluster session waits for every task it used, for ever
		// when one is gone: give it a moment, then leave it to the exit.
		closeWithin(r.sess, 5*time.Second)
	} else {
		r.sess.Close()
	}
	r.local.Close()
	if r.tb != nil {
		r.tb.Close()
	}
}

// setHooks sets the hooks emit calls: all of them, or a replica's.
func (r *run) setHooks(replica bool) { r.hookList = r.hooks(replica) }

// emit gives e to the run's hooks in order; a hook's ErrStop asks the loop
// to stop after the current step (or epoch).
func (r *run) emit(e Event) error {
	e.Steps, e.StartStep = r.steps, r.res.StartStep
	for _, h := range r.hookList {
		if err := h.Event(e); err != nil {
			switch {
			case errors.Is(err, errEarlyStop):
				r.stop = EarlyStop
			case errors.Is(err, ErrStop):
				if r.stop != EarlyStop { // an early stop asked for already stands
					r.stop = Stopped
				}
			default:
				return err
			}
		}
	}
	return nil
}

// resume opens the latest checkpoint in ModelDir; its input size and classes
// decide the data's.
func (r *run) resume() error {
	o := &r.opt
	prefix, err := checkpoint.Resolve(o.ModelDir)
	if err != nil {
		return &ResumeError{err}
	}
	sess, mi, err := tfsession.ResumeWithOptions(prefix, o.Session, o.LearningRate,
		tfgraph.BuildOptions{ScheduledLearningRate: o.Schedule.Scheduled(), UnfusedGradients: o.UnfusedGradients, LossScale: o.lossScale(),
			FineTune: o.fineTune()})
	if err != nil {
		return &ResumeError{fineTuneError(err)}
	}
	r.sess = sess
	if err := o.checkNetwork(sess.Model.Net); err != nil {
		return &ResumeError{err}
	}
	if o.Base != nil && sess.Model.Net.Base == nil {
		return &ResumeError{&OptionError{Option: "Base", Value: o.Base.Path, Reason: "contradicts the checkpoint, which has no backbone", Err: ErrResumeMismatch}}
	}
	if o.FineTune != "" && sess.Model.Net.Base == nil {
		return &ResumeError{&OptionError{Option: "FineTune", Value: o.FineTune, Reason: "needs a backbone; the checkpoint has none"}}
	}
	o.Resize = sess.Model.Net.Resize
	h, w, ch := sess.InputSize()
	if h != w || (o.Size != 0 && h != o.Size) || (o.Channels != 0 && ch != o.Channels) {
		return &ResumeError{fmt.Errorf("%s takes %dx%dx%d images; Size and Channels ask for %dx%dx%d: %w", prefix, h, w, ch, o.Size, o.Size, o.Channels, ErrResumeMismatch)}
	}
	o.Size, o.Channels = h, ch
	if len(mi.Classes) > 0 {
		if len(o.Classes) > 0 && !slices.Equal(o.Classes, mi.Classes) {
			return &ResumeError{fmt.Errorf("%s was trained on classes %v, Classes gives %v: %w", prefix, mi.Classes, o.Classes, ErrResumeMismatch)}
		}
		o.Classes = mi.Classes
	}
	r.res.StartStep, r.res.Step = mi.Step, mi.Step
	r.resumed = mi.TrainerState
	return r.emit(Event{Kind: Resumed, Checkpoint: prefix, Step: mi.Step})
}

// load reads the data and works out the step count.
func (r *run) load() error {
	o := &r.opt
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Channels == 0 {
		o.Channels = DefaultChannels
	}
	load := dataset.Load
	if o.Stream {
		load = dataset.Open
	}
	t0 := time.Now()
	set, err := load(o.Data, dataset.Options{Size: o.Size, Channels: o.Channels, Classes: o.Classes,
		ValidationSize: o.Validation, Seed: o.Seed, Reshuffle: o.Reshuffle, Strict: o.Strict, Resize: o.Resize})
	if err != nil {
		return err
	}
	loadTime := time.Since(t0)
	r.set = set
	r.res.Classes = set.Classes
	if r.sess != nil && r.sess.NumClasses() != len(set.Classes) {
		return &ResumeError{fmt.Errorf("the checkpoint has %d classes, %s has %d (%s): %w", r.sess.NumClasses(), o.Data, len(set.Classes), strings.Join(set.Classes, ", "), ErrResumeMismatch)}
	}
	nTrain, nValid := set.Train.Len(), set.Validation.Len()
	if gb := r.globalBatch(); gb > nTrain {
		return fmt.Errorf("%s: %d training images, fewer than one batch of %d", o.Data, nTrain, gb)
	}
	if o.KeepBest && nValid == 0 {
		return &OptionError{Option: "KeepBest", Value: true, Reason: "needs a validation split (Validation)"}
	}
	r.perEp = nTrain / r.globalBatch()
	r.steps = o.Steps
	if o.Epochs > 0 {
		r.steps = o.Epochs * r.perEp
	}
	return r.emit(Event{Kind: Start, Step: r.res.StartStep, Data: o.Data, Classes: set.Classes, Train: nTrain, Validation: nValid,
		Skipped: set.Report().Skipped, LoadTime: loadTime, Replicas: max(r.replicas, 1)})
}

// build makes the tutorial's network for the data and initialises it.
func (r *run) build() error {
	o := r.opt
	net := r.network()
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: o.Seed, ScheduledLearningRate: o.Schedule.Scheduled(), Base: r.backbone,
		UnfusedGradients: o.UnfusedGradients, LossScale: o.lossScale(), FineTune: o.fineTune()})
	if err != nil {
		return fineTuneError(err)
	}
	if r.sess, err = tfsession.NewSession(m, o.Session); err != nil {
		return err
	}
	if err := r.sess.Init(); err != nil {
		return err
	}
	if r.backbone != nil && r.backbone.Variables != "" {
		return r.sess.InitBase()
	}
	return nil
}

// network is the network the options and the data ask for, on the
// backbone when there is one.
func (r *run) network() network.Network {
	o := r.opt
	net := o.network(len(r.set.Classes))
	if r.base != nil {
		net.Base, net.Conv = r.base, nil
		if o.FC == nil {
			net.FC = 0 // the softmax right on the features
		}
	}
	return net
}

// cacheFeatures turns the session's feature cache on for a frozen backbone
// without augmentation: an image's features are then the same at every
// epoch, computed once. A fine-tuned backbone's features change at every
// step: cacheCut caches its frozen part's output instead, when it can.
func (r *run) cacheFeatures() error {
	if r.sess.Model.Net.Base == nil {
		return nil
	}
	limit := int64(DefaultFeatureCacheBytes)
	if b := r.opt.Base; b != nil && b.CacheBytes != 0 {
		limit = b.CacheBytes
	}
	if len(r.sess.Model.TuneVars) > 0 {
		return r.cacheCut(limit)
	}
	if r.opt.Augment.Enabled() || limit <= 0 {
		return nil
	}
	return r.sess.CacheFeatures(limit)
}

var errStopped = errors.New("stopped by a hook")

// startLoop sets the loop's step, one process's unless a cluster's chief
// set its own, and installs the trainer's own hooks after the others: the
// schedule, early stopping and keep-best (with a validation split), then
// checkpoints, which record what the others reached.
func (r *run) startLoop() {
	o := &r.opt
	if r.stepper == nil {
		r.stepper = localStep{r.sess}
	}
	if o.Schedule.Scheduled() {
		r.schedule = &scheduleHook{sc: newScheduler(o.Schedule, o.LearningRate, r.steps, r.perEp), set: r.sess.SetLearningRate}
		r.hookList = append(r.hookList, r.schedule)
	}
	r.ckpt = &checkpointHook{opt: o, perEp: r.perEp, stepper: r.stepper, res: r.res, info: r.info, emit: r.emit}
	if r.set.Validation.Len() > 0 {
		r.early, r.best = newEarlyStop(o.EarlyStop), newKeepBest(o, r.ckpt)
		r.hookList = append(r.hookList, r.early, r.best)
	}
	r.hookList = append(r.hookList, r.ckpt)
}

// train runs the steps and the final save.
func (r *run) train(ctx context.Context) error {
	o := r.opt
	r.startLoop()
	if err := r.cacheFeatures(); err != nil {
		return err
	}
	if r.trainSrc == nil {
		if err := r.trainBatches(0, 1); err != nil {
			return err
		}
	}
	if n := r.set.Validation.Len(); n > 0 {
		r.validN = min(r.globalBatch(), n) // a chief validates as one process with the global batch does
		r.validBatches = n / r.validN
		r.validSrc = newPrefetcher(r.set.Validation, r.validN)
	}
	if err := r.restoreState(); err != nil {
		return err
	}
	r.start = time.Now()
	err := r.loop(ctx)
	if werr := r.ckpt.collect(true); err == nil {
		err = werr
	}
	res := r.res
	restored := false // the best checkpoint's variables, to be saved as the final one
	switch {
	case err == nil:
		res.Reason = Completed
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		res.Reason = Interrupted
		err = r.emit(Event{Kind: Stopping, Step: res.Step, Reason: Interrupted})
	case errors.Is(err, errStopped):
		res.Reason = Stopped
		err = r.emit(Event{Kind: Stopping, Step: res.Step, Reason: Stopped})
	case errors.Is(err, errEarlyStop):
		res.Reason = EarlyStop
		stop := Event{Kind: Stopping, Step: res.Step, Reason: EarlyStop, BestLoss: float32(r.early.best), Patience: o.EarlyStop}
		if err = r.best.stopping(r.stepper, res, &stop); err == nil {
			restored = stop.Restored
			err = r.emit(stop)
		}
	default:
		res.Reason = Failed
		// Keep what was learned: the variables hold the last completed step.
		// (On a cluster a peer is gone and the last checkpoint is the one to
		// resume from: see SaveEvery.)
		if res.Step > res.StartStep && r.opt.Cluster == nil {
			if serr := r.ckpt.save(res.Step); serr != nil {
				err = fmt.Errorf("%w (and saving step %d failed: %v)", err, res.Step, serr)
			}
		}
		return err
	}
	if err != nil {
		return err
	}
	// A restored best is saved even when its step is not past the resumed
	// one's (a best from before the resume): the final checkpoint holds it.
	if res.Step > res.StartStep || res.Checkpoint == "" || restored {
		if err := r.ckpt.save(res.Step); err != nil {
			return err
		}
	}
	if err := r.stepper.finish(); err != nil {
		return err
	}
	return r.emit(Event{Kind: Done, Step: res.Step, Checkpoint: res.Checkpoint})
}

// trainBatches starts the prefetcher of the part-th of of shares of each
// global training batch (0 of 1: all of it), augmented when the options
// say: every replica of a cluster makes the same augmenter, which draws for
// the whole global batch.
func (r *run) trainBatches(part, of int) error {
	o := r.opt
	var aug *dataset.Augmenter
	if o.Augment.Enabled() {
		var err error
		if aug, err = dataset.NewAugmenter(o.Augment, o.Size, o.Channels, o.Seed); err != nil {
			return err
		}
	}
	r.trainSrc = partPrefetcher(r.set.Train, r.globalBatch(), part, of, aug)
	return nil
}

// loop runs the loop until the step count, an error or ctx's end.
func (r *run) loop(ctx context.Context) error {
	for r.res.Step < r.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.stop == Stopped {
			return errStopped
		}
		if err := r.step(); err != nil {
			return err
		}
	}
	return nil
}

// step runs one training step and, at an epoch's first step, the epoch's
// report (after which the hooks save its checkpoint). At steady state it
// allocates nothing.
func (r *run) step() error {
	step := r.res.Step
	if r.schedule != nil {
		if err := r.schedule.beforeStep(step); err != nil {
			return err
		}
	}
	b, err := r.trainSrc.next()
	if err != nil {
		return fmt.Errorf("step %d: training batch: %w", step+1, err)
	}
	loss, err := r.stepper.step(b, step)
	if err != nil {
		return fmt.Errorf("step %d: %w", step+1, err)
	}
	i := step // the tutorial's loop index: the step just run, 0-based
	step++
	r.res.Step = step
	if err := r.ckpt.collect(false); err != nil {
		return err
	}
	if err := r.emit(Event{Kind: Step, Step: step, Loss: loss, Elapsed: time.Since(r.start), LearningRate: r.rate()}); err != nil {
		return err
	}
	if i%r.perEp != 0 {
		return nil
	}
	if err := r.epoch(i/r.perEp+1, b); err != nil {
		return err
	}
	if r.stop == EarlyStop {
		return errEarlyStop
	}
	return nil
}

// rate is the learning rate events report: zero without a schedule.
func (r *run) rate() float64 {
	if r.schedule == nil {
		return 0
	}
	return r.schedule.lr
}

// epoch evaluates the epoch's training batch and the whole validation split
// and reports them to the hooks.
func (r *run) epoch(n int, b *pixels.Batch) error {
	// The last epoch's checkpoint is reported before this epoch.
	if err := r.ckpt.collect(true); err != nil {
		return err
	}
	e := Event{Kind: Epoch, Epoch: n, Step: r.res.Step, LearningRate: r.rate()}
	var err error
	if e.Loss, e.TrainAccuracy, err = r.sess.Evaluate(b); err != nil {
		return err
	}
	if r.validSrc != nil {
		var sumLoss, sumAcc float64
		var seen int
		for range r.validBatches {
			vb, err := r.validSrc.next()
			if err != nil {
				return fmt.Errorf("validation batch: %w", err)
			}
			l, a, err := r.sess.Evaluate(vb)
			if err != nil {
				return err
			}
			sumLoss += float64(l) * float64(vb.N)
			sumAcc += float64(a) * float64(vb.N)
			seen += vb.N
		}
		e.ValLoss, e.ValAccuracy = float32(sumLoss/float64(seen)), float32(sumAcc/float64(seen))
		e.Validated = true
	}
	return r.emit(e)
}
