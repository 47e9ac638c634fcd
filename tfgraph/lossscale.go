package tfgraph

import (
	tf "github.com/wamuir/graft/tensorflow"
)

// Dynamic loss scaling, for training in float16 (Precision FP16). Grappler's
// mixed-precision rewrite casts the compute ops to float16 and adds no loss
// scaling, and float16's smallest normal value, 6.1e-5, is above many of the
// network's gradients, which would flush to zero. So the cost is multiplied
// by a scale S before its gradients are taken and the gradients by 1/S after;
// when any gradient is not finite (S overflowed float16's 65504) the step is
// skipped — no variable, slot or beta power changes — and S halves; after
// lossScaleGrowth finite steps in a row S doubles. S is a power of two, so in
// float32 the scaled and unscaled gradients carry the same bits (the tests
// use that). The same scheme as TensorFlow's and Keras's LossScaleOptimizer,
// with their constants.
const (
	// LossScaleInitial is S when training starts, or resumes.
	LossScaleInitial = 1 << 15
	lossScaleGrowth  = 2000
)

// Names of the loss-scale nodes. Its two variables are not saved: a
// checkpoint stays what Python writes, and a resumed run starts again at the
// initial scale, which the first steps correct.
const (
	lossScaleName = "loss_scale"
	lossScaleGood = "loss_scale/good_steps"
)

// LossScaling holds the nodes loss scaling adds: Scale is S, Good the
// finite steps since S last changed.
type LossScaling struct {
	Scale, Good *Variable
	finite      tf.Output // every gradient finite this step
	update      []*tf.Operation
}

// scaleCost returns cost × S and the variables of S, whose initialisers
// join m.ScaleInit.
func (b *builder) scaleCost(m *Model, cost tf.Output) (tf.Output, *LossScaling, error) {
	ls := &LossScaling{
		Scale: b.variable(lossScaleName, []int64{}, false, b.constant(lossScaleName+"/initial_value", float32(LossScaleInitial))),
		Good:  b.variable(lossScaleGood, []int64{}, false, b.constant(lossScaleGood+"/initial_value", float32(0))),
	}
	m.ScaleInit = append(m.ScaleInit, ls.Scale.Assign, ls.Good.Assign)
	scaled := b.add(tf.OpSpec{Type: "Mul", Name: lossScaleName + "/scaled_cost", Input: []tf.Input{cost, ls.Scale.Read}})
	if scaled == nil {
		return tf.Output{}, nil, b.s.Err()
	}
	return scaled.Output(0), ls, nil
}

// divide returns the gradients divided by S; whenFinite then passes them
// on only when all are finite.
func (b *builder) divide(ls *LossScaling, vars []*Variable, grads []tf.Output) ([]tf.Output, error) {
	inv := b.add(tf.OpSpec{Type: "Reciprocal", Name: lossScaleName + "/inverse", Input: []tf.Input{ls.Scale.Read}})
	if inv == nil {
		return nil, b.s.Err()
	}
	unscaled := make([]tf.Output, len(grads))
	for i, g := range grads {
		u := b.add(tf.OpSpec{Type: "Mul", Name: lossScaleName + "/unscale_" + vars[i].Name, Input: []tf.Input{g, inv.Output(0)}})
		if u == nil {
			return nil, b.s.Err()
		}
		unscaled[i] = u.Output(0)
	}
	return unscaled, nil
}

