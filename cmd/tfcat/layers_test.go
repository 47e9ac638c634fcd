package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tfcat/tfcat/model"
)

// wideImages writes two classes of 40×24 grey PNGs: horizontal and vertical
// gradients, with noise.
func wideImages(t *testing.T, perClass int) string {
	t.Helper()
	dir := t.TempDir()
	for c, class := range []string{"horizontal", "vertical"} {
		os.MkdirAll(filepath.Join(dir, class), 0o755)
		for i := range perClass {
			img := image.NewGray(image.Rect(0, 0, 40, 24))
			for y := range 24 {
				for x := range 40 {
					v := x * 6
					if c == 1 {
						v = y * 10
					}
					img.SetGray(x, y, color.Gray{Y: uint8(v + (x*7+y*13+i*29)%40)})
				}
			}
			var buf bytes.Buffer
			png.Encode(&buf, img)
			if err := os.WriteFile(filepath.Join(dir, class, fmt.Sprintf("%02d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestServeNetworkBeyondTutorial trains a network with dropout, batch
// normalisation, two hidden layers and padding through the CLI, exports it,
// and serves the SavedModel: the server's probabilities are the checkpoint's
// for the same file, so both padded the image the same way.
func TestServeNetworkBeyondTutorial(t *testing.T) {
	data := wideImages(t, 10)
	ckpt := filepath.Join(t.TempDir(), "model")
	out := filepath.Join(t.TempDir(), "sm")
	for _, args := range [][]string{
		{"train", "--data", data, "--size", "16", "--channels", "1", "--batch", "4", "--iterations", "8", "--device", "/cpu:0",
			"--conv", "4,8", "--fc", "8,4", "--dropout", "0.3", "--batch-norm", "--resize", "pad", "--model-dir", ckpt},
		{"export", "--model", ckpt, "--out", out},
	} {
		if code := run(append([]string{"tfcat", args[0], "-q"}, args[1:]...), io.Discard, os.Stderr); code != 0 {
			t.Fatalf("tfcat %s exited %d", args[0], code)
		}
	}
	file := filepath.Join(data, "vertical", "03.png")
	m, err := model.Open(ckpt, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.ResizeMode() != "pad" {
		t.Fatalf("the checkpoint's resize mode is %q", m.ResizeMode())
	}
	preds, err := m.PredictFiles([]string{file}, 1)
	if err != nil || preds[0].Err != nil {
		t.Fatal(err, preds[0].Err)
	}
	want := preds[0].Probabilities

	data64, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	url, stderr, done := startServe(t, "--model", out, "--name", "m")
	code, v := httpDo(t, "POST", url+"/v1/models/m:predict",
		`{"signature_name": "serving_default", "instances": [{"images": {"b64": "`+base64.StdEncoding.EncodeToString(data64)+`"}}]}`)
	rows, _ := v["predictions"].([]any)
	if code != 200 || len(rows) != 1 {
		t.Fatalf("predict: %d %v", code, v)
	}
	probs, _ := rows[0].([]any)
	if row, ok := rows[0].(map[string]any); ok {
		probs, _ = row["probabilities"].([]any)
	}
	if len(probs) != len(want) {
		t.Fatalf("served %v, want %d probabilities", rows[0], len(want))
	}
	for i, p := range probs {
		// The same graph served and predicted: 8 float32 ulps of 1
		// (internal/testenv.SameGraphProb).
		if f, _ := p.(float64); math.Abs(f-float64(want[i])) > 1e-6 {
			t.Errorf("served probability %d: %v, the checkpoint's %g", i, p, want[i])
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tfcat serve did not stop on SIGTERM")
	}
}
