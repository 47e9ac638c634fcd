package savedmodel

import (
	"fmt"
	"strings"

	"github.com/tfcat/tfcat/checkpoint"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// toResourceVariables rewrites the graph's TF1 reference variables as resource
// variables, as tf.compat.v1.enable_resource_variables() would have built them:
// VariableV2 becomes VarHandleOp (shared_name = its name), its Identity read a
// ReadVariableOp, every Assign to it an AssignVariableOp, and SaveV2 saves the
// reads. TF2's tf.saved_model.load turns resource variables into tf.Variable
// objects; reference variables it can only warn about. Names do not change,
// so the checkpoint keys and the signature's tensors stay the same.
func toResourceVariables(meta *corepb.MetaGraphDef) error {
	nodes := meta.GraphDef.Node
	isVar := map[string]bool{}
	for _, n := range nodes {
		if n.Op == "VariableV2" {
			isVar[n.Name] = true
		}
	}
	read := map[string]string{} // variable -> its read node
	for _, n := range nodes {
		if n.Op == "Identity" && len(n.Input) == 1 && isVar[n.Input[0]] {
			read[n.Input[0]] = n.Name
		}
	}
	assigns := map[string]bool{}
	for _, n := range nodes {
		switch {
		case isVar[n.Name]:
			n.Op = "VarHandleOp"
			n.Attr = map[string]*attrpb.AttrValue{
				"dtype":           n.Attr["dtype"],
				"shape":           n.Attr["shape"],
				"container":       {Value: &attrpb.AttrValue_S{S: []byte{}}},
				"shared_name":     {Value: &attrpb.AttrValue_S{S: []byte(n.Name)}},
				"allowed_devices": {Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{}}},
			}
		case n.Op == "Identity" && len(n.Input) == 1 && isVar[n.Input[0]]:
			n.Op = "ReadVariableOp"
			n.Attr = map[string]*attrpb.AttrValue{"dtype": n.Attr["T"]}
		case n.Op == "Assign" && len(n.Input) == 2 && isVar[n.Input[0]]:
			n.Op = "AssignVariableOp"
			n.Attr = map[string]*attrpb.AttrValue{
				"dtype":          n.Attr["T"],
				"validate_shape": {Value: &attrpb.AttrValue_B{B: false}},
			}
			assigns[n.Name] = true
		case n.Op == "SaveV2":
			for i, in := range n.Input {
				if isVar[in] {
					if read[in] == "" {
						return fmt.Errorf("export: variable %s has no read to save", in)
					}
					n.Input[i] = read[in]
				}
			}
		default:
			for _, in := range n.Input {
				if isVar[checkpoint.NodeName(in)] {
					return fmt.Errorf("export: %s (%s) uses variable %s directly; cannot make it a resource variable", n.Name, n.Op, in)
				}
			}
		}
	}
	// An AssignVariableOp has no output: only control inputs may name one.
	for _, n := range nodes {
		for _, in := range n.Input {
			if !strings.HasPrefix(in, "^") && assigns[checkpoint.NodeName(in)] {
				return fmt.Errorf("export: %s reads the output of assignment %s", n.Name, in)
			}
		}
	}
	for _, key := range []string{"variables", "trainable_variables"} {
		list := meta.CollectionDef[key].GetBytesList()
		if list == nil {
			continue
		}
		for i, b := range list.Value {
			vd := &varpb.VariableDef{}
			if err := proto.Unmarshal(b, vd); err != nil {
				return fmt.Errorf("export: collection %s: %w", key, err)
			}
			vd.IsResource = true
			var err error
			if list.Value[i], err = proto.Marshal(vd); err != nil {
				return fmt.Errorf("export: collection %s: %w", key, err)
			}
		}
	}
	return nil
}
