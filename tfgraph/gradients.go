package tfgraph

import (
	"fmt"
	"path"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/tfcat/tfcat/internal/tfc"
)

// fusable lets TensorFlow's graph optimiser fuse each convolution and MatMul
// with the AddV2 that adds its bias (oneDNN's _FusedConv2D and _FusedMatMul,
// as in the Python tutorial's graph), and drops a reduction that reduces
// nothing. The C API's gradient of AddV2 reads the shape of its first input,
// the convolution's output; that second consumer keeps the optimiser from
// fusing. The sum has the same shape (the bias is a vector of the channels),
// so the Shape ops read it instead. And the gradient of that first input is
// Reshape(Sum(g, axes), shape) with axes computed at run time, though none
// are reduced: its consumers read g itself. The same values; the forward
// graph untouched.
func (b *builder) fusable() error {
	input := b.producers()
	for _, pair := range b.biased {
		contraction, sum := pair[0], pair[1]
		for _, c := range contraction.Consumers() {
			if c.Op.Type() != "Shape" {
				continue
			}
			if err := tfc.UpdateEdge(b.g, sum, c.Op, c.Index); err != nil {
				return fmt.Errorf("gradients: reading the shape of %s from %s: %w", contraction.Op.Name(), sum.Op.Name(), err)
			}
			// The Reshape(Sum(g, axes), this shape) of the contraction's gradient.
			for _, r := range c.Op.Output(0).Consumers() {
				if r.Op.Type() != "Reshape" || r.Index != 1 {
					continue
				}
				red, ok := input(r.Op, 0)
				if !ok || red.Op.Type() != "Sum" {
					continue
				}
				g, ok := input(red.Op, 0)
				if !ok || g.Op.Type() != "Identity" {
					continue
				}
				for _, u := range r.Op.Output(0).Consumers() {
					if err := tfc.UpdateEdge(b.g, g, u.Op, u.Index); err != nil {
						return fmt.Errorf("gradients: reading %s's gradient without a reduction: %w", contraction.Op.Name(), err)
					}
				}
			}
		}
	}
	return nil
}

// producers returns a function that says which output feeds input i of an
// op (graft's Operation does not tell).
func (b *builder) producers() func(op *tf.Operation, i int) (tf.Output, bool) {
	producer := map[string]tf.Output{}
	for _, o := range b.g.Operations() {
		for i := range o.NumOutputs() {
			for _, c := range o.Output(i).Consumers() {
				producer[fmt.Sprint(c.Op.Name(), ":", c.Index)] = o.Output(i)
			}
		}
	}
	return func(op *tf.Operation, i int) (tf.Output, bool) {
		p, ok := producer[fmt.Sprint(op.Name(), ":", i)]
		return p, ok
	}
}

// biasGradients replaces each bias's gradient, which the C API builds for
// AddV2 as Reshape(Sum(g, axes), shape) with the axes computed at run time,
// by ones[1, rows] × g seen as [rows, channels]: the same sum over every axis
// but the channels, as one GEMV that reads g once. TensorFlow's generic Sum
// over the leading axes of the first convolution's [32, 128, 128, 32]
// gradient takes 9.9 ms on this project's CPU, the GEMV 3.1 (11% of the
// tutorial's step was in these sums, by tfsession's ProfileStep). BiasAddGrad is
// as quick alone, but oneDNN then fuses it into the filter gradient, and
// that fused kernel made the step slower. Only the summation order changes;
// grads is updated in place, and the forward graph is untouched.
func (b *builder) biasGradients(vars []*Variable, grads []tf.Output) error {
	input := b.producers()
	// graft makes a new *Operation for each lookup: outputs compare by name.
	id := func(o tf.Output) string { return fmt.Sprint(o.Op.Name(), ":", o.Index) }
	isBias := map[string]bool{}
	for _, pair := range b.biased {
		if y, ok := input(pair[1].Op, 1); ok {
			isBias[id(y)] = true
		}
	}
	for i, v := range vars {
		r := grads[i].Op
		if !isBias[id(v.Read)] || len(v.Shape) != 1 || r.Type() != "Reshape" {
			continue
		}
		sum, ok1 := input(r, 0)
		shape, ok2 := input(r, 1)
		if !ok1 || !ok2 || sum.Op.Type() != "Sum" || shape.Op.Type() != "Shape" {
			continue
		}
		if of, ok := input(shape.Op, 0); !ok || id(of) != id(v.Read) {
			continue
		}
		g, ok1 := input(sum.Op, 0)
		axes, ok2 := input(sum.Op, 1)
		if !ok1 || !ok2 || axes.Op.Type() != "BroadcastGradientArgs" || axes.Index != 1 {
			continue
		}
		// sum = ones[1, rows] × g as [rows, channels]: a GEMV that reads g once.
		scope := b.unique(path.Dir(r.Name()) + "/bias_grad")
		node := func(typ, name string, in ...tf.Input) tf.Output {
			o := b.add(tf.OpSpec{Type: typ, Name: scope + "/" + name, Input: in})
			if o == nil {
				return tf.Output{}
			}
			return o.Output(0)
		}
		c := int32(v.Shape[0])
		g2 := node("Reshape", "Reshape", g, b.constant(scope+"/shape", []int32{-1, c}))
		rows := node("StridedSlice", "rows", node("Shape", "Shape", g2),
			b.constant(scope+"/begin", []int32{0}), b.constant(scope+"/end", []int32{1}), b.constant(scope+"/strides", []int32{1}))
		dims := node("ConcatV2", "dims", tf.OutputList{b.constant(scope+"/one", []int32{1}), rows}, b.constant(scope+"/axis", int32(0)))
		ones := node("Fill", "ones", dims, b.constant(scope+"/value", float32(1)))
		out := node("Reshape", "sum", node("MatMul", "MatMul", ones, g2), b.constant(scope+"/channels", []int32{c}))
		if err := b.s.Err(); err != nil {
			return fmt.Errorf("gradients: the bias gradient of %s: %w", v.Name, err)
		}
		grads[i] = out
	}
	return nil
}
