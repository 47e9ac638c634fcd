package tfsession

import (
	"google.golang.org/protobuf/proto"

	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/atomicfile"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// DefaultCheckpointName is the tutorial's checkpoint name.
const DefaultCheckpointName = "dogs-cats-model"

// checkpointFiles lists a prefix's files; the .meta is optional to a loader.
func checkpointFiles(prefix string) []string {
	return []string{prefix + checkpoint.DataSuffix, prefix + checkpoint.IndexSuffix, prefix + checkpoint.MetaSuffix}
}

// SaveOptions says where and how Save writes a checkpoint.
type SaveOptions struct {
	Dir  string // folder; created if missing
	Name string // file name prefix; DefaultCheckpointName if empty
	// StepSuffix appends "-<step>" to the name, like Python's global_step=.
	StepSuffix bool
	// MaxToKeep is how many checkpoints the state file keeps; older ones are
	// deleted. 0 means DefaultMaxToKeep; negative keeps all.
	MaxToKeep int
	// StateFile is the state file's name in Dir; "" is checkpoint.StateFile.
	// Checkpoints saved under another state file (BestStateFile) are out of
	// the "checkpoint" file's rotation.
	StateFile string
}

// Save writes a checkpoint of every variable as saver.save(sess, prefix) does:
// prefix.index, prefix.data-00000-of-00001, prefix.meta, and the checkpoint
// state file naming it. It returns the prefix.
//
// It is crash-safe: the state file always names a complete checkpoint. New files
// are written under a temporary prefix first; the state file moves to it, the
// files are linked to their final names, and the state file moves again.
func (s *Session) Save(opt SaveOptions, info network.Info) (string, error) {
	return writeCheckpoint(s.Model, opt, info, s.SaveVariables)
}

// writeCheckpoint is Save for m's variables, which writeVars writes to the
// V2 bundle at the prefix it is given.
func writeCheckpoint(m *tfgraph.Model, opt SaveOptions, info network.Info, writeVars func(prefix string) error) (string, error) {
	name := opt.Name
	if name == "" {
		name = DefaultCheckpointName
	}
	if strings.ContainsRune(name, os.PathSeparator) {
		return "", fmt.Errorf("checkpoint name %q must not contain a path separator", name)
	}
	if opt.StepSuffix {
		name = fmt.Sprintf("%s-%d", name, info.Step)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return "", fmt.Errorf("creating checkpoint folder: %w", err)
	}
	prefix := filepath.Join(opt.Dir, name)
	metaDef, err := m.MetaGraphDef(info)
	if err != nil {
		return "", err
	}
	meta, err := proto.Marshal(metaDef)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", prefix+checkpoint.MetaSuffix, err)
	}

	tmpName := tempPrefix(name)
	tmp := filepath.Join(opt.Dir, tmpName)
	cleanup := func() {
		for _, f := range checkpointFiles(tmp) {
			os.Remove(f)
		}
	}
	if err := writeVars(tmp); err != nil {
		cleanup()
		return "", err
	}
	if err := os.WriteFile(tmp+checkpoint.MetaSuffix, meta, 0o644); err != nil {
		cleanup()
		return "", fmt.Errorf("writing %s: %w", tmp+checkpoint.MetaSuffix, err)
	}
	for _, f := range checkpointFiles(tmp) {
		if err := atomicfile.SyncFile(f); err != nil {
			cleanup()
			return "", fmt.Errorf("syncing %s: %w", f, err)
		}
	}

	stateFile := opt.StateFile
	if stateFile == "" {
		stateFile = checkpoint.StateFile
	}
	if strings.ContainsRune(stateFile, os.PathSeparator) {
		return "", fmt.Errorf("state file name %q must not contain a path separator", stateFile)
	}
	statePath := filepath.Join(opt.Dir, stateFile)
	old, err := checkpoint.ReadStateFile(statePath)
	if err != nil {
		old = &checkpoint.State{}
	}
	// A crash during an earlier save can leave the state naming a temporary
	// prefix; it is superseded now, and its files go with the other leftovers.
	var dropped []string
	kept := slices.DeleteFunc(slices.Clone(old.AllModelCheckpointPaths), func(p string) bool {
		if isTempName(p) {
			dropped = append(dropped, p)
			return true
		}
		return p == name
	})
	// While the final files are replaced, the state names the complete
	// temporary copy.
	if _, err := os.Stat(prefix + checkpoint.IndexSuffix); err == nil {
		if err := checkpoint.WriteStateFile(statePath, &checkpoint.State{ModelCheckpointPath: tmpName, AllModelCheckpointPaths: append(slices.Clone(kept), tmpName)}); err != nil {
			cleanup()
			return "", err
		}
	}
	for i, f := range checkpointFiles(tmp) {
		dst := checkpointFiles(prefix)[i]
		if err := replaceWithLink(f, dst); err != nil {
			return "", err
		}
	}
	kept = append(kept, name)
	maxKeep := opt.MaxToKeep
	if maxKeep == 0 {
		maxKeep = tfgraph.DefaultMaxToKeep
	}
	if maxKeep > 0 && len(kept) > maxKeep {
		dropped = append(dropped, kept[:len(kept)-maxKeep]...)
		kept = kept[len(kept)-maxKeep:]
	}
	if err := checkpoint.WriteStateFile(statePath, &checkpoint.State{ModelCheckpointPath: name, AllModelCheckpointPaths: kept}); err != nil {
		return "", err
	}
	cleanup()
	for _, p := range dropped {
		removeCheckpoint(opt.Dir, p)
	}
	removeStaleTemps(opt.Dir, kept)
	return prefix, nil
}

// tempPrefix is the name Save writes a checkpoint under before it takes its
// final name.
func tempPrefix(name string) string { return fmt.Sprintf(".%s.tmp%d", name, os.Getpid()) }

func isTempName(p string) bool {
	return strings.HasPrefix(filepath.Base(p), ".") && strings.Contains(p, ".tmp")
}

// removeStaleTemps deletes what killed saves left behind: temporary
// checkpoints and links that no state file names.
func removeStaleTemps(dir string, kept []string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		stale := strings.HasSuffix(n, ".next") ||
			(strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp") && !slices.ContainsFunc(kept, func(k string) bool { return strings.HasPrefix(n, k+".") }))
		if stale && !e.IsDir() {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// replaceWithLink makes dst a second name of src, replacing dst atomically.
func replaceWithLink(src, dst string) error {
	next := dst + ".next"
	os.Remove(next)
	if err := os.Link(src, next); err != nil {
		// File systems without hard links: copy instead.
		data, rerr := os.ReadFile(src)
		if rerr != nil {
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		if werr := os.WriteFile(next, data, 0o644); werr != nil {
			return fmt.Errorf("writing %s: %w", next, werr)
		}
		if serr := atomicfile.SyncFile(next); serr != nil {
			return serr
		}
	}
	if err := os.Rename(next, dst); err != nil {
		os.Remove(next)
		return fmt.Errorf("replacing %s: %w", dst, err)
	}
	return nil
}

// removeCheckpoint deletes the files of one checkpoint named in a state file,
// only inside dir.
func removeCheckpoint(dir, name string) {
	if filepath.IsAbs(name) || strings.Contains(name, "..") {
		return
	}
	prefix := filepath.Join(dir, name)
	matches, _ := filepath.Glob(globEscape(prefix) + ".data-*-of-*")
	for _, f := range append(matches, prefix+checkpoint.IndexSuffix, prefix+checkpoint.MetaSuffix) {
		os.Remove(f)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}
