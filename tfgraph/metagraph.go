package tfgraph

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
)

// StrippedOpList is the OpDefs, from the linked library, of the op types gd
// uses, sorted by name, as meta_info_def.stripped_op_list carries them.
func StrippedOpList(gd *graphpb.GraphDef) (*opdefpb.OpList, error) {
	var types []string
	for _, n := range gd.GetNode() {
		if !slices.Contains(types, n.Op) {
			types = append(types, n.Op)
		}
	}
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
	slices.SortFunc(out.Op, func(a, b *opdefpb.OpDef) int { return strings.Compare(a.Name, b.Name) })
	if len(out.Op) != len(types) {
		return nil, fmt.Errorf("the op registry lacks some of %v", types)
	}
	return out, nil
}

// graphDef is g as a GraphDef proto.
func graphDef(g *tf.Graph) (*graphpb.GraphDef, error) {
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("serializing the graph: %w", err)
	}
	gd := &graphpb.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		return nil, fmt.Errorf("parsing the graph: %w", err)
	}
	return gd, nil
}

// MetaGraphDef is m as the MetaGraphDef Python's Saver writes to .meta:
// the graph, the SaverDef with Python's defaults, the stripped op list, the
// variables, trainable_variables and train_op collections, and tfcat's own.
func (m *Model) MetaGraphDef(info network.Info) (*corepb.MetaGraphDef, error) {
	gd, err := graphDef(m.Graph)
	if err != nil {
		return nil, err
	}
	ops, err := StrippedOpList(gd)
	if err != nil {
		return nil, err
	}
	bytesList := func(vals [][]byte) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_BytesList_{BytesList: &corepb.CollectionDef_BytesList{Value: vals}}}
	}
	var all, trainable [][]byte
	for _, v := range m.Vars {
		b, err := proto.Marshal(&varpb.VariableDef{
			VariableName:     checkpoint.TensorName(v.Name, 0),
			InitialValueName: checkpoint.TensorName(v.Initial.Op.Name(), v.Initial.Index),
			InitializerName:  v.Assign.Name(),
			SnapshotName:     checkpoint.TensorName(v.Name+readSuffix, 0),
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
	meta := &corepb.MetaGraphDef{
		MetaInfoDef: &corepb.MetaGraphDef_MetaInfoDef{
			StrippedOpList:    ops,
			TensorflowVersion: tf.Version(),
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
		},
	}
	tfcat, err := network.Collections(m.Net, info)
	if err != nil {
		return nil, err
	}
	for k, c := range tfcat {
		meta.CollectionDef[k] = c
	}
	if m.Train != nil {
		meta.CollectionDef["train_op"] = &corepb.CollectionDef{Kind: &corepb.CollectionDef_NodeList_{
			NodeList: &corepb.CollectionDef_NodeList{Value: []string{network.TrainOpName}}}}
	}
	return meta, nil
}
