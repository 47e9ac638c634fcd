package tfgraph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
)

// Collections tfcat adds to the .meta besides Python's own. Python's
// import_meta_graph keeps collections it does not know as plain values.
const (
	collectionClasses   = "tfcat_classes"    // bytes_list: class names in label order
	collectionInputSize = "tfcat_input_size" // int64_list: height, width, channels
	collectionStep      = "tfcat_global_step"
	collectionNetwork   = "tfcat_network"       // bytes_list: the Network as JSON
	collectionTrainer   = "tfcat_trainer_state" // bytes_list: Info.TrainerState
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

// MetaGraphDef is m as the MetaGraphDef Python's Saver writes to .meta:
// the graph, the SaverDef with Python's defaults, the stripped op list, the
// variables, trainable_variables and train_op collections, and tfcat's own.
func (m *Model) MetaGraphDef(info Info) (*corepb.MetaGraphDef, error) {
	var buf bytes.Buffer
	if _, err := m.Graph.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("serializing the graph: %w", err)
	}
	gd := &graphpb.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		return nil, fmt.Errorf("parsing the graph: %w", err)
	}
	ops, err := StrippedOpList(gd)
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
	if len(info.TrainerState) > 0 {
		meta.CollectionDef[collectionTrainer] = bytesList([][]byte{info.TrainerState})
	}
	return meta, nil
}

// CheckpointState is the "checkpoint" file: the latest prefix and those kept,

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
	if c := cols[collectionTrainer].GetBytesList(); c != nil && len(c.Value) == 1 {
		mi.TrainerState = c.Value[0]
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
