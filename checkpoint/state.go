package checkpoint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tfcat/tfcat/internal/atomicfile"
)

// State is a "checkpoint" state file (TensorFlow's text CheckpointState): the
// latest checkpoint prefix and every prefix kept, oldest first, relative to
// the file's folder.
type State struct {
	ModelCheckpointPath     string
	AllModelCheckpointPaths []string
}

// ReadState parses dir/checkpoint (text CheckpointState).
func ReadState(dir string) (*State, error) {
	return ReadStateFile(filepath.Join(dir, StateFile))
}

// ReadStateFile parses a state file in the "checkpoint" file's
// format (text CheckpointState) under any name, such as BestStateFile.
func ReadStateFile(path string) (*State, error) {
	data, err := ReadFileLimit(path, MaxStateFileBytes)
	if err != nil {
		return nil, err
	}
	st := &State{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, val, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a CheckpointState field: %q", path, line, text)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "model_checkpoint_path", "all_model_checkpoint_paths":
			s, err := strconv.Unquote(val)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad string %s", path, line, val)
			}
			if key == "model_checkpoint_path" {
				st.ModelCheckpointPath = s
			} else {
				st.AllModelCheckpointPaths = append(st.AllModelCheckpointPaths, s)
			}
		case "all_model_checkpoint_timestamps", "last_preserved_timestamp":
			// Timestamps written by newer Pythons; tfcat does not use them.
		default:
			return nil, fmt.Errorf("%s:%d: unknown field %q", path, line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.ModelCheckpointPath == "" {
		return nil, fmt.Errorf("%s: no model_checkpoint_path", path)
	}
	return st, nil
}

// WriteState writes dir/checkpoint atomically: a crash leaves either
// the old file or the new one.
func WriteState(dir string, st *State) error {
	return WriteStateFile(filepath.Join(dir, StateFile), st)
}

// WriteStateFile writes a state file at path atomically.
func WriteStateFile(path string, st *State) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model_checkpoint_path: %s\n", strconv.Quote(st.ModelCheckpointPath))
	for _, p := range st.AllModelCheckpointPaths {
		fmt.Fprintf(&b, "all_model_checkpoint_paths: %s\n", strconv.Quote(p))
	}
	return atomicfile.WriteFile(path, []byte(b.String()))
}

// Resolve turns a model argument into a checkpoint prefix: a folder
// holding a "checkpoint" file gives its latest checkpoint; anything else is taken
// as a prefix. It checks that the prefix's .index and data files exist.
func Resolve(path string) (string, error) {
	prefix := path
	fi, err := os.Stat(path)
	if base := filepath.Base(path); err == nil && fi.Mode().IsRegular() && (base == StateFile || base == BestStateFile) {
		// A state file names its checkpoint: "model/best_checkpoint".
		st, err := ReadStateFile(path)
		if err != nil {
			return "", err
		}
		prefix = st.ModelCheckpointPath
		if !filepath.IsAbs(prefix) {
			prefix = filepath.Join(filepath.Dir(path), prefix)
		}
	} else if err == nil && fi.IsDir() {
		st, err := ReadState(path)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no %q file in this folder: not a model folder (give a checkpoint prefix or the folder tfcat train wrote)", path, StateFile)
		}
		if err != nil {
			return "", err
		}
		prefix = st.ModelCheckpointPath
		if !filepath.IsAbs(prefix) {
			prefix = filepath.Join(path, prefix)
		}
		if _, err := os.Stat(prefix + IndexSuffix); err != nil {
			return "", fmt.Errorf("%s: the checkpoint file names %q, but %s is missing", filepath.Join(path, StateFile), st.ModelCheckpointPath, prefix+IndexSuffix)
		}
	}
	for _, suffix := range []string{IndexSuffix, MetaSuffix, DataSuffix} {
		prefix = strings.TrimSuffix(prefix, suffix)
	}
	for _, f := range []string{prefix + IndexSuffix, prefix + DataSuffix} {
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%s: no checkpoint here (%s is missing)", path, filepath.Base(f))
			}
			return "", err
		}
	}
	return prefix, nil
}
