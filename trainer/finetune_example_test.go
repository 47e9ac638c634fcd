package trainer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/trainer"
)

// Fine-tuning in two phases: a head on the frozen backbone, then Resume
// with FineTune, which trains the backbone's top layers too at
// BaseLearningRate (default a tenth of LearningRate). The backbone here is
// a small tfcat model, exported; BaseLayers lists the layers FineTune
// names (a tfcat export's variables keep their TF1 names, one layer each;
// a Keras application's are its layers: Conv1, bn_Conv1, ...).
func ExampleOptions_fineTune() {
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
	base := &trainer.Base{Path: filepath.Join(dir, "backbone"), Output: "fc1/Relu:0", Channels: "bgr", Scale: "0,1"}
	layers, err := trainer.BaseLayers(base)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the backbone's layers, input to output:", layers)

	// Phase 1: the head alone.
	opt := trainer.Options{
		Data: data, Classes: []string{"dark", "light"}, Seed: 1, BatchSize: 10, Epochs: 5, LearningRate: 1e-2,
		ModelDir: filepath.Join(dir, "model"), Base: base,
	}
	res, err := trainer.Train(context.Background(), opt)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("phase 1: the head,", res.Step, "steps")
	before := variables(filepath.Join(dir, "model"))

	// Phase 2: from the frozen head's checkpoint, the backbone's top two
	// variables too (fc1's weights and biases), for 5 more epochs: Epochs
	// counts from step 0, the backbone comes from the checkpoint.
	opt.Resume, opt.Base, opt.FineTune, opt.Epochs = true, nil, "2", 10
	res, err = trainer.Train(context.Background(), opt)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("phase 2: the top", opt.FineTune, "backbone variables too, to step", res.Step)

	after := variables(filepath.Join(dir, "model"))
	for _, v := range []string{"base/Variable", "base/Variable_5", "base/Variable_6", "base/Variable_7"} {
		fmt.Println(v, "changed:", !slices.Equal(before[v], after[v]))
	}

	m, err := model.Open(filepath.Join(dir, "model"), model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	preds, err := m.PredictFiles([]string{filepath.Join(data, "light", "003.png")}, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("prediction:", m.Classes[preds[0].Class])
	// Output:
	// the backbone's layers, input to output: [Variable Variable_1 Variable_2 Variable_3 Variable_4 Variable_5 Variable_6 Variable_7]
	// phase 1: the head, 20 steps
	// phase 2: the top 2 backbone variables too, to step 40
	// base/Variable changed: false
	// base/Variable_5 changed: false
	// base/Variable_6 changed: true
	// base/Variable_7 changed: true
	// prediction: light
}

// variables reads the latest checkpoint's variables in dir; the backbone's
// are under base/.
func variables(dir string) map[string][]float32 {
	m, err := model.Open(dir, model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	v, err := m.Variables()
	if err != nil {
		log.Fatal(err)
	}
	return v
}
