package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// small is the checkpoint testdata/gen.go wrote with tfcat: the test network
// (8x8x1, a conv layer of 2 3x3 filters, fc 4, two classes) at step 3.
const small = "testdata/small"

// copySmall copies the small checkpoint into a fresh folder and returns it.
func copySmall(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{StateFile, "model" + IndexSuffix, "model" + DataSuffix, "model" + MetaSuffix} {
		b, err := os.ReadFile(filepath.Join(small, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := &State{ModelCheckpointPath: `m "7"`, AllModelCheckpointPaths: []string{"m-5", `m "7"`}}
	if err := WriteState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.ModelCheckpointPath != want.ModelCheckpointPath || !slices.Equal(got.AllModelCheckpointPaths, want.AllModelCheckpointPaths) {
		t.Errorf("read back %+v, wrote %+v", got, want)
	}
}

// ReadStateFile takes what Python writes (timestamps, comments) and refuses,
// naming the file and line, what it does not.
func TestReadStateFile(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       string // error text; "" accepts
	}{
		{"python", "model_checkpoint_path: \"m-7\"\nall_model_checkpoint_paths: \"m-7\"\nall_model_checkpoint_timestamps: 1.5\nlast_preserved_timestamp: 2\n", ""},
		{"comment", "# a comment\n\nmodel_checkpoint_path: 'm'\n", ""},
		{"no colon", "model_checkpoint_path \"m\"\n", `state:1: not a CheckpointState field`},
		{"unknown", "model_checkpoint_path: \"m\"\nsteps: 3\n", `state:2: unknown field "steps"`},
		{"bad string", "model_checkpoint_path: \"m\n", `state:1: bad string "m`},
		{"empty", "", "state: no model_checkpoint_path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadStateFile(path)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	dir := copySmall(t)
	prefix := filepath.Join(dir, "model")
	if err := os.WriteFile(filepath.Join(dir, BestStateFile), []byte("model_checkpoint_path: \"model\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{dir, prefix, prefix + IndexSuffix, prefix + MetaSuffix, filepath.Join(dir, StateFile), filepath.Join(dir, BestStateFile)} {
		if got, err := Resolve(arg); err != nil || got != prefix {
			t.Errorf("Resolve(%s) = %q, %v; want %s", arg, got, err, prefix)
		}
	}
	empty := t.TempDir()
	if _, err := Resolve(empty); err == nil || !strings.Contains(err.Error(), "not a model folder") {
		t.Errorf("a folder with no state file: %v", err)
	}
	if _, err := Resolve(filepath.Join(dir, "other")); err == nil || !strings.Contains(err.Error(), "other.index is missing") {
		t.Errorf("a prefix with no files: %v", err)
	}
	if err := os.Remove(prefix + IndexSuffix); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(dir); err == nil || !strings.Contains(err.Error(), `the checkpoint file names "model", but`) {
		t.Errorf("a state file naming a missing checkpoint: %v", err)
	}
}

// TestCheckIndex: the .index tfcat wrote passes; damaged ones are refused
// with ErrCorruptIndex (tfsession's TestRestoreChecksIndex checks that RestoreVariables
// refuses them before TensorFlow's reader, which aborts on some, sees them).
func TestCheckIndex(t *testing.T) {
	prefix := filepath.Join(small, "model")
	if err := CheckIndex(prefix); err != nil {
		t.Fatalf("the index tfcat wrote: %v", err)
	}
	good, err := os.ReadFile(prefix + IndexSuffix)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(prefix + DataSuffix)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := slices.Clone(good)
		b[i] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name        string
		index, data []byte
	}{
		{"empty", nil, data},
		{"truncated", good[:len(good)/2], data},
		{"footer cut", good[:len(good)-1], data},
		{"first byte", flip(0), data},
		{"middle byte", flip(len(good) / 3), data},
		{"magic", flip(len(good) - 1), data},
		{"data file short", good, data[:len(data)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c")
			if err := os.WriteFile(p+IndexSuffix, tc.index, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p+DataSuffix, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := CheckIndex(p); !errors.Is(err, ErrCorruptIndex) || !strings.Contains(err.Error(), p+IndexSuffix) {
				t.Errorf("CheckIndex: %v, want ErrCorruptIndex naming the file", err)
			}
		})
	}
}

// The .meta's graph, its variables and the allowlist, read without
// TensorFlow.
func TestReadMetaGraph(t *testing.T) {
	prefix := filepath.Join(small, "model")
	meta, err := ReadMetaGraph(prefix)
	if err != nil {
		t.Fatal(err)
	}
	vars := GraphVariables(meta)
	var trainable []string
	for _, v := range vars {
		if v.Trainable {
			trainable = append(trainable, v.Name)
		}
	}
	// The tutorial's variables, TF1's names: conv weights and bias, fc,
	// output layer.
	if want := []string{"Variable", "Variable_1", "Variable_2", "Variable_3", "Variable_4", "Variable_5"}; !slices.Equal(trainable, want) {
		t.Errorf("trainable variables %v, want %v", trainable, want)
	}
	// 3·3·1·2 + 2, then (4·4·2)·4 + 4, then 4·2 + 2.
	if got, want := Parameters(vars), int64(18+2+128+4+8+2); got != want {
		t.Errorf("Parameters = %d, want %d", got, want)
	}
	if err := CheckGraph(meta.GraphDef, []string{"y_pred", meta.SaverDef.RestoreOpName}, prefix+MetaSuffix); err != nil {
		t.Errorf("tfcat's own graph: %v", err)
	}
	if err := CheckGraph(meta.GraphDef, []string{NodeName(meta.SaverDef.SaveTensorName)}, prefix+MetaSuffix); !errors.Is(err, ErrUntrustedGraph) {
		t.Errorf("running the saver's save op: %v, want ErrUntrustedGraph", err)
	}

	dir := t.TempDir()
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "the MetaGraphDef holds no graph", nil},
		{"garbage", "not a MetaGraphDef", []byte{0xff, 0xff, 0xff}},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p+MetaSuffix, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadMetaGraph(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p+MetaSuffix) {
			t.Errorf("%s: %v, want an error naming the file and saying %q", c.name, err, c.want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"+MetaSuffix), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMetaGraph(filepath.Join(dir, "d")); err == nil {
		t.Error("a folder named .meta was read")
	}
}
