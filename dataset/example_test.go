package dataset_test

import (
	"fmt"
	"log"
	"os"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/pixels"
)

// Loading class folders, as the tutorial's read_train_sets does.
func ExampleLoad() {
	set, err := dataset.Load("testdata/pets", dataset.Options{
		Size:           128,  // 128×128
		Channels:       3,    // BGR, as cv2.imread
		ValidationSize: 0.34, // int(0.34 * 6) = 2 validation images
		Seed:           1,
	})
	if err != nil {
		log.Fatal(err)
	}
	r := set.Report()
	fmt.Println(set.Classes, r.PerClass)
	fmt.Println("train", set.Train.Len(), "validation", set.Validation.Len(), "skipped", len(r.Skipped))
	// Output:
	// [cats dogs] [3 3]
	// train 4 validation 2 skipped 0
}

// Batches wrap around as the tutorial's next_batch does: the short tail of
// an epoch is dropped and the epoch counter increments.
func ExampleSplit_NextBatch() {
	set, err := dataset.Load("testdata/pets", dataset.Options{Size: 64, ValidationSize: 2})
	if err != nil {
		log.Fatal(err)
	}
	var b pixels.Batch // reused from batch to batch
	for range 3 {
		if err := set.Train.NextBatch(3, &b); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d images (%d floats), %d labels, epochs done %d\n", b.N, len(b.X), len(b.Y), set.Train.Epochs())
	}
	// Output:
	// 3 images (36864 floats), 6 labels, epochs done 0
	// 3 images (36864 floats), 6 labels, epochs done 1
	// 3 images (36864 floats), 6 labels, epochs done 2
}

// Streaming: nothing is decoded until a batch needs it.
func ExampleOpen() {
	set, err := dataset.Open("testdata/pets", dataset.Options{Size: 32, Channels: 1})
	if err != nil {
		log.Fatal(err)
	}
	var b pixels.Batch
	if err := set.Train.NextBatch(6, &b); err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.N, len(b.X))
	// Output: 6 6144
}

// The tensor predict.py feeds the network for one image.
func ExamplePreprocessFile() {
	x, err := dataset.PreprocessFile("testdata/pets/cats/cat1.jpg", 128, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(x)) // 128 × 128 × 3, reshape to [1, 128, 128, 3]
	// Output: 49152
}

// Images already in memory, e.g. an HTTP upload.
func ExamplePreprocess() {
	data, err := os.ReadFile("testdata/pets/dogs/dog3.png")
	if err != nil {
		log.Fatal(err)
	}
	x, err := dataset.Preprocess(data, 28, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(x))
	// Output: 784
}

// Decoding and resizing step by step.
func ExampleResize() {
	img, err := dataset.DecodeFile("testdata/pets/dogs/dog1.jpg", 3, 0)
	if err != nil {
		log.Fatal(err)
	}
	small, err := dataset.Resize(img, 128, 128)
	if err != nil {
		log.Fatal(err)
	}
	x := small.Float32(nil)
	fmt.Println(img.Width, img.Height, "->", small.Width, small.Height, len(x))
	// Output: 64 48 -> 128 128 49152
}

// Fashion-MNIST as class folders of grey PNG files, ready for Load.
func ExampleExportFashionMNIST() {
	dir, err := os.MkdirTemp("", "fashion")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	counts, err := dataset.ExportFashionMNIST("", dir, dataset.ExportOptions{
		Split:   "test",
		Classes: []string{"sneaker", "ankle-boot"},
		Limit:   50,
	})
	if err != nil {
		log.Fatal(err)
	}
	set, err := dataset.Load(dir, dataset.Options{Size: 28, Channels: 1, ValidationSize: 0.2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts, set.Classes, set.Train.Len(), set.Validation.Len())
	// Output: [50 50] [ankle-boot sneaker] 80 20
}
