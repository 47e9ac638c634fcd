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
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
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
	// PeakRead: PeakRSS was read. Measure skips reading it for an input too
	// quick to have touched MaxMemory (PeakRSS is then 0, not a
	// measurement); MeasurePeak always reads it.
	PeakRead bool
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

// fastest bounds how quickly a process can touch new memory: an input that
// ran for less than MaxMemory/fastest cannot have grown the resident set by
// MaxMemory, so its peak is not read (reading it costs more than most
// inputs). 50 GB/s is several times what page faults reach.
const fastest = 50 << 30 // bytes per second

// procFiles are kept open: reading /proc/self/statm again from offset 0
// costs about 2 µs, opening it 13 µs.
var procFiles struct {
	once                    sync.Once
	statm, status, clearRef *os.File
	err                     error
	pageSize                int64
}

func openProc() error {
	p := &procFiles
	p.once.Do(func() {
		p.pageSize = int64(os.Getpagesize())
		if p.statm, p.err = os.Open("/proc/self/statm"); p.err != nil {
			return
		}
		if p.status, p.err = os.Open("/proc/self/status"); p.err != nil {
			return
		}
		// Resetting the peak needs write access to clear_refs; without it
		// the growth of the current RSS is measured instead.
		p.clearRef, _ = os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	})
	return p.err
}

// rss reads the resident set size from /proc/self/statm, in bytes.
func rss() (int64, error) {
	var buf [128]byte
	n, err := procFiles.statm.ReadAt(buf[:], 0)
	if n == 0 {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	f := bytes.Fields(buf[:n])
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/self/statm: unexpected %q", buf[:n])
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * procFiles.pageSize, nil
}

// peak reads VmHWM from /proc/self/status, in bytes.
func peak() (int64, error) {
	var buf [8192]byte
	n, err := procFiles.status.ReadAt(buf[:], 0)
	if n == 0 {
		return 0, fmt.Errorf("/proc/self/status: %w", err)
	}
	_, rest, ok := bytes.Cut(buf[:n], []byte("VmHWM:"))
	if !ok {
		return 0, errors.New("/proc/self/status: no VmHWM")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/status: VmHWM %q: %w", line, err)
	}
	return kb << 10, nil
}

// resetPeak resets VmHWM to the current RSS; false when the kernel refuses.
func resetPeak() bool {
	f := procFiles.clearRef
	if f == nil {
		return false
	}
	_, err := f.Write([]byte("5"))
	return err == nil
}

// Measure runs f and reports its cost. PeakRSS is read only when f ran long
// enough to have touched MaxMemory (Cost.PeakRead): enough to check the
// limits, and cheap for a fuzzer's many quick inputs. A caller bounding
// memory below MaxMemory uses MeasurePeak.
func Measure(f func()) (Cost, error) { return measure(f, false) }

// MeasurePeak is Measure that always reads the peak resident set once f
// returns, however quickly it did: for a bound below MaxMemory, which a
// quick input can reach (20 MB takes well under a millisecond to touch).
// The reset peak (RSSExact) also sees memory that f touched and gave back
// before returning, C allocations included.
func MeasurePeak(f func()) (Cost, error) { return measure(f, true) }

func measure(f func(), always bool) (Cost, error) {
	if err := openProc(); err != nil {
		return Cost{}, err
	}
	exact := resetPeak()
	rss0, err := rss()
	if err != nil {
		return Cost{}, err
	}
	a0 := goAllocs()
	start := time.Now()
	f()
	c := Cost{Time: time.Since(start), GoAlloc: goAllocs() - a0, RSSExact: exact}
	if !always && c.Time < time.Duration(float64(MaxMemory)/fastest*float64(time.Second)) {
		return c, nil // too quick to have touched MaxMemory
	}
	var after int64
	if exact {
		after, err = peak()
	} else {
		after, err = rss()
	}
	if err != nil {
		return c, err
	}
	c.PeakRSS, c.PeakRead = after-rss0, true
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

// ResetPeak resets the process's peak resident set (VmHWM) to its current
// size, so that PeakRSS measures from now; false when the kernel refuses.
func ResetPeak() bool {
	if openProc() != nil {
		return false
	}
	return resetPeak()
}

// PeakRSS is the process's peak resident set (VmHWM), in bytes.
func PeakRSS() (int64, error) {
	if err := openProc(); err != nil {
		return 0, err
	}
	return peak()
}

// RSS is the process's resident set now, in bytes.
func RSS() (int64, error) {
	if err := openProc(); err != nil {
		return 0, err
	}
	return rss()
}
