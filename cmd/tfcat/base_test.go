package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainBase trains a head on an exported tfcat model through the CLI,
// and maps the backbone's errors to exit statuses and flag names.
func TestTrainBase(t *testing.T) {
	data := wideImages(t, 10)
	pre, sm := filepath.Join(t.TempDir(), "pre"), filepath.Join(t.TempDir(), "sm")
	for _, args := range [][]string{
		{"train", "--data", data, "--size", "16", "--channels", "1", "--batch", "4", "--iterations", "4", "--device", "/cpu:0",
			"--conv", "4", "--fc", "8", "--model-dir", pre},
		{"export", "--model", pre, "--out", sm},
	} {
		if code := run(append([]string{"tfcat", args[0], "-q"}, args[1:]...), io.Discard, os.Stderr); code != 0 {
			t.Fatalf("tfcat %s exited %d", args[0], code)
		}
	}
	empty := t.TempDir()
	base := []string{"--base", sm, "--base-output", "fc1/Relu:0"}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"trains", base, 0, ""},
		{"augmented: features per batch", append([]string{"--flip", "--fc", "4"}, base...), 0, ""},
		{"not a SavedModel", []string{"--base", empty}, 1, "backbone " + empty + ": not a SavedModel"},
		{"size", append([]string{"--size", "20"}, base...), 1, "takes 16x16 images, not the 20x20"},
		{"conv", append([]string{"--conv", "4"}, base...), 2, "--conv [4] cannot be used with a backbone"},
		{"scale", append([]string{"--base-scale", "1/0"}, base...), 2, "--base-scale 1/0"},
		{"channels", append([]string{"--base-channels", "yuv"}, base...), 2, "--base-channels yuv must be rgb or bgr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			args := append([]string{"tfcat", "train", "-q", "--data", data, "--batch", "4", "--iterations", "3", "--device", "/cpu:0",
				"--model-dir", filepath.Join(t.TempDir(), "m")}, c.args...)
			code := run(args, io.Discard, &stderr)
			msg := strings.TrimSpace(stderr.String())
			if code != c.code || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, msg, c.code, c.want)
			}
		})
	}
	// --resume rebuilds the graph from the checkpoint alone: no backbone folder.
	m := filepath.Join(t.TempDir(), "m")
	common := []string{"tfcat", "train", "-q", "--data", data, "--batch", "4", "--device", "/cpu:0", "--model-dir", m}
	if code := run(append(append(common, "--iterations", "3"), base...), io.Discard, os.Stderr); code != 0 {
		t.Fatalf("train exited %d", code)
	}
	if err := os.RemoveAll(sm); err != nil {
		t.Fatal(err)
	}
	if code := run(append(common, "--iterations", "6", "--resume"), io.Discard, os.Stderr); code != 0 {
		t.Fatalf("resume exited %d", code)
	}
	if code := run([]string{"tfcat", "eval", "-q", "--model", m, "--data", data, "--device", "/cpu:0"}, io.Discard, os.Stderr); code != 0 {
		t.Fatalf("eval exited %d", code)
	}
}
