package fuzzlimit

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

var sink []byte

// The limits must catch what they promise to: memory touched, memory
// allocated and time.
func TestMeasure(t *testing.T) {
	c, err := Measure(func() {
		b := make([]byte, 300<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = b
	})
	sink = nil
	if err != nil {
		t.Fatal(err)
	}
	if c.GoAlloc < 300<<20 || !strings.Contains(c.Exceeds(), "MB") {
		t.Errorf("300 MB touched: %+v, exceeds %q", c, c.Exceeds())
	}
	if c.PeakRSS < 250<<20 {
		t.Errorf("300 MB touched, peak RSS growth %d MB (exact %v)", c.PeakRSS>>20, c.RSSExact)
	}
	c, err = Measure(func() { time.Sleep(MaxTime + 50*time.Millisecond) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Exceeds(), "took") {
		t.Errorf("slow input: %+v, exceeds %q", c, c.Exceeds())
	}
	c, err = Measure(func() { sink = make([]byte, 1<<20) })
	if err != nil {
		t.Fatal(err)
	}
	if c.Exceeds() != "" {
		t.Errorf("1 MB in no time: %+v exceeds %q", c, c.Exceeds())
	}
}

// MeasurePeak must read the peak however quick f is (Measure skips it below
// 5 ms, where a 20 MB bound can already be broken), and the reset peak must
// see memory given back before f returns: 32 MB of fresh pages touched and
// unmapped inside f. mmap rather than the Go heap: the pages are new to the
// process whatever the heap held before, as a C decoder's malloc would be.
func TestMeasurePeakSeesQuickTransientMemory(t *testing.T) {
	// Nothing done: the peak is still read, a small real value.
	c, err := MeasurePeak(func() {})
	if err != nil || !c.PeakRead || c.PeakRSS > 4<<20 {
		t.Fatalf("nothing done: %+v (%v): want the peak read, under 4 MB", c, err)
	}
	const size = 32 << 20
	c, err = MeasurePeak(func() {
		b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		if err := syscall.Munmap(b); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("32 MB touched and unmapped: %+v", c)
	if !c.PeakRead {
		t.Fatalf("MeasurePeak did not read the peak: %+v", c)
	}
	if !c.RSSExact {
		t.Skip("the peak RSS cannot be reset here (no write access to /proc/self/clear_refs): memory given back before f returns is not seen")
	}
	if c.PeakRSS < size-size/8 {
		t.Errorf("32 MB touched: peak RSS growth %d KB, want at least %d KB", c.PeakRSS>>10, (size-size/8)>>10)
	}
}

// BenchmarkMeasure is the cost Check adds to each fuzz input.
func BenchmarkMeasure(b *testing.B) {
	for b.Loop() {
		Measure(func() {})
	}
}
