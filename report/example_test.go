package report_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/report"
	"github.com/tfcat/tfcat/trainer"
)

// Train a model, then write its report: the curves from the history that
// training kept in the model folder, and the scores on a test folder.
func Example() {
	dir, _ := os.MkdirTemp("", "tfcat-report")
	defer os.RemoveAll(dir)
	testenv.WriteClassFolders(filepath.Join(dir, "data"), []string{"dark", "light"}, 40, 16)
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
