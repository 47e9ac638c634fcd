package onednn

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWanted(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.png")
	if err := os.WriteFile(img, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"tfcat", "--onednn", "predict", img}, true},
		{[]string{"tfcat", "-onednn", "version"}, true},
		{[]string{"tfcat", "--onednn=true", "inspect"}, true},
		{[]string{"tfcat", "--onednn=false", "train"}, false},
		{[]string{"tfcat", "-onednn=false", "predict", dir}, false},
		{[]string{"tfcat"}, false},
		{[]string{"tfcat", "version"}, false},
		{[]string{"tfcat", "train", "--data", dir}, true},
		{[]string{"tfcat", "eval", "--model", dir}, true},
		{[]string{"tfcat", "serve"}, true},
		{[]string{"tfcat", "predict", "--model", dir, img}, false},   // one image: no restart
		{[]string{"tfcat", "predict", "-m", dir, "-q", img}, false},  // the model folder is a flag's value
		{[]string{"tfcat", "predict", "--model=" + dir, img}, false}, // the value in the flag
		{[]string{"tfcat", "predict", "--model", dir, dir}, true},    // a folder
		{[]string{"tfcat", "predict", img, img}, true},               // several images
		{[]string{"tfcat", "predict", "--batch", "8", "--", img, img}, true},
		{[]string{"tfcat", "predict", "--onednn", img}, false}, // a command's flag, not the global one
	}
	for _, c := range cases {
		if got := Wanted(c.args); got != c.want {
			t.Errorf("Wanted(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
