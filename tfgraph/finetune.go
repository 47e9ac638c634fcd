package tfgraph

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/network"
)

// fineTuneScope names what fine-tuning adds outside BasePrefix (which
// backbone.FromGraph takes whole as the backbone): the backbone's Adam slots
// and beta powers, its learning rate, and the restore of a frozen-head
// checkpoint.
const fineTuneScope = "fine_tune"

// FineTune makes some of a backbone's variables trainable (BuildOptions):
// gradients then go through the backbone, whose functions Build inlines,
// and its variables have their own Adam slots and beta powers.
type FineTune struct {
	// Vars are the variables to train: nodes of the backbone's graph
	// (network.BaseVariable.Node), as backbone.FineTuneVars picks them; or,
	// when empty, the ones Spec picks (backbone.FineTuneVars's spec).
	Vars []string
	Spec string
	// LearningRate is the backbone's; zero is a tenth of the head's. With a
	// scheduled learning rate it follows the schedule in proportion.
	LearningRate float64
	// BatchNorm puts the fine-tuned layers' batch norms in training mode
	// on the training path (fineTuneBN); BNMomentum is their moving
	// statistics' momentum, zero for DefaultBNMomentum.
	BatchNorm  bool
	BNMomentum float64
}

var noGradient = regexp.MustCompile(`No gradient defined for op: (\S+?)\.`)

// resolveFineTune picks the variables b.opt.FineTune names, before the
// backbone is imported (on a cluster their nodes are placed on the
// parameter servers then): b.opt.FineTune.Vars is set afterwards.
func (b *builder) resolveFineTune(base *network.Base, bb *backbone.Backbone) error {
	ft := b.opt.FineTune
	if b.opt.LossScale {
		return errors.New("fine-tune: not with loss scaling (FP16)")
	}
	if len(ft.Vars) == 0 {
		vars, err := backbone.FineTuneVars(base, bb, ft.Spec)
		if err != nil {
			return err
		}
		resolved := *ft
		resolved.Vars = vars
		b.opt.FineTune = &resolved
	}
	if r := b.opt.Replication; r != nil {
		// Replicated: the fine-tuned variables, their Adam slots and beta
		// powers on the parameter servers, round-robin, like the head's,
		// and the moving statistics of the batch norms FineTune.BatchNorm
		// trains; the rest of the backbone stays frozen on each replica.
		k := 0
		for i, name := range b.opt.FineTune.Vars {
			dev := r.psDevice(k % r.PSTasks)
			k++
			slot := fineTuneScope + "/" + name
			b.devices[BasePrefix+"/"+name], b.devices[slot+adamMSuffix], b.devices[slot+adamVSuffix] = dev, dev, dev
			if i == 0 {
				b.devices[fineTuneScope+"/"+network.Beta1PowerName] = dev
				b.devices[fineTuneScope+"/"+network.Beta2PowerName] = dev
			}
		}
		for _, name := range tunedStats(base.Variables, b.opt.FineTune) {
			b.devices[BasePrefix+"/"+name] = r.psDevice(k % r.PSTasks)
			k++
		}
	}
	return nil
}

// tunedStats names the moving statistics of the fine-tuned layers' batch
// norms (LAYER/moving_mean and LAYER/moving_variance) when ft trains them.
func tunedStats(vars []network.BaseVariable, ft *FineTune) []string {
	if !ft.BatchNorm {
		return nil
	}
	layers := map[string]bool{}
	for _, v := range vars {
		if slices.Contains(ft.Vars, v.Node) {
			layers[v.Layer()] = true
		}
	}
	var names []string
	for _, v := range vars {
		if layers[v.Layer()] && (strings.HasSuffix(v.Node, "/moving_mean") || strings.HasSuffix(v.Node, "/moving_variance")) {
			names = append(names, v.Node)
		}
	}
	return names
}

// placeTuned gives the fine-tuned variables' nodes of gd (the backbone's
// inlined graph, before import), and those of the moving statistics that
// train with them, their devices on a cluster. The ops that
// take their handles (reads, updates) go with them: TensorFlow places an
// op with the resource it uses.
func (b *builder) placeTuned(gd *graphpb.GraphDef) {
	if b.opt.Replication == nil {
		return
	}
	for _, n := range gd.Node {
		// resolveFineTune placed only the fine-tuned variables and the
		// moving statistics that train under BasePrefix.
		if dev, ok := b.devices[BasePrefix+"/"+n.Name]; ok {
			n.Device = dev
		}
	}
}

// baseVarsByNode is m.BaseVars by their nodes' names in the backbone
// (without BasePrefix).
func (m *Model) baseVarsByNode() map[string]*Variable {
	byName := map[string]*Variable{}
	for _, v := range m.BaseVars {
		byName[strings.TrimPrefix(v.Name, BasePrefix+"/")] = v
	}
	return byName
}

