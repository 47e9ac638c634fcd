package tflog_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/tflog"
)

// runSession builds and runs a one-op graph: enough for TensorFlow to log
// while it loads and when a session first runs.
func runSession() (float32, error) {
	s := op.NewScope()
	x := op.Placeholder(s, tf.Float)
	y := op.Add(s, x, op.Const(s, float32(3)))
	g, err := s.Finalize()
	if err != nil {
		return 0, err
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	in, err := tf.NewTensor(float32(2))
	if err != nil {
		return 0, err
	}
	out, err := sess.Run(map[tf.Output]*tf.Tensor{x: in}, []tf.Output{y}, nil)
	if err != nil {
		return 0, err
	}
	return out[0].Value().(float32), nil
}

// TestMain runs as the child of TestQuiet when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("TFLOG_TEST_CHILD") == "1" {
		v, err := runSession()
		fmt.Fprintln(os.Stderr, "go stderr line")
		fmt.Println(v, err, tflog.Active())
		tflog.Flush()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A line TensorFlow or absl logs, in either format.
var logLine = regexp.MustCompile(`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} |WARNING: All log messages before absl)`)

// TestQuiet runs a TensorFlow session in a child process (this test binary,
// which imports tflog) and reads its standard error.
func TestQuiet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		active bool
		logs   bool // TensorFlow's lines reach stderr
	}{
		{"default", nil, true, false},
		{"TFCAT_TF_LOGS=1", []string{"TFCAT_TF_LOGS=1"}, false, true},
		{"user level 0", []string{"TF_CPP_MIN_LOG_LEVEL=0"}, false, true},
		{"user level 1", []string{"TF_CPP_MIN_LOG_LEVEL=1"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(childEnv(), "TFLOG_TEST_CHILD=1")
			cmd.Env = append(cmd.Env, tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.String())
			}
			if want := fmt.Sprintf("5 <nil> %v\n", tc.active); string(out) != want {
				t.Errorf("child printed %q, want %q", out, want)
			}
			if !strings.Contains(stderr.String(), "go stderr line\n") {
				t.Errorf("Go's own stderr line is missing: %q", stderr.String())
			}
			if got := logLine.MatchString(stderr.String()); got != tc.logs {
				t.Errorf("TensorFlow log lines on stderr: %v, want %v:\n%s", got, tc.logs, stderr.String())
			}
		})
	}
}

// childEnv is the environment without the variables the cases set.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TF_CPP_MIN_LOG_LEVEL=") && !strings.HasPrefix(kv, "TFCAT_TF_LOGS=") {
			env = append(env, kv)
		}
	}
	return env
}

// A program that imports tflog runs TensorFlow without its log lines on
// standard error; Flush before exiting passes on whatever else C++ wrote.
func ExampleFlush() {
	// In package main: import _ "github.com/tfcat/tfcat/tflog"
	v, err := runSession()
	fmt.Println(v, err)
	tflog.Flush()
	// Output: 5 <nil>
}
