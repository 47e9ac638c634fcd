package backbone

import (
	"fmt"
	"slices"
	"strings"

	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// BatchNormError is the refusal of tfgraph's FineTune.BatchNorm for a
// batch norm of the backbone whose graph is not the inference arithmetic
// tfcat rewrites.
type BatchNormError struct {
	Layer  string
	Reason string
}

func (e *BatchNormError) Error() string { return "fine-tune-bn: " + e.Why() }

// Why names the layer and what is wrong with its graph.
func (e *BatchNormError) Why() string {
	return fmt.Sprintf("cannot put batch norm %s in training mode: it %s", e.Layer, e.Reason)
}

// BatchNorm is one batch norm of the inlined backbone in inference form,
// as Keras's tf.nn.batch_normalization writes it:
//
//	add   = AddV2(read(moving_variance), epsilon)
//	rsqrt = Rsqrt(add)
//	mul   = Mul(rsqrt, read(gamma))
//	mul_1 = Mul(x, mul)
//	mul_2 = Mul(read(moving_mean), mul)
//	sub   = Sub(read(beta), mul_2)
//	out   = AddV2(mul_1, sub)
type BatchNorm struct {
	Layer           string
	Mean, Variance  string // the moving statistics' VarHandleOps
	X               string // the normalised tensor
	Add, Mul2       string // the nodes that read the moving statistics
	AddArg, Mul2Arg int    // which of their inputs does
}

// FindBatchNorms finds, in the inlined backbone gd, the batch norm of each
// layer in layers, by its variables' names (LAYER/moving_mean,
// LAYER/moving_variance, LAYER/gamma, LAYER/beta) and the arithmetic
// around their reads.
func FindBatchNorms(gd *graphpb.GraphDef, vars []network.BaseVariable, layers []string) ([]*BatchNorm, error) {
	byName := map[string]*nodepb.NodeDef{}
	users := map[string][]*nodepb.NodeDef{}
	for _, n := range gd.Node {
		byName[n.Name] = n
		for _, s := range n.Input {
			if !strings.HasPrefix(s, "^") {
				users[checkpoint.NodeName(s)] = append(users[checkpoint.NodeName(s)], n)
			}
		}
	}
	node := map[string]string{} // variable name -> VarHandleOp
	for _, v := range vars {
		node[v.Name] = v.Node
	}
	// read is the variable's only ReadVariableOp on a data path.
	read := func(layer, v string) (string, error) {
		h, ok := node[layer+"/"+v]
		if !ok {
			return "", &BatchNormError{Layer: layer, Reason: "has no variable " + v}
		}
		var reads []string
		for _, u := range users[h] {
			if u.Op == "ReadVariableOp" && len(users[u.Name]) > 0 {
				reads = append(reads, u.Name)
			}
		}
		if len(reads) != 1 {
			return "", &BatchNormError{Layer: layer, Reason: fmt.Sprintf("reads %s %d times in the backbone's graph, not once", v, len(reads))}
		}
		return reads[0], nil
	}
	// only is the only user of name, which must be an op of type typ.
	only := func(layer, name string, typ ...string) (*nodepb.NodeDef, error) {
		u := users[name]
		if len(u) != 1 || !slices.Contains(typ, u[0].Op) {
			return nil, &BatchNormError{Layer: layer, Reason: fmt.Sprintf("is not the inference arithmetic tfcat knows: %s does not feed one %s", name, strings.Join(typ, " or "))}
		}
		return u[0], nil
	}
	// other is the input of n that is not from node from, with its index.
	other := func(n *nodepb.NodeDef, from string) (string, int) {
		if len(n.Input) < 2 {
			return "", -1
		}
		for i := range 2 {
			if checkpoint.NodeName(n.Input[i]) == from {
				return n.Input[1-i], 1 - i
			}
		}
		return "", -1
	}
	wrong := func(layer, what string) error {
		return &BatchNormError{Layer: layer, Reason: "is not the inference arithmetic tfcat knows: " + what}
	}
	var out []*BatchNorm
	for _, layer := range layers {
		if _, ok := node[layer+"/moving_mean"]; !ok {
			continue // not a batch norm
		}
		bn := &BatchNorm{Layer: layer, Mean: node[layer+"/moving_mean"], Variance: node[layer+"/moving_variance"]}
		rm, err := read(layer, "moving_mean")
		if err != nil {
			return nil, err
		}
		rv, err := read(layer, "moving_variance")
		if err != nil {
			return nil, err
		}
		rg, err := read(layer, "gamma")
		if err != nil {
			return nil, err
		}
		rb, err := read(layer, "beta")
		if err != nil {
			return nil, err
		}
		add, err := only(layer, rv, "AddV2", "Add")
		if err != nil {
			return nil, err
		}
		eps, k := other(add, rv)
		if e := byName[checkpoint.NodeName(eps)]; e == nil || e.Op != "Const" {
			return nil, wrong(layer, "the moving variance is not added to a constant epsilon")
		}
		bn.Add, bn.AddArg = add.Name, 1-k
		rsqrt, err := only(layer, add.Name, "Rsqrt")
		if err != nil {
			return nil, err
		}
		mul, err := only(layer, rsqrt.Name, "Mul")
		if err != nil {
			return nil, err
		}
		if g, _ := other(mul, rsqrt.Name); checkpoint.NodeName(g) != rg {
			return nil, wrong(layer, "gamma does not scale 1/sqrt(variance+epsilon)")
		}
		mul2, err := only(layer, rm, "Mul")
		if err != nil {
			return nil, err
		}
		if s, k := other(mul2, rm); checkpoint.NodeName(s) != mul.Name {
			return nil, wrong(layer, "the moving mean is not multiplied by the scale")
		} else {
			bn.Mul2, bn.Mul2Arg = mul2.Name, 1-k
		}
		var mul1 *nodepb.NodeDef
		for _, u := range users[mul.Name] {
			if u.Name != mul2.Name {
				if mul1 != nil || u.Op != "Mul" {
					return nil, wrong(layer, "the scale feeds more than the input's and the mean's products")
				}
				mul1 = u
			}
		}
		if mul1 == nil {
			return nil, wrong(layer, "the scale multiplies no input")
		}
		bn.X, _ = other(mul1, mul.Name)
		sub, err := only(layer, mul2.Name, "Sub")
		if err != nil {
			return nil, err
		}
		if len(sub.Input) < 2 || checkpoint.NodeName(sub.Input[0]) != rb || checkpoint.NodeName(sub.Input[1]) != mul2.Name {
			return nil, wrong(layer, "beta minus the scaled mean is not the offset")
		}
		sum, err := only(layer, sub.Name, "AddV2", "Add")
		if err != nil {
			return nil, err
		}
		if o, _ := other(sum, sub.Name); checkpoint.NodeName(o) != mul1.Name {
			return nil, wrong(layer, "the offset is not added to the scaled input")
		}
		out = append(out, bn)
	}
	return out, nil
}
