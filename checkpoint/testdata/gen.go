//go:build ignore

// gen writes the checkpoint under testdata/small that the package's tests and
// fuzzers read without TensorFlow: the test network of tfsession's tests (8x8x1,
// one conv layer of 2 filters, fc 4, two classes), initialised with seed 1
// and saved as tfcat saves every checkpoint. Regenerate (with libtensorflow):
//
//	go run ./checkpoint/testdata/gen.go
package main

import (
	"log"
	"os"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

func main() {
	n := network.Tutorial(2).WithInput(8, 8, 1)
	n.Conv = []network.ConvLayer{{Size: 3, Filters: 2}}
	n.FC = 4
	m, err := tfgraph.Build(n, tfgraph.BuildOptions{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	s, err := tfsession.NewSession(m, tfsession.SessionConfig{Device: tfsession.DeviceCPU, IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		log.Fatal(err)
	}
	dir := "checkpoint/testdata/small"
	if err := os.RemoveAll(dir); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Save(tfsession.SaveOptions{Dir: dir, Name: "model"}, network.Info{Classes: []string{"cat", "dog"}, Step: 3}); err != nil {
		log.Fatal(err)
	}
}