// whenFinite passes each unscaled gradient on through a Switch that is dead
// unless all are finite, which leaves the Adam updates that read them (and
// the beta-power updates after those) unrun on a step that overflowed, and
// adds the updates of S. On a cluster the
// gradients are the replicas' mean: one replica's overflow skips the step
// for all, and S changes once, on the parameter server.
func (b *builder) whenFinite(ls *LossScaling, vars []*Variable, unscaled []tf.Output) (switched []tf.Output, err error) {
	allFinite := make([]tf.Input, len(unscaled))
	for i := range unscaled {
		name := lossScaleName + "/unscale_" + vars[i].Name
		axes := make([]int32, len(vars[i].Shape))
		for d := range axes {
			axes[d] = int32(d)
		}
		fin := b.add(tf.OpSpec{Type: "IsFinite", Name: name + "/is_finite", Input: []tf.Input{unscaled[i]}})
		all := b.add(tf.OpSpec{Type: "All", Name: name + "/all_finite", Input: []tf.Input{fin.Output(0), b.constant(name+"/axes", axes)}})
		if all == nil {
			return nil, b.s.Err()
		}
		allFinite[i] = all.Output(0)
	}
	packed := b.add(tf.OpSpec{Type: "Pack", Name: lossScaleName + "/finite_each", Input: []tf.Input{tf.OutputList(outputs(allFinite))}})
	if packed == nil {
		return nil, b.s.Err()
	}
	finite := b.add(tf.OpSpec{Type: "All", Name: lossScaleName + "/finite", Input: []tf.Input{packed.Output(0), b.constant(lossScaleName+"/finite_axes", []int32{0})}})
	if finite == nil {
		return nil, b.s.Err()
	}
	ls.finite = finite.Output(0)
	switched = make([]tf.Output, len(unscaled))
	for i, u := range unscaled {
		sw := b.add(tf.OpSpec{Type: "Switch", Name: lossScaleName + "/apply_" + vars[i].Name, Input: []tf.Input{u, ls.finite}})
		if sw == nil {
			return nil, b.s.Err()
		}
		switched[i] = sw.Output(1) // the true branch: dead when a gradient is not finite
	}

	// good' = finite ? good+1 : 0; S' = !finite ? S/2 : good' >= growth ? 2S : S
	// (and good' back to 0 when S grows). Both read S and good after every
	// gradient was checked, through finite.
	one := b.constant(lossScaleName+"/one", float32(1))
	zero := b.constant(lossScaleName+"/zero", float32(0))
	growth := b.growthSteps()
	next := b.add(tf.OpSpec{Type: "AddV2", Name: lossScaleName + "/next_good", Input: []tf.Input{ls.Good.Read, one}})
	grow := b.add(tf.OpSpec{Type: "GreaterEqual", Name: lossScaleName + "/grow", Input: []tf.Input{next.Output(0), b.constant(lossScaleName+"/growth_steps", growth)}})
	doubled := b.add(tf.OpSpec{Type: "Mul", Name: lossScaleName + "/doubled", Input: []tf.Input{ls.Scale.Read, b.constant(lossScaleName+"/two", float32(2))}})
	halved := b.add(tf.OpSpec{Type: "Mul", Name: lossScaleName + "/halved", Input: []tf.Input{ls.Scale.Read, b.constant(lossScaleName+"/half", float32(0.5))}})
	if halved == nil {
		return nil, b.s.Err()
	}
	keptOrDoubled := b.add(tf.OpSpec{Type: "SelectV2", Name: lossScaleName + "/kept_or_doubled", Input: []tf.Input{grow.Output(0), doubled.Output(0), ls.Scale.Read}})
	newScale := b.add(tf.OpSpec{Type: "SelectV2", Name: lossScaleName + "/new_scale", Input: []tf.Input{ls.finite, keptOrDoubled.Output(0), halved.Output(0)}})
	goodOrReset := b.add(tf.OpSpec{Type: "SelectV2", Name: lossScaleName + "/good_or_reset", Input: []tf.Input{grow.Output(0), zero, next.Output(0)}})
	newGood := b.add(tf.OpSpec{Type: "SelectV2", Name: lossScaleName + "/new_good", Input: []tf.Input{ls.finite, goodOrReset.Output(0), zero}})
	if newGood == nil {
		return nil, b.s.Err()
	}
	for _, a := range []struct {
		v   *Variable
		val tf.Output
	}{{ls.Scale, newScale.Output(0)}, {ls.Good, newGood.Output(0)}} {
		ls.update = append(ls.update, b.add(tf.OpSpec{Type: opAssign, Name: a.v.Name + "/update",
			Input: []tf.Input{a.v.Ref, a.val},
			Attrs: map[string]any{"validate_shape": true, "use_locking": true}}))
	}
	return switched, b.s.Err()
}

// growthSteps is lossScaleGrowth, or BuildOptions.LossScaleGrowth.
func (b *builder) growthSteps() float32 {
	if b.opt.LossScaleGrowth > 0 {
		return float32(b.opt.LossScaleGrowth)
	}
	return lossScaleGrowth
}

func outputs(in []tf.Input) []tf.Output {
	out := make([]tf.Output, len(in))
	for i, x := range in {
		out[i] = x.(tf.Output)
	}
	return out
}
