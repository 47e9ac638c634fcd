package checkpoint

import (
	"fmt"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

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

// VariableDefName returns the variable_name of a serialized VariableDef, such
// as "Variable:0", or "" when b is not one.
func VariableDefName(b []byte) string {
	var vd varpb.VariableDef
	if proto.Unmarshal(b, &vd) != nil {
		return ""
	}
	return vd.VariableName
}

// VariableInfo is one variable of a saved graph.
type VariableInfo struct {
	Name      string  `json:"name"` // the op name, also the checkpoint key
	Shape     []int64 `json:"shape"`
	Trainable bool    `json:"trainable"`
}

// GraphVariables lists the variables of meta's graph — reference (VariableV2)
// and resource (VarHandleOp) ones — in node order, marking those in the
// trainable_variables collection.
func GraphVariables(meta *corepb.MetaGraphDef) []VariableInfo {
	trainable := map[string]bool{}
	for _, b := range meta.GetCollectionDef()["trainable_variables"].GetBytesList().GetValue() {
		if name := VariableDefName(b); name != "" {
			trainable[NodeName(name)] = true
		}
	}
	return GraphDefVariables(meta.GetGraphDef(), trainable)
}

// GraphDefVariables lists gd's variables as GraphVariables does, marking
// those in trainable.
func GraphDefVariables(gd *graphpb.GraphDef, trainable map[string]bool) []VariableInfo {
	var vars []VariableInfo
	for _, n := range gd.GetNode() {
		if n.Op != "VariableV2" && n.Op != "VarHandleOp" {
			continue
		}
		v := VariableInfo{Name: n.Name, Shape: []int64{}, Trainable: trainable[n.Name]}
		for _, d := range n.Attr["shape"].GetShape().GetDim() {
			v.Shape = append(v.Shape, d.Size)
		}
		vars = append(vars, v)
	}
	return vars
}

// Parameters is the number of values in the trainable variables.
func Parameters(vars []VariableInfo) int64 {
	var total int64
	for _, v := range vars {
		if !v.Trainable {
			continue
		}
		n := int64(1)
		for _, d := range v.Shape {
			n *= d
		}
		total += n
	}
	return total
}
