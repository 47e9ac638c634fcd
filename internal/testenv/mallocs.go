package testenv

import (
	"runtime"
	"runtime/debug"
)

// Mallocs counts the heap allocations of runs calls of f, after one call to
// warm up. testing.AllocsPerRun divides that count by runs in integers, so
// that one allocation every few calls reads 0; here any allocation fails.
// runtime.MemStats.Mallocs is exact (ReadMemStats stops the world and
// flushes each P's cached counts). The garbage collector is off from before
// the warm-up to the end (SetGCPercent waits for a cycle in progress): a
// cycle empties the runtime's caches (each P's cache of channel wait
// records, sync.Pools), and the next blocking channel receive or Get
// refills them with an allocation that is the runtime's, not f's (seen: a
// GC just before 100 training steps made the prefetcher's receive allocate
// once). Mallocs counts every goroutine's allocations, so, as AllocsPerRun
// does, GOMAXPROCS is 1 meanwhile, and f must be all that runs — but a
// goroutine that wakes on its own (tflog's filter when TensorFlow writes a
// line, the runtime's) can still allocate once inside the window (seen once
// in a CI run on a loaded machine: 1 allocation in 100 steps, then 0 in 16
// reruns). So the runs calls are counted in two windows and the smaller
// count is returned: an allocation f makes on every call, or at least once
// every runs calls, shows in both.
func Mallocs(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	f()
	count := func() uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		return after.Mallocs - before.Mallocs
	}
	return min(count(), count())
}
