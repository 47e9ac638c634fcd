package tfgraph

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
)

// TestCheckIndex: a .index tfcat wrote passes; damaged ones are refused with
// ErrCorruptIndex before TensorFlow, whose reader aborts the process on some
// of them (the fuzz corpus of FuzzRestoreIndex keeps one), ever sees them.
func TestCheckIndex(t *testing.T) {
	m := mustBuild(t, small(2), BuildOptions{Seed: 1})
	s := mustSession(t, m)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: dir}, Info{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.CheckIndex(prefix); err != nil {
		t.Fatalf("the index tfcat wrote: %v", err)
	}
	good, err := os.ReadFile(prefix + checkpoint.IndexSuffix)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(prefix + checkpoint.DataSuffix)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name  string
		index []byte
		data  []byte
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
			os.WriteFile(p+checkpoint.IndexSuffix, tc.index, 0o644)
			os.WriteFile(p+checkpoint.DataSuffix, tc.data, 0o644)
			if err := checkpoint.CheckIndex(p); !errors.Is(err, checkpoint.ErrCorruptIndex) {
				t.Errorf("CheckIndex: %v, want ErrCorruptIndex", err)
			}
			if err := s.RestoreVariables(p); !errors.Is(err, checkpoint.ErrCorruptIndex) {
				t.Errorf("RestoreVariables: %v, want ErrCorruptIndex", err)
			}
		})
	}
}
