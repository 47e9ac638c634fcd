package tfsession

import (
	"testing"

	"github.com/tfcat/tfcat"
)

func TestRuntimeVersion(t *testing.T) {
	if got, want := RuntimeVersion(), tfcat.TensorFlowVersion(); got != want {
		t.Fatalf("TF_Version() = %q, want the pinned %q", got, want)
	}
	if err := CheckRuntime(); err != nil {
		t.Fatal(err)
	}
	devs, err := Devices(SessionConfig{Device: DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) == 0 || devs[0].Type != "CPU" {
		t.Fatalf("devices %v: want a CPU first", devs)
	}
}
