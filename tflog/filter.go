package tflog

import (
	"bufio"
	"io"
	"regexp"
)

// TensorFlow's own format: "2026-12-03 18:19:21.075136: I tensorflow/...:153] ...".
var tfLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) `)

// absl's format: "I0000 00:00:1796327056.397267   17206 file.cc:401] ..."
// (before absl::InitializeLog the date is zeros and the time is Unix seconds).
var abslLine = regexp.MustCompile(`^([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ `)

const abslWarning = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

// expected matches the error lines the CUDA-enabled libtensorflow writes on
// every start where nothing is wrong for tfcat, which says itself what it
// found ("GPUs: none visible", or an error naming the missing GPU when one was
// asked for). The filter counts them as warnings, shown at
// TF_CPP_MIN_LOG_LEVEL=1 or 0:
//   - "Unable to register cuDNN/cuFFT/cuBLAS factory ... already been
//     registered": libtensorflow_cc and libtensorflow_framework each register
//     the CUDA plugins when they load, GPU or not;
//   - "failed call to cuInit: ... (303)": CUDA_ERROR_SHARED_OBJECT_INIT_FAILED,
//     the driver library (libcuda.so.1) is not installed: a machine without
//     an NVIDIA driver. Other cuInit failures (no device, a driver too old)
//     stay errors: they are what a GPU host's user needs to see.
var expected = regexp.MustCompile(`\] (Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin cu(DNN|FFT|BLAS) when one has already been registered|failed call to cuInit: .*\(303\))\s*$`)

// severity returns the line's log level (0 info, 1 warning, 2 error, 3 fatal)
// and whether it starts a TensorFlow or absl log message.
func severity(line []byte) (int, bool) {
	m := tfLine.FindSubmatch(line)
	if m == nil {
		m = abslLine.FindSubmatch(line)
	}
	if m == nil {
		return 0, false
	}
	switch m[1][0] {
	case 'I':
		return 0, true
	case 'W':
		return 1, true
	case 'E':
		return 2, true
	}
	return 3, true
}

// filter copies r to w line by line, dropping log messages below minLevel
// (with the lines that continue them: TensorFlow's CPU-feature message spans
// two) and absl's pre-initialisation warning.
func filter(r io.Reader, w io.Writer, minLevel int) {
	br := bufio.NewReader(r)
	dropping := false
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if lvl, ok := severity(line); ok {
				if lvl == 2 && expected.Match(line) {
					lvl = 1
				}
				dropping = lvl < minLevel
			} else if string(trimNewline(line)) == abslWarning {
				dropping = minLevel >= 1
			}
			// A line that starts no message continues the last one.
			if !dropping {
				w.Write(line)
			}
		}
		if err != nil {
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}
