package fuzzlimit

import (
	"strings"
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

// BenchmarkMeasure is the cost Check adds to each fuzz input.
func BenchmarkMeasure(b *testing.B) {
	for b.Loop() {
		Measure(func() {})
	}
}
