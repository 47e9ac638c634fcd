package tfsession_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// A checkpoint written in another goroutine while training goes on: the
// snapshot holds the variables as they were when it was taken.
func ExampleSession_Snapshot() {
	net := network.Tutorial(2).WithInput(8, 8, 1)
	net.Conv, net.FC = []network.ConvLayer{{Size: 3, Filters: 2}}, 4
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: 1})
	if err != nil {
		panic(err)
	}
	s, err := tfsession.NewSession(m, tfsession.SessionConfig{Device: tfsession.DeviceCPU})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		panic(err)
	}
	batch := &pixels.Batch{X: make([]float32, 2*8*8), Y: []float32{1, 0, 0, 1}, N: 2}
	for i := range batch.X {
		batch.X[i] = float32(i%7) / 7
	}
	step := func() {
		if _, err := s.Step(batch); err != nil {
			panic(err)
		}
	}
	step()
	snap, err := s.Snapshot()
	if err != nil {
		panic(err)
	}
	defer snap.Free()
	dir, _ := os.MkdirTemp("", "snapshot")
	defer os.RemoveAll(dir)
	written := make(chan error)
	go func() {
		_, err := snap.Save(tfsession.SaveOptions{Dir: dir}, network.Info{Step: 1})
		written <- err
	}()
	step() // the next step runs while the checkpoint is written
	if err := <-written; err != nil {
		panic(err)
	}
	restored, info, err := tfsession.Resume(filepath.Join(dir, tfsession.DefaultCheckpointName), tfsession.SessionConfig{Device: tfsession.DeviceCPU}, net.LearningRate)
	if err != nil {
		panic(err)
	}
	defer restored.Close()
	fmt.Println("checkpoint of step", info.Step)
	// Output:
	// checkpoint of step 1
}
