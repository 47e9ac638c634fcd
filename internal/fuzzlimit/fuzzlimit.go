// Package fuzzlimit lets fuzz targets fail inputs that cost too much, not
// only those that crash: a reader of untrusted bytes must finish each input
// within a time limit and a memory limit.
//
// Memory is measured two ways, both per input: the bytes the Go heap
// allocated while the input ran (an upper bound on its Go heap use), and the
// growth of the process's peak resident set (VmHWM, reset before the input
// through /proc/self/clear_refs), which also sees C allocations such as
// libjpeg's. A fuzz worker runs one input at a time, so the figures belong to
// that input.
package fuzzlimit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"time"
)

// The limits of issue 16: an input costing more is a failure.
const (
	MaxTime   = time.Second
	MaxMemory = 256 << 20
)

// Cost is what one input took.
type Cost struct {
	Time     time.Duration
	GoAlloc  uint64 // bytes allocated on the Go heap
	PeakRSS  int64  // growth of the peak resident set, in bytes
	RSSExact bool   // PeakRSS is a reset peak (false: current RSS after minus before)
}

// Exceeds describes the limit c breaks, or returns "".
func (c Cost) Exceeds() string {
	switch {
	case c.Time > MaxTime:
		return fmt.Sprintf("took %v (limit %v)", c.Time, MaxTime)
	case c.GoAlloc > MaxMemory:
		return fmt.Sprintf("allocated %d MB on the Go heap (limit %d MB)", c.GoAlloc>>20, MaxMemory>>20)
	case c.PeakRSS > MaxMemory:
		return fmt.Sprintf("grew the peak resident set by %d MB (limit %d MB)", c.PeakRSS>>20, MaxMemory>>20)
	}
	return ""
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func goAllocs() uint64 {
	metrics.Read(allocSample)
	if allocSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return allocSample[0].Value.Uint64()
}

// status reads VmHWM and VmRSS from /proc/self/status, in bytes.
func status() (hwm, rss int64, err error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		for _, f := range []struct {
			key string
			dst *int64
		}{{"VmHWM:", &hwm}, {"VmRSS:", &rss}} {
			if rest, ok := bytes.CutPrefix([]byte(line), []byte(f.key)); ok {
				kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/self/status: %s: %w", line, err)
				}
				*f.dst = kb << 10
			}
		}
	}
	return hwm, rss, nil
}

// resetPeak resets VmHWM to the current RSS; false when the kernel refuses.
func resetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// Measure runs f and reports its cost.
func Measure(f func()) (Cost, error) {
	exact := resetPeak()
	_, rss0, err := status()
	if err != nil {
		return Cost{}, err
	}
	a0 := goAllocs()
	start := time.Now()
	f()
	c := Cost{Time: time.Since(start), GoAlloc: goAllocs() - a0, RSSExact: exact}
	hwm, rss1, err := status()
	if err != nil {
		return c, err
	}
	if exact {
		c.PeakRSS = hwm - rss0
	} else {
		c.PeakRSS = rss1 - rss0
	}
	return c, nil
}

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Check runs f and fails t when it breaks MaxTime or MaxMemory; what names
// the input in the message.
func Check(t TB, what string, f func()) {
	t.Helper()
	c, err := Measure(f)
	if err != nil {
		t.Fatalf("measuring %s: %v", what, err)
	}
	if msg := c.Exceeds(); msg != "" {
		t.Fatalf("%s %s", what, msg)
	}
}
