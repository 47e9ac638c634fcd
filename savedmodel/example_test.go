package savedmodel_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// Export a checkpoint as a SavedModel, then load it back and predict.
func Example() {
	tmp, err := os.MkdirTemp("", "savedmodel-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cpu := tfsession.SessionConfig{Device: tfsession.DeviceCPU}

	// A checkpoint, as tfcat train writes one (here: untrained weights).
	m, err := tfgraph.Build(network.Tutorial(2).WithInput(28, 28, 1), tfgraph.BuildOptions{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	sess, err := tfsession.NewSession(m, cpu)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Init(); err != nil {
		log.Fatal(err)
	}
	ckpt := filepath.Join(tmp, "model")
	if _, err := sess.Save(tfsession.SaveOptions{Dir: ckpt}, network.Info{Classes: []string{"cat", "dog"}}); err != nil {
		log.Fatal(err)
	}

	// Export it: TensorFlow Serving and Python load the folder.
	out := filepath.Join(tmp, "export", "1")
	info, err := savedmodel.Export(ckpt, out, savedmodel.ExportOptions{Session: cpu})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Signatures, info.Height, info.Width, info.Channels, info.Classes)

	// Load it back in Go.
	if !savedmodel.IsSavedModel(out) {
		log.Fatal("not a SavedModel")
	}
	sm, err := savedmodel.Load(out, cpu)
	if err != nil {
		log.Fatal(err)
	}
	defer sm.Close()
	probs, err := sm.Predict(make([]float32, 28*28), 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sm.Classes(), len(probs))
	// Output:
	// [serving_default] 28 28 1 [cat dog]
	// [cat dog] 2
}
