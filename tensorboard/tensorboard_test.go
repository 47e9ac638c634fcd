package tensorboard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
)

// TestPythonReadsEvents: TensorFlow's own reader gives back the scalars and
// steps written.
func TestPythonReadsEvents(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	for step := int64(1); step <= 3; step++ {
		if err := w.Scalars(step, map[string]float32{"loss": 1 / float32(step), "accuracy": 0.25 * float32(step)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "read.py")
	os.WriteFile(script, []byte(`import sys, glob
import tensorflow as tf
for path in glob.glob(sys.argv[1] + "/events.out.tfevents.*"):
    for e in tf.compat.v1.train.summary_iterator(path):
        for v in e.summary.value:
            print(e.step, v.tag, "%.4f" % v.simple_value)
`), 0o644)
	out := testenv.RunPython(t, script, dir)
	for step := 1; step <= 3; step++ {
		for _, want := range []string{fmt.Sprintf("%d loss %.4f", step, 1/float32(step)), fmt.Sprintf("%d accuracy %.4f", step, 0.25*float32(step))} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("Python read:\n%s\nwant a line %q", out, want)
			}
		}
	}
}

func TestMaskedCRC(t *testing.T) {
	// CRC32-C of "123456789" is 0xe3069283 (RFC 3720); masked as TFRecord does.
	c := uint32(0xe3069283)
	if got, want := maskedCRC([]byte("123456789")), (c>>15|c<<17)+0xa282ead8; got != want {
		t.Errorf("maskedCRC = %#x, want %#x", got, want)
	}
}
