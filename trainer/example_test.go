package trainer_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/trainer"
)

// writeFolder makes a class folder tree: "dark" and "light" 16×16 PNGs.
func writeFolder(dir string, perClass int) {
	for c, class := range []string{"dark", "light"} {
		os.MkdirAll(filepath.Join(dir, class), 0o755)
		for i := range perClass {
			img := image.NewGray(image.Rect(0, 0, 16, 16))
			for p := range img.Pix {
				img.Pix[p] = uint8(20 + 180*c + (p*7+i*13)%50)
			}
			f, _ := os.Create(filepath.Join(dir, class, fmt.Sprintf("%03d.png", i)))
			png.Encode(f, img)
			f.Close()
		}
	}
}

// Train a classifier from Go on a folder of class folders, then open the
// checkpoint it wrote and predict.
func Example() {
	dir, _ := os.MkdirTemp("", "tfcat-example")
	defer os.RemoveAll(dir)
	writeFolder(filepath.Join(dir, "data"), 40)

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
	writeFolder(filepath.Join(dir, "data"), 20)
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
