package tfgraph

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/internal/tfc"
)

// Checkpoint file names, as tf.compat.v1.train.Saver writes them: for a prefix
// P, P.index, P.data-00000-of-00001 and P.meta, plus the state file
// "checkpoint" beside them naming the latest prefix.
const (
	DefaultCheckpointName = "dogs-cats-model"
	CheckpointStateFile   = "checkpoint"
	IndexSuffix           = ".index"
	DataSuffix            = ".data-00000-of-00001"
	MetaSuffix            = ".meta"
	// DefaultMaxToKeep is Saver's max_to_keep: older checkpoints are deleted.
	DefaultMaxToKeep = 5
)

// Collections tfcat adds to the .meta besides Python's own. Python's
// import_meta_graph keeps collections it does not know as plain values.
const (
	collectionClasses   = "tfcat_classes"    // bytes_list: class names in label order
	collectionInputSize = "tfcat_input_size" // int64_list: height, width, channels
	collectionStep      = "tfcat_global_step"
	collectionNetwork   = "tfcat_network" // bytes_list: the Network as JSON
)

// Info is what a tfcat checkpoint records beside the weights.
type Info struct {
	Classes []string // class names in label order; empty when unknown
	Step    int      // training steps taken
}

// checkpointFiles lists a prefix's files; the .meta is optional to a loader.
func checkpointFiles(prefix string) []string {
	return []string{prefix + DataSuffix, prefix + IndexSuffix, prefix + MetaSuffix}
}

// opDefs returns the OpDefs of the given op types from the linked library.
func opDefs(types []string) (*opdefpb.OpList, error) {
	var all opdefpb.OpList
	if err := proto.Unmarshal(tfc.AllOpList(), &all); err != nil {
		return nil, fmt.Errorf("reading the op registry: %w", err)
	}
	out := &opdefpb.OpList{}
	for _, op := range all.Op {
		if slices.Contains(types, op.Name) {
			out.Op = append(out.Op, op)
		}
	}
	return out, nil
}

// MetaGraph serializes m as the MetaGraphDef Python's Saver writes to .meta:
// the graph, the SaverDef with Python's defaults, the stripped op list, the
// variables, trainable_variables and train_op collections, and tfcat's own.
func (m *Model) MetaGraph(info Info) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := m.Graph.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("serializing the graph: %w", err)
	}
	gd := &graphpb.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		return nil, fmt.Errorf("parsing the graph: %w", err)
	}
	var types []string
	for _, n := range gd.Node {
		if !slices.Contains(types, n.Op) {
			types = append(types, n.Op)
		}
	}
	slices.Sort(types)
	ops, err := opDefs(types)
	if err != nil {
		return nil, err
	}
	bytesList := func(vals [][]byte) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_BytesList_{BytesList: &corepb.CollectionDef_BytesList{Value: vals}}}
	}
	int64List := func(vals ...int64) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_Int64List_{Int64List: &corepb.CollectionDef_Int64List{Value: vals}}}
	}
	var all, trainable [][]byte
	for _, v := range m.Vars {
		b, err := proto.Marshal(&varpb.VariableDef{
			VariableName:     TensorName(v.Name, 0),
			InitialValueName: v.Initial.Op.Name() + ":" + strconv.Itoa(v.Initial.Index),
			InitializerName:  v.Assign.Name(),
			SnapshotName:     TensorName(v.Name+readSuffix, 0),
			Trainable:        v.Trainable,
		})
		if err != nil {
			return nil, err
		}
		all = append(all, b)
		if v.Trainable {
			trainable = append(trainable, b)
		}
	}
	classes := make([][]byte, len(info.Classes))
	for i, c := range info.Classes {
		classes[i] = []byte(c)
	}
	netJSON, err := json.Marshal(m.Net)
	if err != nil {
		return nil, err
	}
	meta := &corepb.MetaGraphDef{
		MetaInfoDef: &corepb.MetaGraphDef_MetaInfoDef{
			StrippedOpList:    ops,
			TensorflowVersion: RuntimeVersion(),
		},
		GraphDef: gd,
		SaverDef: &corepb.SaverDef{
			FilenameTensorName:        SaverFilenameTensor,
			SaveTensorName:            SaverSaveTensor,
			RestoreOpName:             SaverRestoreOp,
			MaxToKeep:                 DefaultMaxToKeep,
			Sharded:                   false,
			KeepCheckpointEveryNHours: 10000,
			Version:                   corepb.SaverDef_V2,
		},
		CollectionDef: map[string]*corepb.CollectionDef{
			"variables":           bytesList(all),
			"trainable_variables": bytesList(trainable),
			collectionInputSize:   int64List(int64(m.Net.Height), int64(m.Net.Width), int64(m.Net.Channels)),
			collectionStep:        int64List(int64(info.Step)),
			collectionNetwork:     bytesList([][]byte{netJSON}),
		},
	}
	if m.Train != nil {
		meta.CollectionDef["train_op"] = &corepb.CollectionDef{Kind: &corepb.CollectionDef_NodeList_{
			NodeList: &corepb.CollectionDef_NodeList{Value: []string{TrainOpName}}}}
	}
	if len(classes) > 0 {
		meta.CollectionDef[collectionClasses] = bytesList(classes)
	}
	return proto.Marshal(meta)
}

