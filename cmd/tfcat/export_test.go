package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/savedmodel"
)

// smallCheckpoint saves a seeded tutorial network on 28×28 grey images with
// the given class names and returns its folder.
func smallCheckpoint(t *testing.T, classes []string) string {
	t.Helper()
	return testmodel.Checkpoint(t, network.Tutorial(len(classes)).WithInput(28, 28, 1), testmodel.Options{Seed: 3, Classes: classes, Step: 1})
}

func TestExportCommand(t *testing.T) {
	ckpt := smallCheckpoint(t, []string{"cat", "dog"})
	out := filepath.Join(t.TempDir(), "export", "1")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string // in stdout on success, stderr on failure
	}{
		{"export", []string{"export", "--model", ckpt, "--out", out}, 0, "exported " + ckpt + " to " + out + ": signature serving_default, images 28x28x1 -> probabilities, classes (classes cat, dog)"},
		{"exists", []string{"export", "--model", ckpt, "--out", out}, 1, "pass --force"},
		{"force", []string{"export", "-m", filepath.Join(ckpt, "dogs-cats-model"), "-o", out, "--force", "--classes", "kitten,puppy"}, 0, "(classes kitten, puppy)"},
		{"quiet", []string{"export", "-m", ckpt, "-o", out, "--force", "-q"}, 0, ""},
		{"no out", []string{"export", "--model", ckpt}, 2, "--out is required"},
		{"argument", []string{"export", "--model", ckpt, "--out", out, "extra"}, 2, "takes no arguments"},
		{"from a SavedModel", []string{"export", "--model", out, "--out", out + "x"}, 1, "is a SavedModel already"},
		{"class count", []string{"export", "--model", ckpt, "--out", out + "y", "--classes", "a,b,c"}, 1, "3 class names given, but the model has 2"},
		{"missing", []string{"export", "--model", ckpt + "/nope", "--out", out + "z"}, 1, "no checkpoint here"},
		{"not a SavedModel folder", []string{"export", "--model", ckpt, "--out", ckpt, "--force"}, 1, "refusing to replace it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"tfcat"}, c.args...), &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr.String())
			}
			got := stdout.String()
			if code != 0 {
				got = stderr.String()
				if first, _, _ := strings.Cut(got, "\n"); !strings.HasPrefix(first, "tfcat: ") {
					t.Errorf("stderr %q is not a one-line error", got)
				}
			}
			if !strings.Contains(got, c.want) || (c.want == "" && got != "") {
				t.Errorf("output %q, want %q", got, c.want)
			}
		})
	}
	info, err := savedmodel.Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(info.Classes, ",") != "cat,dog" {
		t.Errorf("the last export has classes %v", info.Classes)
	}
	for _, p := range []string{out + "x", out + "y", out + "z"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a failed export wrote %s", p)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("the export folder holds %d entries, want 1 (no temporaries)", len(entries))
	}
}