// settable gives the backbone's resource variable v an initial value to
// feed and its assignment (under fineTuneScope/name, on v's device), so
// that Session.SetVariables sets it.
func (b *builder) settable(v *Variable, name string) {
	set := b.s.WithDevice(b.devices[v.Name]).SubScope(fineTuneScope).SubScope(name)
	v.Initial = op.Placeholder(set, tf.Float, op.PlaceholderShape(tf.MakeShape(v.Shape...)))
	v.Assign = op.AssignVariableOp(set, v.Ref, v.Initial)
}

// fineTune marks the variables opt.FineTune names trainable and returns
// the backbone's reads of each, the tensors whose gradients train them.
// Each also gets an initial value to feed and its assignment, so that
// Session.SetVariables sets it (a cluster's chief initialises the
// parameter servers' copy from its local one).
func (b *builder) fineTune(m *Model) ([][]tf.Output, error) {
	ft := b.opt.FineTune
	byName := m.baseVarsByNode()
	reads := make([][]tf.Output, len(ft.Vars))
	for i, name := range ft.Vars {
		v := byName[name]
		if v == nil {
			return nil, fmt.Errorf("fine-tune: the backbone has no variable %s", name)
		}
		if !v.Resource {
			return nil, fmt.Errorf("fine-tune: variable %s is a TF1 reference variable; tfcat fine-tunes resource variables (TF2 SavedModels)", name)
		}
		if slices.Contains(m.TuneVars, v) {
			return nil, fmt.Errorf("fine-tune: variable %s named twice", name)
		}
		v.Trainable = true
		m.TuneVars = append(m.TuneVars, v)
		b.settable(v, fmt.Sprintf("set_%d", i))
		for _, c := range v.Ref.Consumers() {
			if c.Op.Type() == "ReadVariableOp" && strings.HasPrefix(c.Op.Name(), BasePrefix+"/") {
				reads[i] = append(reads[i], c.Op.Output(0))
			}
		}
		if len(reads[i]) == 0 {
			return nil, fmt.Errorf("fine-tune: the backbone's features do not read variable %s", name)
		}
	}
	return reads, nil
}

// fineTuneAdam adds Adam for the fine-tuned variables given their
// gradients: resource slots fine_tune/<var>/Adam and Adam_1, beta powers of
// their own (a frozen-head checkpoint's have advanced with the head's
// steps, and would under-correct the new slots), the backbone's learning
// rate, each update after gate. It returns the updates, beta powers last.
func (b *builder) fineTuneAdam(m *Model, grads []tf.Output, gate *tf.Operation, lr, beta1, beta2, eps tf.Output) ([]*tf.Operation, error) {
	net := m.Net
	s := b.s.SubScope(fineTuneScope)
	rate := b.opt.FineTune.LearningRate
	if rate <= 0 {
		rate = net.LearningRate / 10
	}
	// The head's rate times a constant: a schedule moves both.
	baseLR := op.Mul(s.SubScope("learning_rate"), lr, op.Const(s.SubScope("learning_rate_ratio"), float32(rate/net.LearningRate)))
	p1 := b.variable(fineTuneScope+"/"+network.Beta1PowerName, []int64{}, false, b.constant(fineTuneScope+"/"+network.Beta1PowerName+"/initial_value", float32(net.Beta1)))
	p2 := b.variable(fineTuneScope+"/"+network.Beta2PowerName, []int64{}, false, b.constant(fineTuneScope+"/"+network.Beta2PowerName+"/initial_value", float32(net.Beta2)))
	m.Vars = append(m.Vars, p1, p2)
	m.tuneState = append(m.tuneState, p1, p2)
	var updates []*tf.Operation
	for i, v := range m.TuneVars {
		name := fineTuneScope + "/" + strings.TrimPrefix(v.Name, BasePrefix+"/")
		var slots [2]*Variable
		for k, suffix := range []string{adamMSuffix, adamVSuffix} {
			slots[k] = b.resourceVariable(name+suffix, v.Shape, b.zeros(name+suffix+initialSuffix, v.Shape))
			m.Vars = append(m.Vars, slots[k])
			m.tuneState = append(m.tuneState, slots[k])
		}
		if err := b.s.Err(); err != nil {
			return nil, err
		}
		u := b.add(tf.OpSpec{Type: "ResourceApplyAdam", Name: name + "/ResourceApplyAdam",
			Input: []tf.Input{v.Ref, slots[0].Ref, slots[1].Ref, p1.Read, p2.Read, baseLR, beta1, beta2, eps, grads[i]},
			Attrs: map[string]any{"use_locking": false, "use_nesterov": false}, ControlDependencies: []*tf.Operation{gate}})
		updates = append(updates, u)
	}
	applied := slices.Clone(updates)
	for i, p := range []struct {
		v    *Variable
		beta tf.Output
	}{{p1, beta1}, {p2, beta2}} {
		ps := s.SubScope(fmt.Sprintf("beta%d_power_update", i+1))
		mul := ps.AddOperation(tf.OpSpec{Type: "Mul", Input: []tf.Input{p.v.Read, p.beta}, ControlDependencies: applied})
		if mul == nil {
			return nil, b.s.Err()
		}
		updates = append(updates, ps.AddOperation(tf.OpSpec{Type: opAssign, Input: []tf.Input{p.v.Ref, mul.Output(0)},
			Attrs: map[string]any{"validate_shape": true, "use_locking": false}}))
	}
	return updates, b.s.Err()
}

