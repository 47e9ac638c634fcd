package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestExitCodes: 0 on success, 2 for a usage error, 1 for any other failure;
// errors are one line.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	// What a GPU device says depends on whether TensorFlow sees one here (the
	// CUDA build on a GPU host, or not), as --device resolves it.
	gpu0, gpu99 := "device /gpu:0: no GPU is visible", "device /gpu:99: no GPU is visible"
	if n := len(visibleGPUs(t)); n > 0 {
		// /gpu:0 exists, so the next check fails: the image file.
		gpu0, gpu99 = "x.png: no such file or directory", fmt.Sprintf("device /gpu:99: only %d GPU(s) visible", n)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tfcat", "version"}, 0, ""},
		{[]string{"tfcat", "--help"}, 0, ""},
		{[]string{"tfcat", "train", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"tfcat", "train"}, 2, `Required flag "data" not set`},
		{[]string{"tfcat", "frobnicate"}, 2, "frobnicate"},
		{[]string{"tfcat", "predict", "--format", "xml", "a.png"}, 2, `--format "xml"`},
		{[]string{"tfcat", "train", "--data", dir, "--channels", "2"}, 2, "--channels 2"},
		{[]string{"tfcat", "train", "--data", dir + "/missing"}, 1, "missing: no such file or directory"},
		{[]string{"tfcat", "predict", "--model", dir, dir}, 1, "no image files"},
		{[]string{"tfcat", "inspect", "--model", dir}, 1, "not a model folder"},
		{[]string{"tfcat", "predict", "--device", "/gpu:0", "--model", dir, "x.png"}, 1, gpu0},
		{[]string{"tfcat", "predict", "--device", "/gpu:99", "--model", dir, "x.png"}, 1, gpu99},
		{[]string{"tfcat", "predict", "--device", "/tpu:3", "--model", dir, "x.png"}, 1, `unknown device "/tpu:3"`},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args[1:], code, c.code, errb.String())
		}
		if c.want != "" && !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: stderr %q, want it to mention %q", c.args[1:], errb.String(), c.want)
		}
		if first, _, _ := strings.Cut(errb.String(), "\n"); code != 0 && !strings.HasPrefix(first, "tfcat: ") {
			t.Errorf("%v: first stderr line %q is not tfcat's one-line error", c.args[1:], first)
		}
	}
}
