//go:build linux && cgo

package tflog

/*
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

// Set by tfcat_tflog_preinit: the pipe's read end and the original stderr, or -1.
int tfcat_tflog_read = -1;
int tfcat_tflog_stderr = -1;

// Runs from the executable's .preinit_array, before any shared library's
// initialisers, libtensorflow's and libc's included. It cannot set
// TF_CPP_MIN_LOG_LEVEL: libc's initialiser, which runs next, resets environ to
// the original array. (Starting the process again with the variable set
// costs a second relocation of libtensorflow, ~130 ms here.) So it puts a
// pipe on fd 2, which the Go side reads and filters from init on; what
// TensorFlow writes while it loads waits in the pipe until then. Only system
// calls and the environment array given by the loader: libc is not yet
// initialised.
static void tfcat_tflog_preinit(int argc, char **argv, char **envp) {
	int level = 2;
	for (char **e = envp; e != NULL && *e != NULL; e++) {
		if (strcmp(*e, "TFCAT_TF_LOGS=1") == 0) return;
		if (strncmp(*e, "TF_CPP_MIN_LOG_LEVEL=", 21) == 0 && (*e)[21] != 0) {
			const char *v = *e + 21;
			level = 0; // as TensorFlow reads anything but digits
			if (v[0] >= '0' && v[0] <= '9' && v[1] == 0) level = v[0] - '0';
		}
	}
	if (level < 1) return;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) return;
	int orig = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (orig < 0 || dup2(p[1], 2) < 0) {
		close(p[0]);
		close(p[1]);
		if (orig >= 0) close(orig);
		return;
	}
	close(p[1]);
	// Room for everything logged before Go starts reading (a few hundred
	// bytes on every CPU seen; the default pipe holds 64 KiB).
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	tfcat_tflog_read = p[0];
	tfcat_tflog_stderr = orig;
}

__attribute__((section(".preinit_array"), used))
static void (*tfcat_tflog_preinit_entry)(int, char **, char **) = tfcat_tflog_preinit;
*/
import "C"

import (
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

var (
	mu   sync.Mutex
	on   bool
	done chan struct{}
	orig int
)

// start reads the pipe the preinit function put on fd 2, if it did.
func start(minLevel int) {
	r, o := int(C.tfcat_tflog_read), int(C.tfcat_tflog_stderr)
	if r < 0 || o < 0 {
		return
	}
	stderr := os.NewFile(uintptr(o), "/dev/stderr")
	os.Stderr = stderr
	debug.SetCrashOutput(stderr, debug.CrashOptions{})
	orig, on, done = o, true, make(chan struct{})
	go func() {
		defer close(done)
		filter(os.NewFile(uintptr(r), "tflog"), stderr, minLevel)
	}()
}

// Flush stops the filter: it puts the original standard error back on file
// descriptor 2 and waits until what C++ code wrote before has been passed on.
// Later C++ output goes straight to standard error, unfiltered. Call it
// before os.Exit or exec; it does nothing if no filter runs.
func Flush() {
	mu.Lock()
	defer mu.Unlock()
	if !on {
		return
	}
	on = false
	// Closes the pipe's write end; the reader sees end of file once no
	// other descriptor (a child's) holds it.
	if err := syscall.Dup3(orig, 2, 0); err != nil {
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a child process still holds the pipe
	}
}

// Active reports whether the filter runs.
func Active() bool {
	mu.Lock()
	defer mu.Unlock()
	return on
}
