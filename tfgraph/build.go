package tfgraph

import (
	"errors"
	"fmt"
	"slices"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
)

// Variable is a TF1 reference variable: a VariableV2 op with an Identity
// "<name>/read" that the model reads and an Assign "<name>/Assign" that sets its
// initial value.
type Variable struct {
	Name      string // op name; also the checkpoint key
	Shape     []int64
	Trainable bool
	Ref       tf.Output     // the VariableV2's ref output, "<name>:0"
	Read      tf.Output     // "<name>/read:0"
	Assign    *tf.Operation // "<name>/Assign", from Initial
	Initial   tf.Output     // the initial value's tensor
	// Resource is set for a backbone's resource variable (VarHandleOp):
	// Ref is then its handle and Read a ReadVariableOp.
	Resource bool
}

// Model is the tutorial's graph, built in Go. Its node names are those the Python
// tutorial's graph uses (see names.go), so checkpoints and predict.py-style
// lookups work across both.
type Model struct {
	Net   network.Network
	Graph *tf.Graph

	X        tf.Output // input placeholder "x"
	Labels   tf.Output // one-hot placeholder "y_true"
	Logits   tf.Output
	Pred     tf.Output // softmax "y_pred"
	Cost     tf.Output // mean softmax cross-entropy
	Accuracy tf.Output
	// TrainCost is the cost Adam minimises: Cost, or with dropout or batch
	// normalisation the training path's (layers.go).
	TrainCost tf.Output

	Train *tf.Operation // the Adam step; nil in an inference-only model
	// LearningRate is Adam's learning rate when it can be fed
	// (BuildOptions.ScheduledLearningRate); its Op is nil otherwise.
	LearningRate tf.Output
	Grads        []tf.Output   // d cost / d variable, one per trainable variable; nil in an inference-only model
	Init         *tf.Operation // initialises every variable

	// Vars holds every global variable in creation order: the trainable weights
	// and biases, then (when training) beta1_power, beta2_power and the Adam slots.
	Vars []*Variable

	// Sync holds the replication nodes when built with a Replication.
	Sync *SyncOps

	// Features is the backbone's output the head reads (Identity
	// "features") when Net.Base is set; its Op is nil otherwise.
	Features tf.Output
	// BaseVars are the backbone's variables: frozen, saved and restored
	// with the others but outside Vars.
	BaseVars []*Variable
	backbone *backbone.Backbone
	baseInit *tf.Operation // loads BaseVars from the backbone's SavedModel
	baseFile tf.Output
	// TuneVars are the BaseVars fine-tuned (BuildOptions.FineTune), and
	// TuneGrads their gradients; the rest of fine-tuning is in finetune.go.
	TuneVars    []*Variable
	TuneGrads   []tf.Output
	tuneState   []*Variable // their Adam slots and beta powers, in Vars
	tuneInit    *tf.Operation
	tuneRestore *tf.Operation
	tuneFile    tf.Output
	// TuneStats are the moving statistics of the batch norms TuneBN puts
	// in training mode: BaseVars that each step updates (on a cluster, the
	// chief, on the parameter servers).
	TuneStats []*Variable
	// TuneBN are the backbone's layers whose batch norms train in
	// training mode (FineTune.BatchNorm).
	TuneBN []string

	// Saver is the save/restore sub-graph over Vars and BaseVars.
	Saver *SaverNodes
	// LossScaling is set when built with BuildOptions.LossScale; ScaleInit
	// initialises its variables, which no checkpoint holds.
	LossScaling *LossScaling
	ScaleInit   []*tf.Operation

	updates []*tf.Operation // batch normalisation's moving averages, run with Train
}

// BaseInit is what loads the backbone's weights from its SavedModel's
// variables (a session's InitBase): the op, the filename placeholder it
// reads, and the bundle's prefix to feed it. The op is nil when the model
// has no backbone to load: none, or one read back from a tfcat checkpoint,
// which holds its weights.
func (m *Model) BaseInit() (init *tf.Operation, filename tf.Output, bundle string) {
	if m.backbone == nil || m.baseInit == nil {
		return nil, tf.Output{}, ""
	}
	return m.baseInit, m.baseFile, m.backbone.Variables
}

