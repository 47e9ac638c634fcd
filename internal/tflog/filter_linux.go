//go:build linux

package tflog

import (
	"bufio"
	"bytes"
	"os"
	"sync"
	"syscall"
)

// TensorFlow 2.18 logs some INFO messages through absl, which writes
// everything to stderr until absl::InitializeLog runs — libtensorflow never runs
// it, does not export it, and TF_CPP_MIN_LOG_LEVEL does not reach that path. So
// tfcat filters those lines out of file descriptor 2 itself: C++ writes to fd 2
// go through a pipe that drops absl info lines and the "before
// absl::InitializeLog()" warning and passes everything else on at once. Go's
// own stderr keeps the original descriptor.

var (
	logFilterDone = make(chan struct{})
	logFilterOn   bool
	logFilterMu   sync.Mutex
)

// isNoise reports whether a line is absl's pre-initialisation warning or an
// absl INFO line ("I0000 00:00:..." before InitializeLog).
func isNoise(line []byte, minLevel int) bool {
	if bytes.HasPrefix(line, []byte("WARNING: All log messages before absl::InitializeLog() is called")) {
		return true
	}
	if len(line) > 5 && bytes.HasPrefix(line[1:], []byte("0000 00:00:")) {
		switch line[0] {
		case 'I':
			return minLevel >= 1
		case 'W':
			return minLevel >= 2
		}
	}
	return false
}

// start starts the filter unless TFCAT_TF_LOGS=1 asks for every
// log line. minLevel follows TF_CPP_MIN_LOG_LEVEL: 1 hides info, 2 warnings.
func start(minLevel int) {
	if os.Getenv("TFCAT_TF_LOGS") == "1" || minLevel < 1 {
		return
	}
	orig, err := syscall.Dup(2)
	if err != nil {
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		syscall.Close(orig)
		return
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		syscall.Close(orig)
		r.Close()
		w.Close()
		return
	}
	w.Close() // fd 2 now holds the pipe's write end
	out := os.NewFile(uintptr(orig), "/dev/stderr")
	os.Stderr = out
	logFilterOn = true
	go func() {
		defer close(logFilterDone)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && !isNoise(line, minLevel) {
				out.Write(line)
			}
			if err != nil {
				return
			}
		}
	}()
}

// Flush closes the pipe and waits until the filter has passed on
// what C++ code wrote, so nothing is lost at exit.
func Flush() {
	logFilterMu.Lock()
	defer logFilterMu.Unlock()
	if !logFilterOn {
		return
	}
	logFilterOn = false
	syscall.Close(2)
	<-logFilterDone
}
