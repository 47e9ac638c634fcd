// Package parallel is the one worker pool behind tfcat's parallel decoding:
// loading a folder, streaming a batch, predicting files.
package parallel

import (
	"sync"
	"sync/atomic"
)

// For calls fn(worker, i) for each i in [0, n), on min(workers, n)
// goroutines, handing out indexes in order; worker, in [0, workers), lets fn
// keep per-goroutine scratch space. Once any call returns false no further
// index is handed out. For returns when every call has returned.
func For(n, workers int, fn func(worker, i int) bool) {
	workers = max(min(workers, n), 1)
	if n <= 0 {
		return
	}
	var next atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !fn(w, i) {
					stopped.Store(true)
				}
			}
		}()
	}
	wg.Wait()
}
