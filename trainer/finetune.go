package trainer

import (
	"errors"
	"fmt"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// fineTune is the build option Options.FineTune asks for, or nil.
func (o *Options) fineTune() *tfgraph.FineTune {
	if o.FineTune == "" {
		return nil
	}
	return &tfgraph.FineTune{Spec: o.FineTune, LearningRate: o.BaseLearningRate, BatchNorm: o.FineTuneBN}
}

// BaseLayers opens the backbone b and returns its trainable layers from its
// input to its output, the names Options.FineTune takes.
func BaseLayers(b *Base) ([]string, error) {
	bb, err := backbone.Open(b.Path, backbone.Options{Output: b.Output, Trust: b.Trust})
	if err != nil {
		return nil, err
	}
	_, layers, err := backbone.Layers(&network.Base{Variables: bb.Vars}, bb)
	return layers, err
}

// fineTuneError makes package backbone's refusal of Options.FineTune an
// OptionError.
func fineTuneError(err error) error {
	var fe *backbone.FineTuneError
	if errors.As(err, &fe) {
		return &OptionError{Option: "FineTune", Value: fe.Spec, Reason: fe.Why(), Err: err}
	}
	var be *backbone.BatchNormError
	if errors.As(err, &be) {
		return &OptionError{Option: "FineTuneBN", Value: true, Reason: be.Why(), Err: err}
	}
	return err
}

// cacheCut decides the feature cache of a fine-tuning run, and says what
// it decided in a Note event. The fine-tuned layers' outputs change at every
// step, so no features are cached; but the part of the backbone below the
// first fine-tuned variable is frozen (batch norm in inference mode), and
// its output for an image is the same at every step: its cut
// (tfgraph.Model.FrozenCut) is computed once per image and fed to the
// later steps, which then skip that part (tfsession.Session.CacheCut).
// Not with augmentation (the images change), nor when nothing below the
// fine-tuned layers is frozen (--fine-tune all), nor when one image's cut
// times the training images is over limit (Base.CacheBytes): the whole
// backbone runs at every step then, as it does without the cache.
func (r *run) cacheCut(limit int64) error {
	off := func(why string) error {
		return r.emit(Event{Kind: Note, Step: r.res.Step, Message: "feature cache off while fine-tuning: the whole backbone runs at every step: " + why})
	}
	switch {
	case r.opt.Augment.Enabled():
		return off("augmentation changes the images")
	case limit <= 0:
		return off("Base.CacheBytes is negative")
	}
	cut, err := r.sess.Model.FrozenCut()
	var nc *tfgraph.NoCutError
	if errors.As(err, &nc) {
		return off(nc.Reason)
	}
	if err != nil {
		return fmt.Errorf("the fine-tuned backbone's frozen part: %w", err)
	}
	n := int64(r.set.Train.Len())
	if cut.Bytes()*n > limit {
		return off(fmt.Sprintf("the frozen part's output takes %s per image, %s for %d training images, over the cache's %s",
			mib(cut.Bytes()), mib(cut.Bytes()*n), n, mib(limit)))
	}
	if err := r.sess.CacheCut(cut, limit); err != nil {
		return err
	}
	return r.emit(Event{Kind: Note, Step: r.res.Step, Message: fmt.Sprintf(
		"feature cache: the frozen part below the fine-tuned layers runs once per image (%d of its nodes skipped at each step); its output, %d tensor(s) of %s per image, is kept in memory",
		cut.Frozen, len(cut.Tensors), mib(cut.Bytes()))})
}

// mib writes a byte count in KiB, MiB or GiB.
func mib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
