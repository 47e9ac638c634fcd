package checkpoint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
)

// The readers of checkpoint files a user may be handed, fuzzed for crashes
// and for time and memory (fuzzlimit's limits), with no TensorFlow (the
// package builds with CGO_ENABLED=0). CI runs each for a short time:
//
//	go test ./checkpoint/ -run '^$' -fuzz FuzzState -fuzztime 5s
//	go test ./checkpoint/ -run '^$' -fuzz FuzzMetaGraph -fuzztime 5s
//	go test ./checkpoint/ -run '^$' -fuzz FuzzIndex -fuzztime 5s
//
// tfsession's FuzzRestoreIndex hands fuzzed .index files to TensorFlow's own
// reader, and its FuzzMetaGraph reads tfcat's records in a .meta.

// FuzzState parses arbitrary "checkpoint" state files.
func FuzzState(f *testing.F) {
	for _, s := range []string{
		"model_checkpoint_path: \"model.ckpt-7\"\nall_model_checkpoint_paths: \"model.ckpt-5\"\nall_model_checkpoint_paths: \"model.ckpt-7\"\n",
		"model_checkpoint_path: \"a\\\"b\"\nall_model_checkpoint_timestamps: 1.5\nlast_preserved_timestamp: 2\n",
		"# comment\n\nmodel_checkpoint_path: 'x'\n",
		"model_checkpoint_path \"x\"",
		"",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, StateFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "reading a checkpoint state file", func() {
			st, err := ReadState(dir)
			if err == nil && st.ModelCheckpointPath == "" {
				t.Fatalf("accepted a state with no model_checkpoint_path: %q", data)
			}
		})
	})
}

// FuzzMetaGraph reads arbitrary .meta files as tfcat does before it hands a
// graph to TensorFlow: the MetaGraphDef, the op allowlist from the roots
// tfcat runs, the variables, the pruned graph.
func FuzzMetaGraph(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(small, "model"+MetaSuffix))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Add([]byte{})
	prefix := filepath.Join(f.TempDir(), "model")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(prefix+MetaSuffix, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "reading a .meta file", func() {
			meta, err := ReadMetaGraph(prefix)
			if err != nil {
				return
			}
			roots := []string{"y_pred", "x"}
			if sd := meta.SaverDef; sd != nil {
				roots = append(roots, sd.RestoreOpName)
				ParseTensorName(sd.FilenameTensorName)
			}
			if CheckGraph(meta.GraphDef, roots, prefix+MetaSuffix) == nil {
				PruneGraph(meta.GraphDef, roots)
			}
			Parameters(GraphVariables(meta))
		})
	})
}

// FuzzIndex checks arbitrary .index files against the small checkpoint's
// data file: CheckIndex must refuse or accept, within the limits, never
// crash.
func FuzzIndex(f *testing.F) {
	prefix := filepath.Join(small, "model")
	seed, err := os.ReadFile(prefix + IndexSuffix)
	if err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(prefix + DataSuffix)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	fprefix := filepath.Join(f.TempDir(), "fuzz")
	if err := os.WriteFile(fprefix+DataSuffix, data, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, index []byte) {
		if err := os.WriteFile(fprefix+IndexSuffix, index, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "checking a .index file", func() { CheckIndex(fprefix) })
	})
}
