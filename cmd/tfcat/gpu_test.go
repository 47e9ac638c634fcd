package main

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tfcat/tfcat/tfsession"
)

// gpuNames is the GPUs TensorFlow sees from this process, by the call
// --device auto and /gpu:N resolve with (tfsession.ResolveDevice): none with
// the CPU libtensorflow or on a host without a GPU, some with the CUDA build
// on a GPU host. Tests that print device lines decide by it what to expect.
var gpuNames = sync.OnceValues(func() ([]string, error) {
	gpus, err := tfsession.GPUs()
	names := make([]string, len(gpus))
	for i, g := range gpus {
		names[i] = g.Name
	}
	return names, err
})

func visibleGPUs(t *testing.T) []string {
	t.Helper()
	names, err := gpuNames()
	if err != nil {
		t.Fatalf("listing TensorFlow's devices: %v", err)
	}
	return names
}

// scriptCondition is the scripts' [gpu]: TensorFlow sees a GPU. The scripts'
// commands run with testscript's reduced environment, which drops
// CUDA_VISIBLE_DEVICES and LD_LIBRARY_PATH; where those decide what a GPU
// host's tfcat sees, the scripts' device lines disagree with [gpu] and fail
// rather than pass.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "gpu":
		names, err := gpuNames()
		return len(names) > 0, err
	case "bf16": // oneDNN multiplies bfloat16 in hardware here, as the scripts' environment says
		_, err := tfsession.ResolvePrecision("bf16", tfsession.DeviceCPU, true)
		return err == nil, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// TestVersionDevices: tfcat version lists every device as "device NAME
// (TYPE)", and its GPUs are the ones TensorFlow sees; with none it says so in
// one line, "GPUs: none visible". It holds with the CPU and the CUDA build.
func TestVersionDevices(t *testing.T) {
	gpus := visibleGPUs(t)
	var out, errb bytes.Buffer
	if code := run([]string{"tfcat", "version"}, &out, &errb); code != 0 {
		t.Fatalf("tfcat version: exit %d, stderr %q", code, errb.String())
	}
	line := regexp.MustCompile(`^device (/job:localhost/replica:0/task:0/device:([A-Z_]+):[0-9]+) \(([A-Z_]+)\)$`)
	var listed []string
	cpu, noneLines := false, 0
	for _, l := range strings.Split(out.String(), "\n") {
		switch m := line.FindStringSubmatch(l); {
		case l == "GPUs: none visible":
			noneLines++
		case strings.HasPrefix(l, "device ") && m == nil:
			t.Errorf("malformed device line %q", l)
		case m != nil && m[2] != m[3]:
			t.Errorf("device line %q: type %s in the name, %s in brackets", l, m[2], m[3])
		case m != nil && m[3] == "GPU":
			listed = append(listed, m[1])
		case m != nil && m[3] == "CPU":
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("no CPU device line in\n%s", out.String())
	}
	if len(gpus) == 0 {
		if noneLines != 1 || len(listed) > 0 {
			t.Errorf("TensorFlow sees no GPU: want one line %q and no GPU device line, got\n%s", "GPUs: none visible", out.String())
		}
	} else if noneLines != 0 || !slices.Equal(listed, gpus) {
		t.Errorf("TensorFlow sees GPUs %v: want a device line for each and no %q, got\n%s", gpus, "GPUs: none visible", out.String())
	}
}
