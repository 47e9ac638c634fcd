package trainer

import (
	"fmt"

	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfsession"
)

// stepper is what the loop runs a step with: one process's session
// (localStep) or a cluster chief's (chiefStep). The other replicas run no
// loop of their own (replicate) and a parameter server only serves
// (serveVariables).
type stepper interface {
	// step runs the step with 0-based index step on batch b.
	step(b *pixels.Batch, step int) (float32, error)
	// source is the session checkpoints are written from, holding the
	// variables of the steps run so far.
	source() (*tfsession.Session, error)
	// restore sets the variables to those of the checkpoint at prefix.
	restore(prefix string) error
	// finish ends the run once its last checkpoint is written.
	finish() error
}

// localStep is one process's step: the session is the model.
type localStep struct{ sess *tfsession.Session }

func (l localStep) step(b *pixels.Batch, _ int) (float32, error) { return l.sess.Step(b) }
func (l localStep) source() (*tfsession.Session, error)          { return l.sess, nil }
func (l localStep) restore(prefix string) error                  { return l.sess.RestoreVariables(prefix) }
func (l localStep) finish() error                                { return nil }

// chiefStep is a cluster chief's step: it adds its share of the gradients,
// applies the replicas' mean and releases the next step to the others. The
// variables live on the parameter servers; checkpoints are written from a
// local copy of the same network (the cluster's graph holds replication
// nodes that no checkpoint should).
type chiefStep struct {
	sess, local *tfsession.Session
	share       func(*pixels.Batch) *pixels.Batch // the chief's share of a global batch
	blame       func(error) error                 // names a peer that is gone
}

// step releases the step to the other replicas just before the chief's own
// share: a replica's step may wait on the chief's (synchronised batch norm
// exchanges statistics within it), so a step the chief might not run (an
// early stop decided at an epoch's end) is never released, and the replicas
// wait for their token, whose timeouts name a peer that is gone, while the
// chief reports, validates and saves.
func (c *chiefStep) step(b *pixels.Batch, step int) (float32, error) {
	if err := c.sess.SyncRelease(int64(step)); err != nil {
		return 0, c.blame(err)
	}
	if err := c.sess.SyncApply(c.share(b), step); err != nil {
		return 0, c.blame(err)
	}
	loss, err := c.sess.SyncUpdate()
	return loss, c.blame(err)
}

// source copies the parameter servers' variables into the local copy.
func (c *chiefStep) source() (*tfsession.Session, error) {
	vals, err := c.sess.VariableValues()
	if err == nil {
		err = c.local.SetVariables(vals)
	}
	if err != nil {
		return nil, fmt.Errorf("saving: reading the variables: %w", c.blame(err))
	}
	return c.local, nil
}

// restore reads the checkpoint into the local copy, then sets the
// parameter servers' variables from it.
func (c *chiefStep) restore(prefix string) error {
	err := c.local.RestoreVariables(prefix)
	var vals map[string][]float32
	if err == nil {
		vals, err = c.local.VariableValues()
	}
	if err == nil {
		err = c.sess.SetVariables(vals)
	}
	return c.blame(err)
}

// finish tells the replicas to stop and the parameter servers that the
// chief is done.
func (c *chiefStep) finish() error {
	if err := c.sess.SyncRelease(-1); err != nil {
		return c.blame(err)
	}
	return c.blame(c.sess.SyncDone())
}
