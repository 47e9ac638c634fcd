package report_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/report"
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

// Train a model, then write its report: the curves from the history that
// training kept in the model folder, and the scores on a test folder.
func Example() {
	dir, _ := os.MkdirTemp("", "tfcat-report")
	defer os.RemoveAll(dir)
	writeFolder(filepath.Join(dir, "data"), 40)
	_, err := trainer.Train(context.Background(), trainer.Options{
		Data: filepath.Join(dir, "data"), Size: 16, Channels: 1, Validation: 0.2, Seed: 1,
		BatchSize: 8, Epochs: 3, LearningRate: 1e-3, ModelDir: filepath.Join(dir, "model"),
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := model.Open(filepath.Join(dir, "model"), model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	var page bytes.Buffer
	err = report.Write(&page, report.Options{Model: m, Data: filepath.Join(dir, "data")})
	if err != nil {
		log.Fatal(err)
	}
	html := page.String()
	fmt.Println("charts:", strings.Count(html, "<svg viewBox"))
	fmt.Println("confusion matrix:", strings.Contains(html, `<table class="confusion"`))
	fmt.Println("loads nothing:", strings.Contains(html, "default-src 'none'") && !strings.Contains(html, "<script"))
	// Output:
	// charts: 2
	// confusion matrix: true
	// loads nothing: true
}
