package backbone

import (
	"errors"
	"fmt"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/network"
)

// Prefix is where a transfer-learning graph holds the backbone's nodes
// ("base/..."): tfgraph imports it there (tfgraph.BasePrefix), and FromGraph
// reads it back.
const Prefix = "base"

// Backbone is a backbone's graph, ready for tfgraph.Build
// (BuildOptions.Base): the nodes a feature extractor needs and the functions
// they call, with names as in its SavedModel. Keys, when set, map its
// variables (node names) to their keys in the checkpoint bundle at
// Variables, from which tfsession's Session.InitBase loads them; a backbone
// read back from a tfcat checkpoint has none, its weights being in the
// checkpoint.
type Backbone struct {
	Graph              *graphpb.GraphDef
	Keys               map[string]string
	Variables          string
	Input, Output      string
	Height, Width      int // the input's size
	Channels, Features int
	// Vars names its variables, as its SavedModel does (Base.Variables).
	Vars []network.BaseVariable
	// ByTfcat says the SavedModel is a tfcat export (its MetaGraph holds
	// tfcat's network record), whose input is BGR like every tfcat model's.
	ByTfcat bool
}

// FromGraph is the backbone a tfcat checkpoint's graph holds under Prefix:
// the nodes there, renamed as in the backbone's own graph, and the graph's
// functions. Its weights come from the checkpoint.
func FromGraph(gd *graphpb.GraphDef, base *network.Base) (*Backbone, error) {
	pre := Prefix + "/"
	out := &graphpb.GraphDef{Versions: gd.Versions, Library: gd.Library}
	for _, n := range gd.Node {
		if !strings.HasPrefix(n.Name, pre) {
			continue
		}
		c := proto.Clone(n).(*nodepb.NodeDef)
		c.Name = strings.TrimPrefix(c.Name, pre)
		for i, in := range c.Input {
			ctl := strings.HasPrefix(in, "^")
			in = strings.TrimPrefix(in, "^")
			switch {
			case strings.HasPrefix(in, pre) && ctl:
				in = "^" + strings.TrimPrefix(in, pre)
			case strings.HasPrefix(in, pre):
				in = strings.TrimPrefix(in, pre)
			case ctl:
				return nil, fmt.Errorf("backbone node %q waits for %q, outside the backbone", n.Name, in)
			default:
				// The image input, mapped to tfcat's preprocessed one.
				in = base.Input
			}
			c.Input[i] = in
		}
		out.Node = append(out.Node, c)
	}
	if len(out.Node) == 0 {
		return nil, errors.New("the graph holds no backbone")
	}
	return &Backbone{Graph: out, Input: base.Input, Output: base.Output, Features: base.Features}, nil
}

// isVariable says whether a node of op type typ is a variable: a resource
// variable's handle (TF2) or a reference variable (TF1).
func isVariable(typ string) bool { return typ == "VarHandleOp" || typ == "VariableV2" }
