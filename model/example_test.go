package model_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// saveUntrained writes a checkpoint of the tutorial's network, untrained,
// for 8×8 grey images of two classes: a stand-in for what tfcat train writes.
func saveUntrained(dir string) {
	m, err := tfgraph.Build(network.Tutorial(2).WithInput(8, 8, 1), tfgraph.BuildOptions{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	s, err := tfsession.NewSession(m, tfsession.SessionConfig{Device: tfsession.DeviceCPU})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Save(tfsession.SaveOptions{Dir: dir}, network.Info{Classes: []string{"cat", "dog"}}); err != nil {
		log.Fatal(err)
	}
}

// Open a model folder — or a checkpoint prefix, the Python tutorial's
// checkpoint, a SavedModel — and predict preprocessed images.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "tfcat-model")
	defer os.RemoveAll(dir)
	saveUntrained(dir)

	m, err := model.Open(dir, model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	h, w, c := m.InputSize()
	fmt.Println(m.Kind, filepath.Base(m.Path), m.Classes, h, w, c)

	x := make([]float32, 2*h*w*c) // two blank images, as dataset.Preprocess makes them
	p, err := m.Predict(x, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(p), "probabilities; rows sum to", p[0]+p[1] > 0.999 && p[0]+p[1] < 1.001)
	// Output:
	// tfcat checkpoint dogs-cats-model [cat dog] 8 8 1
	// 4 probabilities; rows sum to true
}

// Describe a model from its files, without loading it.
func ExampleInspect() {
	dir, _ := os.MkdirTemp("", "tfcat-model")
	defer os.RemoveAll(dir)
	saveUntrained(dir)

	d, err := model.Inspect(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.WrittenBy, d.InputSize, d.Classes, d.Parameters, "parameters")
	// Output:
	// tfcat [8 8 1] [cat dog] 36642 parameters
}
