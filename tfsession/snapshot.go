package tfsession

import (
	"fmt"
	"sync"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// A Snapshot is a copy of every variable a checkpoint of its session holds,
// taken between steps. Writing it reads nothing from the session, so a
// trainer can write one checkpoint while it takes the next steps: the disk's
// time is then no longer the step loop's. Free it when done.
type Snapshot struct {
	model   *tfgraph.Model
	w       *bundleWriter
	tensors []*tf.Tensor // in the saver's key order
}

// Snapshot copies the variables now. Step and Evaluate wait while it copies
// (tens of milliseconds for the tutorial's 25 MB of weights and Adam slots).
func (s *Session) Snapshot() (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil, ErrClosed
	}
	sv := s.Model.Saver
	if s.writer == nil {
		w, err := newBundleWriter(sv)
		if err != nil {
			return nil, fmt.Errorf("snapshot of the variables: %w", err)
		}
		s.writer = w
	}
	out, err := s.s.Run(nil, sv.Reads, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot of the variables: %w", err)
	}
	// The fetched tensors may share the variables' memory, which the next
	// step updates in place: copy them now.
	defer tfc.FreeAll(out)
	snap := &Snapshot{model: s.Model, w: s.writer, tensors: make([]*tf.Tensor, len(out))}
	for i, t := range out {
		src, err := tfc.Float32s(t)
		if err == nil {
			snap.tensors[i], err = tfc.NewFloat32(sv.Shapes[i]...)
		}
		var dst []float32
		if err == nil {
			dst, err = tfc.Float32s(snap.tensors[i])
		}
		if err == nil && len(dst) != len(src) {
			err = fmt.Errorf("%d values for shape %v", len(src), sv.Shapes[i])
		}
		if err != nil {
			snap.Free()
			return nil, fmt.Errorf("snapshot of variable %s: %w", sv.Keys[i], err)
		}
		copy(dst, src)
	}
	return snap, nil
}

// Save writes the snapshot as Session.Save writes a checkpoint, with the
// same files, names and crash safety. It may run in another goroutine than
// the session's steps, and must end before the session is closed.
func (sn *Snapshot) Save(opt SaveOptions, info network.Info) (string, error) {
	if sn.tensors == nil {
		return "", fmt.Errorf("saving a snapshot: %w", ErrClosed)
	}
	return writeCheckpoint(sn.model, opt, info, func(prefix string) error {
		return sn.w.write(prefix, sn.tensors)
	})
}

// Free releases the snapshot's copies.
func (sn *Snapshot) Free() {
	tfc.FreeAll(sn.tensors)
	sn.tensors = nil
}

// bundleWriter is a graph of its own, one SaveV2 fed by placeholders, that
// writes given values under the saver's keys: TensorFlow writes the bundle,
// as for Session.Save, without touching the training session.
type bundleWriter struct {
	mu     sync.Mutex // one write at a time
	sess   *tf.Session
	prefix tf.Output
	inputs []tf.Output
	save   *tf.Operation
}

func newBundleWriter(sv *tfgraph.SaverNodes) (*bundleWriter, error) {
	s := op.NewScope()
	w := &bundleWriter{prefix: op.Placeholder(s.SubScope("prefix"), tf.String, op.PlaceholderShape(tf.ScalarShape()))}
	w.inputs = make([]tf.Output, len(sv.Keys))
	for i, shape := range sv.Shapes {
		w.inputs[i] = op.Placeholder(s.SubScope("value"), tf.Float, op.PlaceholderShape(tf.MakeShape(shape...)))
	}
	w.save = op.SaveV2(s, w.prefix, op.Const(s.SubScope("names"), sv.Keys),
		op.Const(s.SubScope("slices"), make([]string, len(sv.Keys))), w.inputs)
	g, err := s.Finalize()
	if err != nil {
		return nil, fmt.Errorf("building the checkpoint writer: %w", tfc.ScopeErr(err))
	}
	if w.sess, err = tf.NewSession(g, nil); err != nil {
		return nil, fmt.Errorf("opening the checkpoint writer: %w", err)
	}
	return w, nil
}

// write writes values (the saver's key order) to the V2 bundle at prefix.
func (w *bundleWriter) write(prefix string, values []*tf.Tensor) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess == nil {
		return fmt.Errorf("saving variables to %s: %w", prefix, ErrClosed)
	}
	p, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(p)
	feeds := make(map[tf.Output]*tf.Tensor, len(values)+1)
	feeds[w.prefix] = p
	for i, v := range values {
		feeds[w.inputs[i]] = v
	}
	if _, err := w.sess.Run(feeds, nil, []*tf.Operation{w.save}); err != nil {
		return fmt.Errorf("saving variables to %s: %w", prefix, err)
	}
	return nil
}

// close waits for a write in progress and closes the writer's session.
func (w *bundleWriter) close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess == nil {
		return nil
	}
	err := w.sess.Close()
	w.sess = nil
	return err
}
