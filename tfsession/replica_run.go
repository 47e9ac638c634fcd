package tfsession

import (
	"errors"
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
)

var errNotReplicated = errors.New("the model was not built with a Replication")

func (s *Session) syncOps() (*tfgraph.SyncOps, error) {
	if s.Model.Sync == nil {
		return nil, errNotReplicated
	}
	if s.s == nil {
		return nil, ErrClosed
	}
	return s.Model.Sync, nil
}

// SyncApply computes this replica's gradients and loss on b, its slice of
// the global batch of step, and adds them to the accumulators.
func (s *Session) SyncApply(b *pixels.Batch, step int) error {
	sync, err := s.syncOps()
	if err != nil {
		return err
	}
	if s.cache != nil && len(b.Paths) >= b.N {
		// A backbone's features, cached per replica as in Step.
		st, err := tf.NewTensor(int64(step))
		if err != nil {
			return err
		}
		defer tfc.Free(st)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.runCached(b, nil, []*tf.Operation{sync.Apply}, nil, false, map[tf.Output]*tf.Tensor{sync.LocalStep: st}); err != nil {
			return fmt.Errorf("step %d: applying gradients: %w", step+1, err)
		}
		return nil
	}
	net := s.Model.Net
	x, err := tfc.NewFloat32(int64(b.N), int64(net.Height), int64(net.Width), int64(net.Channels))
	if err != nil {
		return err
	}
	defer tfc.Free(x)
	y, err := tfc.NewFloat32(int64(b.N), int64(net.Classes))
	if err != nil {
		return err
	}
	defer tfc.Free(y)
	xs, _ := tfc.Float32s(x)
	ys, _ := tfc.Float32s(y)
	if len(b.X) < len(xs) || len(b.Y) < len(ys) {
		return fmt.Errorf("batch of %d images holds %d values and %d labels, needs %d and %d", b.N, len(b.X), len(b.Y), len(xs), len(ys))
	}
	copy(xs, b.X)
	copy(ys, b.Y)
	st, err := tf.NewTensor(int64(step))
	if err != nil {
		return err
	}
	defer tfc.Free(st)
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.X: x, s.Model.Labels: y, sync.LocalStep: st}, nil, []*tf.Operation{sync.Apply}); err != nil {
		return fmt.Errorf("step %d: applying gradients: %w", step+1, err)
	}
	return nil
}

// SyncUpdate (the chief's) waits for every replica's gradients, applies
// their mean with Adam once (at the rate SetLearningRate gave, when the
// model's rate is scheduled), and returns the step's mean loss.
func (s *Session) SyncUpdate() (float32, error) {
	sync, err := s.syncOps()
	if err != nil {
		return 0, err
	}
	var feeds map[tf.Output]*tf.Tensor
	if s.Model.LearningRate.Op != nil {
		// A scheduled rate: the one SetLearningRate gave, as Step feeds it.
		s.mu.Lock()
		lr := s.steps.in[2]
		s.mu.Unlock()
		if lr == nil {
			return 0, errors.New("updating the variables: the model's learning rate is fed: call SetLearningRate first")
		}
		feeds = map[tf.Output]*tf.Tensor{s.Model.LearningRate: lr}
	}
	out, err := s.s.Run(feeds, []tf.Output{sync.MeanLoss}, []*tf.Operation{s.Model.Train})
	if err != nil {
		return 0, fmt.Errorf("updating the variables: %w", err)
	}
	return scalar(out[0]), nil
}

// scalar reads a float32 scalar tensor and frees it.
func scalar(t *tf.Tensor) float32 {
	defer tfc.Free(t)
	v, _ := t.Value().(float32)
	return v
}

// SyncRelease (the chief's) puts token in every other replica's queue: the
// next step's number, or -1 to stop.
func (s *Session) SyncRelease(token int64) error {
	sync, err := s.syncOps()
	if err != nil {
		return err
	}
	t, err := tf.NewTensor(token)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{sync.Token: t}, nil, []*tf.Operation{sync.Release}); err != nil {
		return fmt.Errorf("releasing the replicas: %w", err)
	}
	return nil
}

// SyncNext (replica r's, r ≥ 1) waits for its next token.
func (s *Session) SyncNext(r int) (int64, error) {
	sync, err := s.syncOps()
	if err != nil {
		return 0, err
	}
	if r < 1 || r >= len(sync.Next) {
		return 0, fmt.Errorf("replica %d has no token queue", r)
	}
	out, err := s.s.Run(nil, []tf.Output{sync.Next[r]}, nil)
	if err != nil {
		return 0, err
	}
	defer tfc.FreeAll(out)
	v, _ := out[0].Value().(int64)
	return v, nil
}

// SyncDone (the chief's, last) tells every parameter server to exit.
func (s *Session) SyncDone() error {
	sync, err := s.syncOps()
	if err != nil {
		return err
	}
	if _, err := s.s.Run(nil, nil, []*tf.Operation{sync.Done}); err != nil {
		return fmt.Errorf("telling the parameter servers to stop: %w", err)
	}
	return nil
}
