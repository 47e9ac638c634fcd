package backbone

import (
	"fmt"
	"strconv"
	"strings"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	functionpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/internal/tfc"
)

// maxInlineDepth bounds the nesting of function calls InlineFunctions
// follows: a recursive function would otherwise never end.
const maxInlineDepth = 32

// InlineFunctions returns gd with every function call (PartitionedCall,
// StatefulPartitionedCall, or a node whose op is a library function)
// replaced by the function's body, recursively: the body's nodes are named
// under the call's name ("call/node"), read the call's inputs where the
// body reads its arguments, and wait for the call's control inputs; an
// Identity named as the call gives its output 0 and waits for the
// function's control outputs (so "^call" still waits for them), and further
// outputs k are read from Identities "call/_output_k". The C API's symbolic gradients (TF_AddGradients) do not
// go through function calls; through the inlined graph they do. The
// result has no function library left when no call remains.
func InlineFunctions(gd *graphpb.GraphDef) (*graphpb.GraphDef, error) {
	lib := map[string]*functionpb.FunctionDef{}
	for _, f := range gd.GetLibrary().GetFunction() {
		lib[f.GetSignature().GetName()] = f
	}
	in := &inliner{lib: lib, renames: map[string]string{}}
	for _, n := range gd.Node {
		if err := in.add(proto.Clone(n).(*nodepb.NodeDef), 0); err != nil {
			return nil, err
		}
	}
	// A stand-in may itself be renamed (a nested call's output returned by
	// an outer one): follow the renames to the end.
	for _, n := range in.out {
		for i, s := range n.Input {
			for r, ok := in.renames[s]; ok; r, ok = in.renames[s] {
				s = r
			}
			n.Input[i] = s
		}
	}
	out := &graphpb.GraphDef{Versions: gd.Versions, Node: in.out}
	return out, nil
}

type inliner struct {
	lib map[string]*functionpb.FunctionDef
	out []*nodepb.NodeDef
	// renames maps "call:k" (k > 0) to its stand-in's output.
	renames map[string]string
}

// callee is the function n calls, or "".
func (in *inliner) callee(n *nodepb.NodeDef) string {
	switch n.Op {
	case "PartitionedCall", "StatefulPartitionedCall":
		return n.Attr["f"].GetFunc().GetName()
	}
	if in.lib[n.Op] != nil {
		return n.Op
	}
	return ""
}

