package parallel

import (
	"sync/atomic"
	"testing"
)

func TestForVisitsEachIndexOnce(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 4}, {1, 4}, {7, 1}, {100, 3}, {5, 0}} {
		seen := make([]atomic.Int32, tc.n)
		var badWorker atomic.Bool
		For(tc.n, tc.workers, func(w, i int) bool {
			if w < 0 || w >= max(min(tc.workers, tc.n), 1) {
				badWorker.Store(true)
			}
			seen[i].Add(1)
			return true
		})
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Errorf("n=%d workers=%d: index %d visited %d times", tc.n, tc.workers, i, c)
			}
		}
		if badWorker.Load() {
			t.Errorf("n=%d workers=%d: worker index out of range", tc.n, tc.workers)
		}
	}
}

func TestForStops(t *testing.T) {
	var calls atomic.Int32
	For(1000, 1, func(_, i int) bool {
		calls.Add(1)
		return i < 9
	})
	if c := calls.Load(); c != 10 {
		t.Errorf("%d calls after the 10th returned false on one worker; want 10", c)
	}
}