// resourceVariable adds a resource variable (VarHandleOp) with its read and
// its initialising assignment.
func (b *builder) resourceVariable(name string, shape []int64, initial tf.Output) *Variable {
	v := &Variable{Name: name, Shape: shape, Initial: initial, Resource: true}
	s := b.s.WithDevice(b.devices[name]) // on a cluster, its variable's parameter server
	h := s.AddOperation(tf.OpSpec{Type: "VarHandleOp", Name: name, Attrs: map[string]any{
		"shape": tf.MakeShape(shape...), "dtype": tf.Float, "container": "", "shared_name": name}})
	if h == nil {
		return v
	}
	v.Ref = h.Output(0)
	v.Assign = b.add(tf.OpSpec{Type: "AssignVariableOp", Name: name + assignSuffix, Input: []tf.Input{v.Ref, initial},
		Attrs: map[string]any{"dtype": tf.Float}})
	if r := b.add(tf.OpSpec{Type: "ReadVariableOp", Name: name + readSuffix, Input: []tf.Input{v.Ref},
		Attrs: map[string]any{"dtype": tf.Float}}); r != nil {
		v.Read = r.Output(0)
	}
	return v
}

// sumReads adds the gradients of a variable's several reads.
func (b *builder) sumReads(m *Model, reads [][]tf.Output, grads []tf.Output) []tf.Output {
	out := make([]tf.Output, len(reads))
	k := 0
	for i, r := range reads {
		if len(r) == 1 {
			out[i] = grads[k]
		} else {
			out[i] = op.AddN(b.s.SubScope(fineTuneScope).SubScope("sum_reads"), grads[k:k+len(r)])
		}
		k += len(r)
	}
	m.TuneGrads = out
	return out
}

// gradientError names the op whose gradient the C API lacks, on one line.
func gradientError(err error) error {
	if g := noGradient.FindStringSubmatch(err.Error()); g != nil {
		return fmt.Errorf("fine-tune: the backbone has op %s, which has no gradient in TensorFlow's C API", g[1])
	}
	return fmt.Errorf("gradients of the cost: %w", err)
}

// fineTuneStart adds what starts fine-tuning from a frozen-head checkpoint,
// which lacks the backbone's Adam state: fine_tune/init initialises that
// state, and fine_tune/restore restores every other variable from the
// bundle whose prefix is fed to fine_tune/restore/filename.
func (b *builder) fineTuneStart(m *Model) error {
	var inits []*tf.Operation
	for _, v := range m.tuneState {
		inits = append(inits, v.Assign)
	}
	s := b.s.SubScope(fineTuneScope)
	m.tuneInit = s.AddOperation(tf.OpSpec{Type: "NoOp", Name: "init", ControlDependencies: inits})
	var vars []*Variable
	for _, v := range append(slices.Clone(m.Vars), m.BaseVars...) {
		if !slices.Contains(m.tuneState, v) {
			vars = append(vars, v)
		}
	}
	rs := s.SubScope("restore")
	file := op.Placeholder(rs.SubScope("filename"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	keys := make([]string, len(vars))
	dtypes := make([]tf.DataType, len(vars))
	for i, v := range vars {
		keys[i], dtypes[i] = v.Name, tf.Float
	}
	restored := op.RestoreV2(rs, file, op.Const(rs.SubScope("keys"), keys), op.Const(rs.SubScope("slices"), make([]string, len(keys))), dtypes)
	var assigns []*tf.Operation
	for i, v := range vars {
		as := rs.SubScope(fmt.Sprintf("assign_%d", i))
		if v.Resource {
			assigns = append(assigns, op.AssignVariableOp(as, v.Ref, restored[i]))
		} else {
			assigns = append(assigns, as.AddOperation(tf.OpSpec{Type: opAssign, Input: []tf.Input{v.Ref, restored[i]},
				Attrs: map[string]any{"validate_shape": true, "use_locking": true}}))
		}
	}
	m.tuneRestore = rs.AddOperation(tf.OpSpec{Type: "NoOp", Name: "all", ControlDependencies: assigns})
	m.tuneFile = file
	return b.s.Err()
}

// HasFineTuneState says whether gd (a checkpoint's graph) holds Adam state
// for every variable m fine-tunes.
func (m *Model) HasFineTuneState(gd *graphpb.GraphDef) bool {
	have := map[string]bool{}
	for _, n := range gd.Node {
		have[n.Name] = true
	}
	for _, v := range m.tuneState {
		if !have[v.Name] {
			return false
		}
	}
	return true
}

// FineTuneStart is what starts fine-tuning from a frozen head's checkpoint
// (fineTuneStart): the op that initialises the backbone's Adam state, the op
// that restores every other variable, and the bundle prefix to feed it; nil
// ops when the model fine-tunes nothing.
func (m *Model) FineTuneStart() (init, restore *tf.Operation, filename tf.Output) {
	return m.tuneInit, m.tuneRestore, m.tuneFile
}
