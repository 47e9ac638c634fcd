package onednn

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func runtimeIsLinux() bool { return runtime.GOOS == "linux" }

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

func TestTensorFlowDefault(t *testing.T) {
	if TensorFlowDefault([]string{"fma", "avx2", "avx512f"}) {
		t.Error("AVX-512 without VNNI or BF16: TensorFlow leaves oneDNN off")
	}
	if !TensorFlowDefault([]string{"avx2", "avx512f", "avx512_bf16"}) || !TensorFlowDefault([]string{"amx_tile"}) {
		t.Error("VNNI, BF16 or AMX: TensorFlow turns oneDNN on itself")
	}
	if f := cpuFlags(); len(f) == 0 && runtimeIsLinux() {
		t.Error("no CPU flags read from /proc/cpuinfo")
	}
}
