package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tfcat/tfcat/internal/browser"
	"github.com/tfcat/tfcat/internal/testenv"
)

// tfcat runs the command in-process and fails the test on a non-zero exit;
// it returns stdout.
func tfcat(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"tfcat"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("tfcat %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// stopServe stops the tfcat serve that startServe started, as Ctrl-C would.
func stopServe(t *testing.T, done chan int) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tfcat serve did not stop")
	}
}

// TestReportAndPageOfDemoModel trains a model as the README's demo does
// (smaller: 600 images, 4 epochs), then checks `tfcat eval` and `tfcat
// report` against the confusion matrix counted from `tfcat predict` on each
// class folder — cell for cell, and the accuracy — and the
// validation accuracy rising over the epochs, and drives `tfcat serve`'s
// page in headless Chromium with a test image, whose prediction must be
// tfcat predict's. With $TFCAT_SCREENSHOTS set it keeps the screenshots the
// README shows.
func TestReportAndPageOfDemoModel(t *testing.T) {
	dir := t.TempDir()
	train, test, modelDir := filepath.Join(dir, "train"), filepath.Join(dir, "test"), filepath.Join(dir, "model")
	tfcat(t, "data", "fashion-mnist", "--out", train, "--classes", "tshirt-top,trouser", "--limit", "300")
	tfcat(t, "data", "fashion-mnist", "--out", test, "--split", "test", "--classes", "tshirt-top,trouser", "--limit", "250")
	tfcat(t, "train", "--data", train, "--size", "28", "--channels", "1", "--epochs", "4", "--lr", "1e-3",
		"--model-dir", modelDir, "--device", "/cpu:0", "-q")

	var ev struct {
		Images    int
		Accuracy  float64
		Classes   []string
		Confusion [][]int
	}
	if err := json.Unmarshal([]byte(tfcat(t, "eval", "--model", modelDir, "--data", test, "-f", "json", "--device", "/cpu:0")), &ev); err != nil {
		t.Fatal(err)
	}
	// The confusion matrix counted here from tfcat predict on each class
	// folder (the true class), independently of the evaluation that tfcat
	// eval and tfcat report share (model.Evaluate).
	want := make([]int, len(ev.Classes)*len(ev.Classes))
	right, images := 0, 0
	for truth, class := range ev.Classes {
		var preds []struct {
			Index int
			Error string
		}
		if err := json.Unmarshal([]byte(tfcat(t, "predict", "--model", modelDir, "-f", "json", "--device", "/cpu:0", filepath.Join(test, class))), &preds); err != nil {
			t.Fatal(err)
		}
		for _, p := range preds {
			if p.Error != "" || p.Index < 0 || p.Index >= len(ev.Classes) {
				t.Fatalf("predict %s: %+v", class, p)
			}
			want[truth*len(ev.Classes)+p.Index]++
			images++
			if p.Index == truth {
				right++
			}
		}
	}
	var evCells []int
	for _, row := range ev.Confusion {
		evCells = append(evCells, row...)
	}
	if !slices.Equal(evCells, want) || len(want) != 4 || images != 500 {
		t.Errorf("tfcat eval's confusion matrix %v; counted from tfcat predict on each class folder %v (%d images)", ev.Confusion, want, images)
	}
	out := filepath.Join(dir, "report.html")
	tfcat(t, "report", "--model", modelDir, "--data", test, "--out", out, "--device", "/cpu:0", "-q")
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	var cells []int
	for _, m := range regexp.MustCompile(`data-count="(\d+)"`).FindAllStringSubmatch(html, -1) {
		n, _ := strconv.Atoi(m[1])
		cells = append(cells, n)
	}
	if !slices.Equal(cells, want) {
		t.Errorf("the report's confusion matrix %v; counted from tfcat predict on each class folder %v", cells, want)
	}
	if acc := fmt.Sprintf(`id="accuracy">%.1f%%<`, 100*float64(right)/float64(images)); !strings.Contains(html, acc) {
		t.Errorf("the report lacks the accuracy %s (%d of %d right)", acc, right, images)
	}
	if !strings.Contains(html, fmt.Sprintf(`<span id="images">%d</span>`, images)) {
		t.Errorf("the report does not say %d images", images)
	}
	var valAcc []float64
	series := regexp.MustCompile(`(?s)data-series="val_accuracy">(.*?)</g>`).FindStringSubmatch(html)
	if series == nil {
		t.Fatal("no validation accuracy series in the report")
	}
	for _, m := range regexp.MustCompile(`data-value="([0-9.e-]+)"`).FindAllStringSubmatch(series[1], -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		valAcc = append(valAcc, v)
	}
	if n := len(valAcc); n != 4 || valAcc[n-1] < valAcc[0]+0.2 || valAcc[n-1] < 0.85 {
		t.Errorf("validation accuracy per epoch %v: want 4 epochs rising to over 85%%", valAcc)
	}
	if !strings.Contains(html, "<dd>"+train+` <span class="note">480 training and 120 validation images</span>`) || !strings.Contains(html, `id="runs"`) {
		t.Error("the report does not show the training data and runs")
	}

	p := browser.Open(t, "file://"+out, browser.Options{Width: 1000, Height: 700})
	p.CheckedScreenshot(t, "report.png", 1000, 1500)

	// The page of tfcat serve, with one of the test images picked.
	image := filepath.Join(test, "trouser", firstFile(t, filepath.Join(test, "trouser")))
	var preds []struct{ Class string }
	if err := json.Unmarshal([]byte(tfcat(t, "predict", "--model", modelDir, "-f", "json", "--device", "/cpu:0", image)), &preds); err != nil || len(preds) != 1 {
		t.Fatalf("predict: %v %v", preds, err)
	}
	url, _, done := startServe(t, "--model", modelDir, "--name", "fashion")
	defer stopServe(t, done)
	p = p.NewPage(t)
	if err := p.Do(chromedp.Navigate(url + "/")); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{image})); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(browser.WaitFor(`!document.getElementById('result').hidden`, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	class, err := browser.Run(p, chromedp.Evaluate[string](`document.getElementById('class').textContent`))
	if err != nil || class != preds[0].Class {
		t.Errorf("the page predicts %q (%v), tfcat predict %q", class, err, preds[0].Class)
	}
	if out := p.RequestsOutside(url+"/", "blob:"+url+"/"); len(out) > 0 {
		t.Errorf("the page requested %q", out)
	}
	p.CheckedScreenshot(t, "serve-page.png", 1000, 600)
}

// TestReportAndPageOfPythonCheckpoint: a checkpoint the Python tutorial's
// Saver wrote has no training history and no class names; the report and
// the serve page say so, and both still work.
func TestReportAndPageOfPythonCheckpoint(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "py")
	testenv.RunPython(t, "-c", `
import os, sys
sys.path.insert(0, sys.argv[1])
import tutorial as T
T.build(size=28, channels=1)
with T.session() as s:
    s.run(T.tf1.global_variables_initializer())
    T.tf1.train.Saver().save(s, os.path.join(sys.argv[2], "dogs-cats-model"))
`, filepath.Join("..", "..", "tfsession", "testdata"), py)
	test := filepath.Join(dir, "test")
	tfcat(t, "data", "fashion-mnist", "--out", test, "--split", "test", "--classes", "sandal,bag", "--limit", "20")
	out := filepath.Join(dir, "report.html")
	tfcat(t, "report", "--model", py, "--data", test, "--out", out, "--device", "/cpu:0", "-q")
	page, _ := os.ReadFile(out)
	for _, want := range []string{"TensorFlow checkpoint, written by Python TensorFlow", `id="no-history"`, "stores no class names",
		"2: 0, 1", `<span id="images">40</span>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the report lacks %q", want)
		}
	}

	url, _, done := startServe(t, "--model", py)
	defer stopServe(t, done)
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `id="unnamed"`) || !strings.Contains(string(body), "<li>0</li><li>1</li>") {
		t.Errorf("the serve page of a Python checkpoint:\n%s", body)
	}
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("%s: %v", dir, err)
	}
	return entries[0].Name()
}
