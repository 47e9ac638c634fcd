package tfsession

import (
	"fmt"
	"testing"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// BenchmarkPrecision times the tutorial's training step (128×128×3, batch
// 32, Adam) in float32 and with TensorFlow's oneDNN bfloat16 rewrite
// (SessionConfig.Precision = BF16), in alternating blocks:
//
//	go test -run '^$' -bench Precision -benchtime 10x ./tfsession/
func BenchmarkPrecision(b *testing.B) {
	var sessions []*Session
	names := []string{"f32", "bf16"}
	for _, p := range []Precision{F32, BF16} {
		s, err := NewSession(mustBuild(b, network.Tutorial(2), tfgraph.BuildOptions{Seed: 1}), SessionConfig{Device: DeviceCPU, Precision: p})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	alternateSteps(b, names, sessions)
}

// ResolvePrecision turns a user's choice into a session's: auto is f32 for
// inference everywhere, and bf16 for training where the CPU multiplies
// bfloat16 in hardware.
func ExampleResolvePrecision() {
	p, err := ResolvePrecision("auto", DeviceCPU, false)
	fmt.Println(p, err)
	_, err = ResolvePrecision("fp16", DeviceCPU, false)
	fmt.Println(err)
	// Output:
	// f32 <nil>
	// precision fp16 needs a GPU (TensorFlow's float16 rewrite is CUDA's); running on /cpu:0
}