// CheckpointState is the "checkpoint" file: the latest prefix and those kept,
// oldest first, relative to the file's folder.
type CheckpointState struct {
	ModelCheckpointPath     string
	AllModelCheckpointPaths []string
}

// ReadCheckpointState parses dir/checkpoint (text CheckpointState).
func ReadCheckpointState(dir string) (*CheckpointState, error) {
	path := filepath.Join(dir, CheckpointStateFile)
	data, err := ReadFileLimit(path, MaxStateFileBytes)
	if err != nil {
		return nil, err
	}
	st := &CheckpointState{}
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

// writeCheckpointState writes dir/checkpoint atomically: a crash leaves either
// the old file or the new one.
func writeCheckpointState(dir string, st *CheckpointState) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model_checkpoint_path: %s\n", strconv.Quote(st.ModelCheckpointPath))
	for _, p := range st.AllModelCheckpointPaths {
		fmt.Fprintf(&b, "all_model_checkpoint_paths: %s\n", strconv.Quote(p))
	}
	return writeFileAtomic(filepath.Join(dir, CheckpointStateFile), []byte(b.String()))
}

// writeFileAtomic writes data to a temporary file in path's folder, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // not every file system syncs folders; the rename is what matters
	return nil
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
}

// Save writes a checkpoint of every variable as saver.save(sess, prefix) does:
// prefix.index, prefix.data-00000-of-00001, prefix.meta, and the checkpoint
// state file naming it. It returns the prefix.
//
// It is crash-safe: the state file always names a complete checkpoint. New files
// are written under a temporary prefix first; the state file moves to it, the
// files are linked to their final names, and the state file moves again.
func (s *Session) Save(opt SaveOptions, info Info) (string, error) {
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
	meta, err := s.Model.MetaGraph(info)
	if err != nil {
		return "", err
	}

	tmpName := tempPrefix(name)
	tmp := filepath.Join(opt.Dir, tmpName)
	cleanup := func() {
		for _, f := range checkpointFiles(tmp) {
			os.Remove(f)
		}
	}
	if err := s.SaveVariables(tmp); err != nil {
		cleanup()
		return "", err
	}
	if err := os.WriteFile(tmp+MetaSuffix, meta, 0o644); err != nil {
		cleanup()
		return "", fmt.Errorf("writing %s: %w", tmp+MetaSuffix, err)
	}
	for _, f := range checkpointFiles(tmp) {
		if err := syncFile(f); err != nil {
			cleanup()
			return "", fmt.Errorf("syncing %s: %w", f, err)
		}
	}

	old, err := ReadCheckpointState(opt.Dir)
	if err != nil {
		old = &CheckpointState{}
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
	if _, err := os.Stat(prefix + IndexSuffix); err == nil {
		if err := writeCheckpointState(opt.Dir, &CheckpointState{ModelCheckpointPath: tmpName, AllModelCheckpointPaths: append(slices.Clone(kept), tmpName)}); err != nil {
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
		maxKeep = DefaultMaxToKeep
	}
	if maxKeep > 0 && len(kept) > maxKeep {
		dropped = append(dropped, kept[:len(kept)-maxKeep]...)
		kept = kept[len(kept)-maxKeep:]
	}
	if err := writeCheckpointState(opt.Dir, &CheckpointState{ModelCheckpointPath: name, AllModelCheckpointPaths: kept}); err != nil {
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
		if serr := syncFile(next); serr != nil {
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
	for _, f := range append(matches, prefix+IndexSuffix, prefix+MetaSuffix) {
		os.Remove(f)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// ResolveCheckpoint turns a model argument into a checkpoint prefix: a folder
// holding a "checkpoint" file gives its latest checkpoint; anything else is taken
// as a prefix. It checks that the prefix's .index and data files exist.
func ResolveCheckpoint(path string) (string, error) {
	prefix := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		st, err := ReadCheckpointState(path)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no %q file in this folder: not a model folder (give a checkpoint prefix or the folder tfcat train wrote)", path, CheckpointStateFile)
		}
		if err != nil {
			return "", err
		}
		prefix = st.ModelCheckpointPath
		if !filepath.IsAbs(prefix) {
			prefix = filepath.Join(path, prefix)
		}
		if _, err := os.Stat(prefix + IndexSuffix); err != nil {
			return "", fmt.Errorf("%s: the checkpoint file names %q, but %s is missing", filepath.Join(path, CheckpointStateFile), st.ModelCheckpointPath, prefix+IndexSuffix)
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

// ReadMetaGraph reads and parses prefix.meta.
func ReadMetaGraph(prefix string) (*corepb.MetaGraphDef, error) {
	data, err := ReadFileLimit(prefix+MetaSuffix, MaxGraphFileBytes)
	if err != nil {
		return nil, err
	}
	meta := &corepb.MetaGraphDef{}
	if err := proto.Unmarshal(data, meta); err != nil {
		return nil, fmt.Errorf("%s: not a MetaGraphDef (corrupt or truncated): %w", prefix+MetaSuffix, err)
	}
	if meta.GraphDef == nil || len(meta.GraphDef.Node) == 0 {
		return nil, fmt.Errorf("%s: the MetaGraphDef holds no graph", prefix+MetaSuffix)
	}
	return meta, nil
}

// MetaInfo is what a .meta says about its model.
type MetaInfo struct {
	Info
	Network           *Network // nil unless tfcat wrote the checkpoint
	TensorFlowVersion string   // the version that wrote it
	Tfcat             bool     // written by tfcat (it has tfcat's collections)
}

// InfoFromMeta reads tfcat's collections, where present.
func InfoFromMeta(meta *corepb.MetaGraphDef) MetaInfo {
	var mi MetaInfo
	if meta.MetaInfoDef != nil {
		mi.TensorFlowVersion = meta.MetaInfoDef.TensorflowVersion
	}
	cols := meta.CollectionDef
	if c := cols[collectionClasses].GetBytesList(); c != nil {
		for _, v := range c.Value {
			mi.Classes = append(mi.Classes, string(v))
		}
	}
	if c := cols[collectionStep].GetInt64List(); c != nil && len(c.Value) == 1 {
		mi.Step = int(c.Value[0])
		mi.Tfcat = true
	}
	if c := cols[collectionNetwork].GetBytesList(); c != nil && len(c.Value) == 1 {
		var n Network
		if json.Unmarshal(c.Value[0], &n) == nil && n.Validate() == nil {
			mi.Network = &n
			mi.Tfcat = true
		}
	}
	return mi
}

// VariableDefName returns the variable_name of a serialized VariableDef, such
// as "Variable:0", or "" when b is not one.
func VariableDefName(b []byte) string {
	var vd varpb.VariableDef
	if proto.Unmarshal(b, &vd) != nil {
		return ""
	}
	return vd.VariableName
}
