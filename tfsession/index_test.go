package tfsession

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// TestRestoreChecksIndex: RestoreVariables refuses a damaged .index with
// checkpoint.ErrCorruptIndex before TensorFlow's reader, which aborts the
// process on some damaged ones (the fuzz corpus of FuzzRestoreIndex keeps
// one), ever sees it. Package checkpoint's TestCheckIndex tries the damages.
func TestRestoreChecksIndex(t *testing.T) {
	m := mustBuild(t, small(2), tfgraph.BuildOptions{Seed: 1})
	s := mustSession(t, m)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	prefix, err := s.Save(SaveOptions{Dir: t.TempDir()}, network.Info{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreVariables(prefix); err != nil {
		t.Fatalf("the checkpoint tfcat wrote: %v", err)
	}
	good, err := os.ReadFile(prefix + checkpoint.IndexSuffix)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(prefix + checkpoint.DataSuffix)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "c")
	if err := os.WriteFile(p+checkpoint.IndexSuffix, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+checkpoint.DataSuffix, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreVariables(p); !errors.Is(err, checkpoint.ErrCorruptIndex) {
		t.Errorf("RestoreVariables of a truncated index: %v, want ErrCorruptIndex", err)
	}
}
