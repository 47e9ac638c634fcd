package savedmodel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/fuzzlimit"
)

// FuzzSavedModel reads arbitrary saved_model.pb files as Inspect and Load do
// before handing the graph to TensorFlow: the SavedModel proto, the "serve"
// MetaGraph, its signature, the op allowlist and the class names asset. Each
// input must stay within fuzzlimit's time and memory limits. CI runs it for a
// short time:
//
//	go test ./savedmodel/ -run '^$' -fuzz FuzzSavedModel -fuzztime 5s
func FuzzSavedModel(f *testing.F) {
	out := filepath.Join(f.TempDir(), "export")
	if _, err := Export(saveCheckpoint(f, small(2), []string{"cat", "dog"}), out, ExportOptions{}); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(out, ModelFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x08, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(out, ModelFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "reading a saved_model.pb", func() {
			Inspect(out)
			meta, err := checkpoint.ReadServeGraph(out)
			if err != nil || meta.GraphDef == nil {
				return
			}
			if sig := meta.SignatureDef[SignatureKey]; sig != nil {
				if _, _, err := pickInput(sig); err == nil {
					pickProbabilities(sig)
					checkpoint.CheckGraph(meta.GraphDef, loaderRoots(meta, sig), ModelFile)
				}
			}
		})
	})
}