// Trainable returns the model's trainable variables in creation order.
func (m *Model) Trainable() []*Variable {
	var out []*Variable
	for _, v := range m.Vars {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// Var returns the variable with the given name among Vars and the
// fine-tuned TuneVars, or nil.
func (m *Model) Var(name string) *Variable {
	for _, v := range m.Vars {
		if v.Name == name {
			return v
		}
	}
	for _, v := range slices.Concat(m.TuneVars, m.TuneStats) {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// BuildOptions change how Build makes the graph.
type BuildOptions struct {
	// Seed makes the initial weights reproducible: the same non-zero seed gives
	// the same weights. Zero draws fresh random weights.
	Seed int64
	// InferenceOnly leaves out the optimizer (Adam, its slots and gradients).
	InferenceOnly bool
	// Replication, when set, builds the graph for synchronous training on a
	// cluster (see Replication); nil builds it for one process.
	Replication *Replication
	// ScheduledLearningRate makes Adam's learning rate "Adam/learning_rate"
	// a PlaceholderWithDefault (default: Network.LearningRate) that
	// tfsession.Session.SetLearningRate changes between steps, for learning-rate
	// schedules. Off, it is the tutorial's Const.
	ScheduledLearningRate bool
	// Base is the backbone's graph when Network.Base is set.
	Base *backbone.Backbone
	// FineTune, with Base, trains some of the backbone's variables too.
	FineTune *FineTune
	// UnfusedGradients leaves the gradients as the C API builds them: the
	// tutorial's arithmetic exactly, slower. By default they are rewritten so
	// that TensorFlow fuses each convolution and MatMul with its bias add
	// (see fusable; the same values) and each bias gradient is one GEMV (see
	// biasGradients; the same sums in another order).
	UnfusedGradients bool
	// LossScale scales the cost dynamically before its gradients are taken
	// and skips steps whose gradients overflow (lossscale.go): for float16
	// training, where small gradients would flush to zero. The trainer sets
	// it for Precision FP16. In float32 it changes no value.
	LossScale bool
	// LossScaleGrowth is the number of finite steps in a row after which
	// the loss scale doubles; 0 is TensorFlow's 2000. Tests shorten it.
	LossScaleGrowth int
	// SumBiasGradients keeps the C API's Sum for the bias gradients while
	// the contractions are made fusable: BenchmarkGradients measures each
	// change alone.
	SumBiasGradients bool
}

// builder keeps the scope and the root-level names already used, so explicit
// names can be made unique the way TF1 makes them ("Const", "Const_1", ...).
type builder struct {
	g     *tf.Graph
	s     *op.Scope
	names map[string]int
	opt   BuildOptions
	// devices places variables by name (Replication); empty: no device.
	devices map[string]string
	// biased pairs each convolution's or MatMul's output with the AddV2
	// that adds its bias (see fusable).
	biased [][2]tf.Output
	// syncNorms are the training path's batch normalisations when
	// replicated, with the global batch's statistics: for the staged
	// gradients (syncbn.go), and the chief's update of the moving averages
	// (instead of each replica updating its own).
	syncNorms []syncNorm
	// tuneReads are the backbone's reads of each fine-tuned variable.
	tuneReads [][]tf.Output
	// trainFeatures are the training path's features when they differ
	// from Model.Features (fineTuneBN).
	trainFeatures tf.Output
}

func (b *builder) unique(name string) string {
	n := b.names[name]
	b.names[name]++
	if n == 0 {
		return name
	}
	return fmt.Sprintf("%s_%d", name, n)
}

// add adds an op with an explicit name at the graph's root.
func (b *builder) add(spec tf.OpSpec) *tf.Operation {
	return b.s.AddOperation(spec)
}

func (b *builder) constant(name string, value any) tf.Output {
	t, err := tf.NewTensor(value)
	if err != nil {
		b.s.UpdateErr("Const", err)
		return tf.Output{}
	}
	op := b.add(tf.OpSpec{Type: "Const", Name: name, Attrs: map[string]any{"dtype": t.DataType(), "value": t}})
	if op == nil {
		return tf.Output{}
	}
	return op.Output(0)
}

// variable adds a VariableV2 with its read Identity and its initialising Assign.
func (b *builder) variable(name string, shape []int64, trainable bool, initial tf.Output) *Variable {
	v := &Variable{Name: name, Shape: shape, Trainable: trainable, Initial: initial}
	s := b.s.WithDevice(b.devices[name]) // the variable and what touches its reference
	ref := s.AddOperation(tf.OpSpec{Type: opVariableV2, Name: name, Attrs: map[string]any{
		"shape": tf.MakeShape(shape...), "dtype": tf.Float, "container": "", "shared_name": "",
	}})
	if ref == nil {
		return v
	}
	v.Ref = ref.Output(0)
	v.Assign = s.AddOperation(tf.OpSpec{Type: opAssign, Name: name + assignSuffix,
		Input: []tf.Input{v.Ref, initial},
		Attrs: map[string]any{"validate_shape": true, "use_locking": true}})
	if read := s.AddOperation(tf.OpSpec{Type: "Identity", Name: name + readSuffix, Input: []tf.Input{v.Ref}}); read != nil {
		v.Read = read.Output(0)
	}
	return v
}

// truncatedNormal is TF1's tf.truncated_normal(shape, stddev): its op is named
// "truncated_normal", "truncated_normal_1", ... as Python names it.
func (b *builder) truncatedNormal(shape []int64, stddev float64, seed2 int64) tf.Output {
	name := b.unique("truncated_normal")
	s := b.s.SubScope(name)
	var attrs []op.TruncatedNormalAttr
	if b.opt.Seed != 0 {
		attrs = append(attrs, op.TruncatedNormalSeed(b.opt.Seed), op.TruncatedNormalSeed2(seed2))
	}
	rnd := op.TruncatedNormal(s, op.Const(s.SubScope("shape"), shape), tf.Float, attrs...)
	mul := b.add(tf.OpSpec{Type: "Mul", Name: name, Input: []tf.Input{rnd, op.Const(s.SubScope("stddev"), float32(stddev))}})
	if mul == nil {
		return tf.Output{}
	}
	return mul.Output(0)
}

// zeros is a Fill of 0 with the variable's shape; a Fill rather than a Const
// keeps the 16384×128 slots out of the serialized graph.
func (b *builder) zeros(name string, shape []int64) tf.Output {
	s := b.s.SubScope(name)
	dims := op.Const(s.SubScope("shape_as_tensor"), shape)
	zero := op.Const(s.SubScope("Const"), float32(0))
	fill := b.add(tf.OpSpec{Type: "Fill", Name: name, Input: []tf.Input{dims, zero}})
	if fill == nil {
		return tf.Output{}
	}
	return fill.Output(0)
}

// Build makes the tutorial's graph for net: placeholders, the network, y_pred,
// cost and accuracy, and unless opt.InferenceOnly, TF1 Adam with its slots and
// beta powers; plus the Saver's sub-graph.
func Build(net network.Network, opt BuildOptions) (m *Model, err error) {
	if err := net.Validate(); err != nil {
		return nil, err
	}
	g := tf.NewGraph()
	b := &builder{g: g, s: op.NewScopeWithGraph(g), names: map[string]int{}, opt: opt, devices: opt.Replication.devices(net)}
	if r := opt.Replication; r != nil && r.Compute != "" {
		b.s = b.s.WithDevice(r.Compute) // the variables name their own device
	}
	m = &Model{Net: net}
	defer func() {
		if err == nil {
			err = b.s.Err()
		}
		if err != nil {
			err = fmt.Errorf("building the graph: %w", tfc.ScopeErr(err))
			m = nil
		}
	}()

	m.X = b.add(tf.OpSpec{Type: "Placeholder", Name: network.InputName, Attrs: map[string]any{
		"dtype": tf.Float, "shape": tf.MakeShape(-1, int64(net.Height), int64(net.Width), int64(net.Channels))}}).Output(0)
	m.Labels = b.add(tf.OpSpec{Type: "Placeholder", Name: network.LabelsName, Attrs: map[string]any{
		"dtype": tf.Float, "shape": tf.MakeShape(-1, int64(net.Classes))}}).Output(0)

	head := m.X
	if net.Base != nil {
		if opt.Base == nil {
			return nil, errors.New("the network has a backbone and BuildOptions.Base is nil")
		}
		if opt.FineTune != nil && !opt.InferenceOnly {
			if err := b.resolveFineTune(net.Base, opt.Base); err != nil {
				return nil, err
			}
		}
		if m.Features, m.BaseVars, err = b.importBase(net, opt.Base, m.X); err != nil {
			return nil, err
		}
		m.backbone, head = opt.Base, m.Features
		if opt.FineTune != nil && !opt.InferenceOnly {
			if b.tuneReads, err = b.fineTune(m); err != nil {
				return nil, err
			}
			if opt.FineTune.BatchNorm {
				if b.trainFeatures, err = b.fineTuneBN(m); err != nil {
					return nil, err
				}
			}
		}
		if opt.Base.Variables != "" && len(m.BaseVars) > 0 {
			if err := b.baseInit(m, opt.Base); err != nil {
				return nil, err
			}
		}
	}
	layers := b.variables(m)
	if err := b.s.Err(); err != nil {
		return nil, err
	}
	m.Logits, _ = b.forward(b.s, net, head, layers, false)
	if b.s.Err() != nil {
		return nil, b.s.Err()
	}
	m.Pred = b.add(tf.OpSpec{Type: "Softmax", Name: network.PredictionName, Input: []tf.Input{m.Logits}}).Output(0)

	cs := b.s.SubScope("softmax_cross_entropy")
	loss, _ := op.SoftmaxCrossEntropyWithLogits(cs, m.Logits, m.Labels)
	m.Cost = b.add(tf.OpSpec{Type: "Mean", Name: network.CostName,
		Input: []tf.Input{loss, op.Const(cs.SubScope("axes"), []int32{0})}}).Output(0)

	as := b.s.SubScope("correct")
	dim := op.Const(as.SubScope("dim"), int32(1))
	predCls := op.ArgMax(as.SubScope("y_pred_cls"), m.Pred, dim)
	trueCls := op.ArgMax(as.SubScope("y_true_cls"), m.Labels, dim)
	correct := op.Cast(as, op.Equal(as, predCls, trueCls), tf.Float)
	m.Accuracy = b.add(tf.OpSpec{Type: "Mean", Name: network.AccuracyName,
		Input: []tf.Input{correct, op.Const(as.SubScope("axes"), []int32{0})}}).Output(0)
	if b.s.Err() != nil {
		return nil, b.s.Err()
	}

	if !opt.InferenceOnly {
		if err := b.trainingPath(m, layers); err != nil {
			return nil, err
		}
		if err := b.adam(m, m.Trainable()); err != nil {
			return nil, err
		}
		if len(m.TuneVars) > 0 {
			if err := b.fineTuneStart(m); err != nil {
				return nil, err
			}
		}
	}

	inits := make([]*tf.Operation, len(m.Vars), len(m.Vars)+len(m.ScaleInit))
	for i, v := range m.Vars {
		inits[i] = v.Assign
	}
	inits = append(inits, m.ScaleInit...)
	m.Init = b.add(tf.OpSpec{Type: "NoOp", Name: network.InitOpName, ControlDependencies: inits})
	if err := b.s.Err(); err != nil {
		return nil, err
	}
	if m.Saver, err = addSaver(b, append(slices.Clone(m.Vars), m.BaseVars...)); err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

// adam adds TF1 AdamOptimizer.minimize(cost) over vars with Python's names:
// beta1_power and beta2_power, slots <var>/Adam and <var>/Adam_1, one ApplyAdam
// per variable under Adam/update_<var>/, the beta-power updates, and the NoOp
// "Adam" that groups them.
func (b *builder) adam(m *Model, vars []*Variable) error {
	net := m.Net
	beta1Power := b.variable(network.Beta1PowerName, []int64{}, false, b.constant(network.Beta1PowerName+"/initial_value", float32(net.Beta1)))
	beta2Power := b.variable(network.Beta2PowerName, []int64{}, false, b.constant(network.Beta2PowerName+"/initial_value", float32(net.Beta2)))
	m.Vars = append(m.Vars, beta1Power, beta2Power)
	slots := make([][2]*Variable, len(vars))
	for i, v := range vars {
		mName, vName := v.Name+adamMSuffix, v.Name+adamVSuffix
		slots[i][0] = b.variable(mName, v.Shape, false, b.zeros(mName+initialSuffix, v.Shape))
		slots[i][1] = b.variable(vName, v.Shape, false, b.zeros(vName+initialSuffix, v.Shape))
		m.Vars = append(m.Vars, slots[i][0], slots[i][1])
	}
	if err := b.s.Err(); err != nil {
		return err
	}

	xs := make([]tf.Output, len(vars))
	for i, v := range vars {
		xs[i] = v.Read
	}
	cost := m.TrainCost
	var ls *LossScaling
	if b.opt.LossScale {
		var err error
		if cost, ls, err = b.scaleCost(m, cost); err != nil {
			return err
		}
	}
	for _, r := range b.tuneReads {
		xs = append(xs, r...)
	}
	var grads []tf.Output
	var err error
	if len(b.syncNorms) > 0 {
		grads, err = b.syncGradientsOf(cost, xs)
	} else if grads, err = b.g.AddGradients("", []tf.Output{cost}, xs, nil); err != nil {
		err = gradientError(err)
	}
	if err != nil {
		return err
	}
	var tuneGrads []tf.Output
	if len(b.tuneReads) > 0 {
		tuneGrads = b.sumReads(m, b.tuneReads, grads[len(vars):])
		grads = grads[:len(vars)]
	}
	if !b.opt.UnfusedGradients {
		if err := b.fusable(); err != nil {
			return err
		}
		if !b.opt.SumBiasGradients {
			if err := b.biasGradients(vars, grads); err != nil {
				return err
			}
		}
	}
	gradOps := make([]*tf.Operation, len(grads))
	m.Grads = grads
	if ls != nil {
		if m.Grads, err = b.divide(ls, vars, grads); err != nil {
			return err
		}
		grads = m.Grads
	}

	// Reference variables are read without a copy, so an ApplyAdam that ran
	// while another variable's gradient was still being computed would change
	// that gradient. Python gates each op's gradients (GATE_OP); gating on all
	// of them gives the same values and is simpler.
	if b.opt.Replication != nil {
		// On a cluster Adam applies the replicas' average instead, the
		// fine-tuned backbone variables' too.
		all := append(slices.Clone(grads), tuneGrads...)
		if all, err = b.syncGradients(m, append(slices.Clone(vars), m.TuneVars...), all); err != nil {
			return err
		}
		grads, tuneGrads = all[:len(vars)], all[len(vars):]
	}
	for i, g := range grads {
		gradOps[i] = g.Op
	}
	if ls != nil {
		// Adam reads the unscaled gradients through a Switch that is dead
		// on a step that overflowed (on a cluster: on any replica, through
		// their mean); the gate waits for the unscaled values.
		if grads, err = b.whenFinite(ls, vars, grads); err != nil {
			return err
		}
		m.LossScaling, m.updates = ls, append(m.updates, ls.update...)
	}
	for _, g := range tuneGrads {
		gradOps = append(gradOps, g.Op)
	}
	gate := b.add(tf.OpSpec{Type: "NoOp", Name: network.TrainOpName + "/gate_gradients", ControlDependencies: gradOps})

	var lr tf.Output
	if b.opt.ScheduledLearningRate {
		def := b.constant(network.TrainOpName+"/learning_rate/default", float32(net.LearningRate))
		if ph := b.add(tf.OpSpec{Type: "PlaceholderWithDefault", Name: network.TrainOpName + "/learning_rate",
			Input: []tf.Input{def}, Attrs: map[string]any{"shape": tf.ScalarShape()}}); ph != nil {
			lr = ph.Output(0)
		}
		m.LearningRate = lr
	} else {
		lr = b.constant(network.TrainOpName+"/learning_rate", float32(net.LearningRate))
	}
	beta1 := b.constant(network.TrainOpName+"/beta1", float32(net.Beta1))
	beta2 := b.constant(network.TrainOpName+"/beta2", float32(net.Beta2))
	eps := b.constant(network.TrainOpName+"/epsilon", float32(net.Epsilon))
	updates := make([]*tf.Operation, 0, len(vars)+2)
	for i, v := range vars {
		u := b.s.WithDevice(b.devices[v.Name]).AddOperation(tf.OpSpec{Type: opApplyAdam, Name: network.TrainOpName + "/update_" + v.Name + "/ApplyAdam",
			Input: []tf.Input{v.Ref, slots[i][0].Ref, slots[i][1].Ref, beta1Power.Read, beta2Power.Read,
				lr, beta1, beta2, eps, grads[i]},
			Attrs:               map[string]any{"use_locking": false, "use_nesterov": false},
			ControlDependencies: []*tf.Operation{gate}})
		updates = append(updates, u)
	}
	if err := b.s.Err(); err != nil {
		return err
	}
	if len(tuneGrads) > 0 {
		tu, err := b.fineTuneAdam(m, tuneGrads, gate, lr, beta1, beta2, eps)
		if err != nil {
			return err
		}
		updates = append(updates, tu...)
	}
	// The beta powers advance only after every variable has been updated.
	applied := append([]*tf.Operation(nil), updates...)
	for i, p := range []struct {
		v    *Variable
		beta tf.Output
	}{{beta1Power, beta1}, {beta2Power, beta2}} {
		suffix := ""
		if i > 0 {
			suffix = fmt.Sprintf("_%d", i)
		}
		ps := b.s.WithDevice(b.devices[p.v.Name])
		mul := ps.AddOperation(tf.OpSpec{Type: "Mul", Name: network.TrainOpName + "/mul" + suffix,
			Input: []tf.Input{p.v.Read, p.beta}, ControlDependencies: applied})
		if mul == nil {
			return b.s.Err()
		}
		updates = append(updates, ps.AddOperation(tf.OpSpec{Type: opAssign, Name: network.TrainOpName + "/Assign" + suffix,
			Input: []tf.Input{p.v.Ref, mul.Output(0)},
			Attrs: map[string]any{"validate_shape": true, "use_locking": false}}))
	}
	m.Train = b.add(tf.OpSpec{Type: "NoOp", Name: network.TrainOpName, ControlDependencies: append(updates, m.updates...)})
	return b.s.Err()
}

func filled(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}