// add appends n to the output, or the body of the function it calls.
func (in *inliner) add(n *nodepb.NodeDef, depth int) error {
	name := in.callee(n)
	if name == "" {
		in.out = append(in.out, n)
		return nil
	}
	if depth >= maxInlineDepth {
		return fmt.Errorf("inlining %s: function calls nested deeper than %d", n.Name, maxInlineDepth)
	}
	f := in.lib[name]
	if f == nil {
		return fmt.Errorf("inlining %s: no function %s in the library", n.Name, name)
	}
	body, err := in.expand(n, f)
	if err != nil {
		return fmt.Errorf("inlining %s (function %s): %w", n.Name, name, err)
	}
	for _, b := range body {
		if err := in.add(b, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// expand returns f's body as nodes of the calling graph, and the nodes that
// stand for the call.
func (in *inliner) expand(call *nodepb.NodeDef, f *functionpb.FunctionDef) ([]*nodepb.NodeDef, error) {
	var data, ctl []string
	for _, s := range call.Input {
		if strings.HasPrefix(s, "^") {
			ctl = append(ctl, s)
		} else {
			data = append(data, s)
		}
	}
	sig := f.GetSignature()
	if len(data) != len(sig.InputArg) {
		return nil, fmt.Errorf("%d inputs for %d arguments", len(data), len(sig.InputArg))
	}
	args := map[string]string{}
	for i, a := range sig.InputArg {
		args[a.Name] = data[i]
	}
	byName := map[string]*nodepb.NodeDef{}
	for _, b := range f.NodeDef {
		byName[b.Name] = b
	}
	pre := call.Name + "/"
	// resolve turns a body reference ("arg", "node:out_arg:i") into one of
	// the calling graph ("input", "call/node:k").
	resolve := func(ref string) (string, error) {
		parts := strings.Split(ref, ":")
		if a, ok := args[parts[0]]; ok && len(parts) <= 2 {
			return a, nil
		}
		if len(parts) != 3 {
			return "", fmt.Errorf("reference %q is neither an argument nor node:output:index", ref)
		}
		b := byName[parts[0]]
		if b == nil {
			return "", fmt.Errorf("reference %q: no node %s", ref, parts[0])
		}
		i, err := strconv.Atoi(parts[2])
		if err != nil {
			return "", fmt.Errorf("reference %q: bad index", ref)
		}
		base, err := in.outputIndex(b, parts[1])
		if err != nil {
			return "", fmt.Errorf("reference %q: %w", ref, err)
		}
		return fmt.Sprintf("%s%s:%d", pre, b.Name, base+i), nil
	}
	var body []*nodepb.NodeDef
	for _, b := range f.NodeDef {
		c := proto.Clone(b).(*nodepb.NodeDef)
		c.Name = pre + b.Name
		for _, a := range c.Attr {
			if a.GetPlaceholder() != "" {
				return nil, fmt.Errorf("node %s: attribute placeholder %s (a polymorphic function) is not supported", b.Name, a.GetPlaceholder())
			}
		}
		hasData := false
		for i, s := range c.Input {
			if strings.HasPrefix(s, "^") {
				c.Input[i] = "^" + pre + s[1:]
				continue
			}
			r, err := resolve(s)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", b.Name, err)
			}
			c.Input[i], hasData = r, true
		}
		if !hasData {
			// What a call waits for, the body's sources wait for.
			c.Input = append(c.Input, ctl...)
		}
		if c.Device == "" {
			c.Device = call.Device
		}
		body = append(body, c)
	}
	// The call's stand-ins: an Identity named as the call for output 0,
	// waiting for the function's control outputs and its other outputs
	// (what "^call" waited for), and one Identity per further output, to
	// which InlineFunctions renames the references "call:k". Identity, not
	// IdentityN: the C API has no gradient for IdentityN.
	var rets []string
	for _, o := range sig.OutputArg {
		ref, ok := f.Ret[o.Name]
		if !ok {
			return nil, fmt.Errorf("output %s has no value", o.Name)
		}
		r, err := resolve(ref)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Name, err)
		}
		if o.Type == typespb.DataType_DT_INVALID {
			return nil, fmt.Errorf("output %s has no fixed type", o.Name)
		}
		rets = append(rets, r)
	}
	stand := &nodepb.NodeDef{Name: call.Name, Op: "NoOp", Device: call.Device}
	if len(rets) == 0 {
		stand.Input = append(stand.Input, ctl...)
	}
	for k, r := range rets {
		id := &nodepb.NodeDef{Name: call.Name, Op: "Identity", Device: call.Device, Input: []string{r},
			Attr: map[string]*attrpb.AttrValue{"T": {Value: &attrpb.AttrValue_Type{Type: sig.OutputArg[k].Type}}}}
		if k == 0 {
			stand = id
			continue
		}
		id.Name = fmt.Sprintf("%s_output_%d", pre, k)
		if byName[strings.TrimPrefix(id.Name, pre)] != nil {
			return nil, fmt.Errorf("output %d: the body has a node named %s", k, id.Name)
		}
		in.renames[fmt.Sprintf("%s:%d", call.Name, k)] = id.Name + ":0"
		stand.Input = append(stand.Input, "^"+id.Name)
		body = append(body, id)
	}
	for _, name := range f.ControlRet {
		stand.Input = append(stand.Input, "^"+pre+name)
	}
	return append(body, stand), nil
}

// outputIndex is the flat index of the first tensor of n's output argument
// arg: the sizes of the arguments before it, as n's op (or function)
// defines them with n's attributes.
func (in *inliner) outputIndex(n *nodepb.NodeDef, arg string) (int, error) {
	if f := in.lib[n.Op]; f != nil {
		for i, o := range f.Signature.OutputArg {
			if o.Name == arg {
				return i, nil
			}
		}
		return 0, fmt.Errorf("function %s has no output %s", n.Op, arg)
	}
	def, err := tfc.RegisteredOp(n.Op)
	if err != nil {
		return 0, err
	}
	attr := func(name string) *attrpb.AttrValue {
		if a := n.Attr[name]; a != nil {
			return a
		}
		for _, a := range def.Attr {
			if a.Name == name {
				return a.DefaultValue
			}
		}
		return nil
	}
	k := 0
	for _, o := range def.OutputArg {
		if o.Name == arg {
			return k, nil
		}
		switch {
		case o.NumberAttr != "":
			k += int(attr(o.NumberAttr).GetI())
		case o.TypeListAttr != "":
			k += len(attr(o.TypeListAttr).GetList().GetType())
		default:
			k++
		}
	}
	return 0, fmt.Errorf("op %s has no output %s", n.Op, arg)
}
