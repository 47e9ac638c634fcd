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
