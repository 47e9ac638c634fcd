package trainer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/trainer"
)

// Train a classifier from Go on a folder of class folders, then open the
// checkpoint it wrote and predict.
func Example() {
	dir, _ := os.MkdirTemp("", "tfcat-example")
	defer os.RemoveAll(dir)
	testenv.WriteClassFolders(filepath.Join(dir, "data"), []string{"dark", "light"}, 40, 16)

	res, err := trainer.Train(context.Background(), trainer.Options{
		Data: filepath.Join(dir, "data"), Size: 16, Channels: 1, Validation: 0.2, Seed: 1,
		BatchSize: 8, Epochs: 5, LearningRate: 1e-3, ModelDir: filepath.Join(dir, "model"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trained", res.Step, "steps on", res.Classes)

	m, err := model.Open(filepath.Join(dir, "model"), model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	preds, err := m.PredictFiles([]string{filepath.Join(dir, "data", "light", "000.png")}, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prediction:", m.Classes[preds[0].Class])
	// Output:
	// trained 40 steps on [dark light]
	// prediction: light
}

// Events report a run as it goes: print the tutorial's line each epoch.
func ExampleOptions_onEvent() {
	dir, _ := os.MkdirTemp("", "tfcat-example")
	defer os.RemoveAll(dir)
	testenv.WriteClassFolders(filepath.Join(dir, "data"), []string{"dark", "light"}, 20, 16)
	_, err := trainer.Train(context.Background(), trainer.Options{
		Data: filepath.Join(dir, "data"), Size: 16, Channels: 1, Seed: 1, BatchSize: 8, Epochs: 2,
		ModelDir: filepath.Join(dir, "model"),
		OnEvent: func(e trainer.Event) error {
			switch e.Kind {
			case trainer.Start:
				fmt.Println(e.Train, "training images in", e.Classes)
			case trainer.Epoch:
				fmt.Println("epoch", e.Epoch, "at step", e.Step)
			case trainer.Done:
				fmt.Println("saved", filepath.Base(e.Checkpoint), "at step", e.Step)
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 40 training images in [dark light]
	// epoch 1 at step 1
	// epoch 2 at step 6
	// saved dogs-cats-model at step 10
}

// Transfer learning: train a head on the features of a pretrained
// SavedModel. Here the backbone is a small tfcat model, exported, whose
// first fully connected layer gives the features; a Keras application or a
// TF Hub model works the same way (with its own preprocessing, Channels and
// Scale). The result is one model: the checkpoint holds the backbone too.
func ExampleBase() {
	dir, _ := os.MkdirTemp("", "tfcat-example")
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	testenv.WriteClassFolders(data, []string{"dark", "grey", "light"}, 20, 16)
	_, err := trainer.Train(context.Background(), trainer.Options{
		Data: data, Size: 16, Channels: 1, Seed: 1, BatchSize: 10, Epochs: 3, LearningRate: 1e-3,
		FC: []int{16}, ModelDir: filepath.Join(dir, "pretrained"),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := savedmodel.Export(filepath.Join(dir, "pretrained"), filepath.Join(dir, "backbone"), savedmodel.ExportOptions{}); err != nil {
		log.Fatal(err)
	}

	res, err := trainer.Train(context.Background(), trainer.Options{
		Data: data, Classes: []string{"dark", "light"}, Seed: 1, BatchSize: 10, Epochs: 10, LearningRate: 1e-2,
		ModelDir: filepath.Join(dir, "model"),
		Base:     &trainer.Base{Path: filepath.Join(dir, "backbone"), Output: "fc1/Relu:0", Channels: "bgr", Scale: "0,1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trained a head for", res.Classes)

	m, err := model.Open(filepath.Join(dir, "model"), model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	h, w, c := m.InputSize()
	fmt.Printf("input %dx%dx%d, the backbone's\n", h, w, c)
	preds, err := m.PredictFiles([]string{filepath.Join(data, "light", "003.png")}, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prediction:", m.Classes[preds[0].Class])
	// Output:
	// trained a head for [dark light]
	// input 16x16x1, the backbone's
	// prediction: light
}

// targetAccuracy stops a run once an epoch's validation accuracy reaches a
// target: a Hook, called with every event of the run.
type targetAccuracy float32

func (t targetAccuracy) Event(e trainer.Event) error {
	if e.Kind == trainer.Epoch && e.ValAccuracy >= float32(t) {
		return trainer.ErrStop // after this epoch's checkpoint
	}
	return nil
}

// A hook takes part in the training loop: this one stops the run early.
func ExampleHook() {
	dir, _ := os.MkdirTemp("", "tfcat-example")
	defer os.RemoveAll(dir)
	testenv.WriteClassFolders(filepath.Join(dir, "data"), []string{"dark", "light"}, 40, 16)
	res, err := trainer.Train(context.Background(), trainer.Options{
		Data: filepath.Join(dir, "data"), Size: 16, Channels: 1, Validation: 0.2, Seed: 1,
		BatchSize: 8, Epochs: 50, LearningRate: 1e-3, ModelDir: filepath.Join(dir, "model"),
		Hooks: []trainer.Hook{targetAccuracy(1)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped by the hook:", res.Reason == trainer.Stopped, "before the last step:", res.Step < 50*64/8)
	// Output:
	// stopped by the hook: true before the last step: true
}
