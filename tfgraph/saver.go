package tfgraph

import (
	"fmt"
	"sort"

	tf "github.com/wamuir/graft/tensorflow"
)

// Names of the Saver's sub-graph, as tf.compat.v1.train.Saver() makes them (V2
// format, not sharded). Python's restore() finds them through the SaverDef.
const (
	saverScope          = "save"
	SaverFilenameTensor = "save/Const:0"
	SaverSaveTensor     = "save/control_dependency:0"
	SaverRestoreOp      = "save/restore_all"
)

// DefaultMaxToKeep is Saver's max_to_keep, which the SaverDef records:
// older checkpoints are deleted.
const DefaultMaxToKeep = 5

// SaverNodes are the handles of the save/restore sub-graph, which a
// session runs to save and restore the variables.
type SaverNodes struct {
	Filename tf.Output     // save/Const:0, fed with the checkpoint prefix
	Save     tf.Output     // save/control_dependency:0, fetched to save
	Restore  *tf.Operation // save/restore_all
	Keys     []string      // checkpoint keys in byte order
	Reads    []tf.Output   // each key's variable's value (a session's Snapshot)
	Shapes   [][]int64     // and its shape
}

// addSaver adds Python's Saver sub-graph over vars: every variable is saved and
// restored under its op name.
func addSaver(b *builder, vars []*Variable) (*SaverNodes, error) {
	sorted := append([]*Variable(nil), vars...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	keys := make([]string, len(sorted))
	refs := make(tf.OutputList, len(sorted))
	dtypes := make([]tf.DataType, len(sorted))
	for i, v := range sorted {
		if i > 0 && v.Name == keys[i-1] {
			return nil, fmt.Errorf("saver: two variables named %q", v.Name)
		}
		keys[i], refs[i], dtypes[i] = v.Name, v.Ref, tf.Float
		if v.Resource {
			refs[i] = v.Read
		}
	}
	slices := make([]string, len(keys))

	n := func(s string) string { return saverScope + "/" + s }
	input := b.constant(n("filename/input"), "model")
	filename := b.add(tf.OpSpec{Type: "PlaceholderWithDefault", Name: n("filename"),
		Input: []tf.Input{input}, Attrs: map[string]any{"shape": tf.ScalarShape()}})
	if filename == nil {
		return nil, b.s.Err()
	}
	prefix := b.add(tf.OpSpec{Type: "PlaceholderWithDefault", Name: n("Const"),
		Input: []tf.Input{filename.Output(0)}, Attrs: map[string]any{"shape": tf.ScalarShape()}})
	if prefix == nil {
		return nil, b.s.Err()
	}
	save := b.add(tf.OpSpec{Type: "SaveV2", Name: n("SaveV2"), Input: []tf.Input{
		prefix.Output(0), b.constant(n("SaveV2/tensor_names"), keys), b.constant(n("SaveV2/shape_and_slices"), slices), refs,
	}})
	if save == nil {
		return nil, b.s.Err()
	}
	dep := b.add(tf.OpSpec{Type: "Identity", Name: n("control_dependency"),
		Input: []tf.Input{prefix.Output(0)}, ControlDependencies: []*tf.Operation{save}})
	restore := b.add(tf.OpSpec{Type: "RestoreV2", Name: n("RestoreV2"), Device: "/device:CPU:0", Input: []tf.Input{
		prefix.Output(0), b.constant(n("RestoreV2/tensor_names"), keys), b.constant(n("RestoreV2/shape_and_slices"), slices),
	}, Attrs: map[string]any{"dtypes": dtypes}})
	if dep == nil || restore == nil {
		return nil, b.s.Err()
	}
	assigns := make([]*tf.Operation, len(sorted))
	for i, v := range sorted {
		name := n("Assign")
		if i > 0 {
			name = fmt.Sprintf("%s_%d", name, i)
		}
		if v.Resource {
			assigns[i] = b.add(tf.OpSpec{Type: "AssignVariableOp", Name: name, Input: []tf.Input{v.Ref, restore.Output(i)},
				Attrs: map[string]any{"dtype": tf.Float}})
		} else {
			assigns[i] = b.add(tf.OpSpec{Type: opAssign, Name: name, Input: []tf.Input{v.Ref, restore.Output(i)},
				Attrs: map[string]any{"validate_shape": true, "use_locking": true}})
		}
	}
	all := b.add(tf.OpSpec{Type: "NoOp", Name: SaverRestoreOp, ControlDependencies: assigns})
	if err := b.s.Err(); err != nil {
		return nil, err
	}
	reads := make([]tf.Output, len(sorted))
	shapes := make([][]int64, len(sorted))
	for i, v := range sorted {
		reads[i], shapes[i] = v.Read, v.Shape
	}
	return &SaverNodes{Filename: prefix.Output(0), Save: dep.Output(0), Restore: all, Keys: keys, Reads: reads, Shapes: shapes}, nil
}
