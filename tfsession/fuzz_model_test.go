package tfsession

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// The readers of model files a user may be handed, fuzzed for crashes and
// for time and memory (fuzzlimit's limits); package checkpoint fuzzes the
// readers that need no TensorFlow. CI runs each for a short time:
//
//	go test ./tfsession/ -run '^$' -fuzz FuzzMetaGraph -fuzztime 5s
//	go test ./tfsession/ -run '^$' -fuzz FuzzRestoreIndex -fuzztime 5s

var fuzzCkpt struct {
	once   sync.Once
	prefix string
	meta   []byte
	index  []byte
	sess   *Session
	err    error
}

// fuzzCheckpoint saves one checkpoint of a small network (the seeds) and
// keeps a session to restore fuzzed .index files into.
func fuzzCheckpoint(f *testing.F) (string, *Session) {
	c := &fuzzCkpt
	c.once.Do(func() {
		var m *tfgraph.Model
		if m, c.err = tfgraph.Build(network.Tutorial(2).WithInput(8, 8, 1), tfgraph.BuildOptions{Seed: 1}); c.err != nil {
			return
		}
		if c.sess, c.err = NewSession(m, SessionConfig{IntraOpThreads: 1, InterOpThreads: 1, Device: DeviceCPU}); c.err != nil {
			return
		}
		if c.err = c.sess.Init(); c.err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "tfcat-fuzz-ckpt")
		if err != nil {
			c.err = err
			return
		}
		if c.prefix, c.err = c.sess.Save(SaveOptions{Dir: dir}, network.Info{Classes: []string{"a", "b"}, Step: 3}); c.err != nil {
			return
		}
		if c.meta, c.err = os.ReadFile(c.prefix + checkpoint.MetaSuffix); c.err != nil {
			return
		}
		c.index, c.err = os.ReadFile(c.prefix + checkpoint.IndexSuffix)
	})
	if c.err != nil {
		f.Fatal(c.err)
	}
	return c.prefix, c.sess
}

// FuzzMetaGraph parses arbitrary .meta files as ImportCheckpoint and Resume
// do before handing a graph to TensorFlow: the MetaGraphDef, tfcat's
// collections, the op allowlist and the network description.
func FuzzMetaGraph(f *testing.F) {
	fuzzCheckpoint(f)
	f.Add(fuzzCkpt.meta)
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Add([]byte{})
	dir := f.TempDir()
	prefix := filepath.Join(dir, "model.ckpt-1")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(prefix+checkpoint.MetaSuffix, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "reading a .meta file", func() {
			meta, err := checkpoint.ReadMetaGraph(prefix)
			if err != nil {
				return
			}
			network.InfoFromMeta(meta)
			roots := []string{network.PredictionName, network.InputName}
			if sd := meta.SaverDef; sd != nil {
				roots = append(roots, sd.RestoreOpName)
				checkpoint.ParseTensorName(sd.FilenameTensorName)
			}
			if checkpoint.CheckGraph(meta.GraphDef, roots, prefix+checkpoint.MetaSuffix) == nil {
				network.NetworkFromGraph(meta.GraphDef)
			}
			for _, c := range meta.CollectionDef {
				for _, b := range c.GetBytesList().GetValue() {
					checkpoint.VariableDefName(b)
				}
			}
		})
	})
}

// FuzzRestoreIndex restores a checkpoint whose .index file is arbitrary
// bytes: TensorFlow's reader (RestoreV2) must fail or succeed, within the
// limits, never crash the process.
func FuzzRestoreIndex(f *testing.F) {
	prefix, sess := fuzzCheckpoint(f)
	f.Add(fuzzCkpt.index)
	f.Add([]byte{})
	dir := f.TempDir()
	data, err := os.ReadFile(prefix + checkpoint.DataSuffix)
	if err != nil {
		f.Fatal(err)
	}
	fprefix := filepath.Join(dir, "fuzz")
	if err := os.WriteFile(fprefix+checkpoint.DataSuffix, data, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, index []byte) {
		if err := os.WriteFile(fprefix+checkpoint.IndexSuffix, index, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzlimit.Check(t, "restoring from a fuzzed .index", func() {
			sess.RestoreVariables(fprefix)
		})
	})
}
