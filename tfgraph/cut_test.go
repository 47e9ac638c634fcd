package tfgraph

import (
	"errors"
	"testing"
)

// TestFrozenCutNeedsFineTune: a model that fine-tunes nothing has no cut
// (its frozen backbone's features are the cache's), and says so.
func TestFrozenCutNeedsFineTune(t *testing.T) {
	for _, opt := range []BuildOptions{{Seed: 1}, {Seed: 1, InferenceOnly: true}} {
		m := mustBuild(t, small(2), opt)
		if _, err := m.FrozenCut(); !errors.Is(err, ErrNotFineTuned) {
			t.Errorf("inference only %v: err %v, want ErrNotFineTuned", opt.InferenceOnly, err)
		}
	}
}
