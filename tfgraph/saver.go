package tfgraph

import (
	"fmt"
	"sort"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// Names of the Saver's sub-graph, as tf.compat.v1.train.Saver() makes them (V2
// format, not sharded). Python's restore() finds them through the SaverDef.
const (
	saverScope          = "save"
	SaverFilenameTensor = "save/Const:0"
	SaverSaveTensor     = "save/control_dependency:0"
	SaverRestoreOp      = "save/restore_all"
)

// saverNodes are the handles of the save/restore sub-graph.
type saverNodes struct {
	filename tf.Output     // save/Const:0, fed with the checkpoint prefix
	save     tf.Output     // save/control_dependency:0, fetched to save
	restore  *tf.Operation // save/restore_all
	keys     []string      // checkpoint keys in byte order
	reads    []tf.Output   // each key's variable's value (Snapshot)
	shapes   [][]int64     // and its shape
}

// addSaver adds Python's Saver sub-graph over vars: every variable is saved and
// restored under its op name.
func addSaver(b *builder, vars []*Variable) (*saverNodes, error) {
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
	return &saverNodes{filename: prefix.Output(0), save: dep.Output(0), restore: all, keys: keys, reads: reads, shapes: shapes}, nil
}

// SaveVariables writes every variable to the V2 checkpoint bundle at prefix
// (prefix.index and prefix.data-00000-of-00001) by running the SaveV2 sub-graph.
// It writes no .meta and no checkpoint state file; see Saver for those.
func (s *Session) SaveVariables(prefix string) error {
	t, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	out, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.saver.filename: t}, []tf.Output{s.Model.saver.save}, nil)
	if err != nil {
		return fmt.Errorf("saving variables to %s: %w", prefix, err)
	}
	tfc.FreeAll(out)
	return nil
}

// RestoreVariables loads every variable from the V2 checkpoint bundle at prefix,
// written by tfcat or by Python's Saver: keys are the variables' op names.
func (s *Session) RestoreVariables(prefix string) error {
	if err := checkpoint.CheckIndex(prefix); err != nil {
		return fmt.Errorf("restoring variables: %w", err)
	}
	t, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	defer tfc.Free(t)
	if _, err := s.s.Run(map[tf.Output]*tf.Tensor{s.Model.saver.filename: t}, nil, []*tf.Operation{s.Model.saver.restore}); err != nil {
		return fmt.Errorf("restoring variables from %s: %w", prefix, err)
	}
	if len(s.Model.scaleInit) > 0 { // the loss scale is not saved: it starts again
		if _, err := s.s.Run(nil, nil, s.Model.scaleInit); err != nil {
			return fmt.Errorf("initialising the loss scale: %w", err)
		}
	}
	return nil
}
