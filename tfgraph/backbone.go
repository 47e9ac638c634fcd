package tfgraph

import (
	"fmt"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// Names of a transfer-learning graph: the backbone's nodes are imported under
// BasePrefix ("base/..."), and the head reads the backbone's features from
// the Identity FeaturesName, which training on cached features feeds.
const (
	BasePrefix   = backbone.Prefix
	FeaturesName = "features"
	// basePreprocess scopes the conversion of tfcat's input (BGR, /255) to
	// the backbone's own preprocessing.
	basePreprocess = "base_preprocess"
)

// importBase adds the backbone under BasePrefix, its input mapped to x
// converted to the backbone's preprocessing, and returns the features
// Identity and the backbone's variables (frozen: not trainable).
func (b *builder) importBase(net network.Network, bb *backbone.Backbone, x tf.Output) (tf.Output, []*Variable, error) {
	base := net.Base
	pre, err := b.preprocess(base, x, net.Channels)
	if err != nil {
		return tf.Output{}, nil, err
	}
	graph := bb.Graph
	if b.opt.FineTune != nil {
		// The variables are read inside the functions' bodies: inlined,
		// the reads are tensors of the graph, which gradients can target.
		if graph, err = backbone.InlineFunctions(graph); err != nil {
			return tf.Output{}, nil, fmt.Errorf("fine-tune: %w", err)
		}
		if len(b.opt.FineTune.Vars) > 0 {
			b.placeTuned(graph)
		}
	}
	def, err := proto.Marshal(graph)
	if err != nil {
		return tf.Output{}, nil, err
	}
	inOp, inIdx, err := checkpoint.ParseTensorName(base.Input)
	if err != nil {
		return tf.Output{}, nil, fmt.Errorf("backbone input: %w", err)
	}
	opts := tf.GraphImportOptions{Prefix: BasePrefix}
	opts.AddInputMapping(inOp, inIdx, pre)
	if err := b.g.ImportWithOptions(def, opts); err != nil {
		return tf.Output{}, nil, fmt.Errorf("importing the backbone: %w", err)
	}
	outOp, outIdx, err := checkpoint.ParseTensorName(base.Output)
	if err != nil {
		return tf.Output{}, nil, fmt.Errorf("backbone output: %w", err)
	}
	o := b.g.Operation(BasePrefix + "/" + outOp)
	if o == nil || outIdx < 0 || outIdx >= o.NumOutputs() {
		return tf.Output{}, nil, fmt.Errorf("the backbone has no tensor %q", base.Output)
	}
	feat := b.add(tf.OpSpec{Type: "Identity", Name: FeaturesName, Input: []tf.Input{o.Output(outIdx)}})
	if feat == nil {
		return tf.Output{}, nil, b.s.Err()
	}
	var vars []*Variable
	for _, o := range b.g.Operations() {
		if !strings.HasPrefix(o.Name(), BasePrefix+"/") || (o.Type() != opVariableV2 && o.Type() != "VarHandleOp") {
			continue
		}
		v := &Variable{Name: o.Name(), Ref: o.Output(0), Resource: o.Type() == "VarHandleOp"}
		if dt, err := o.Attr("dtype"); err != nil || dt != any(tf.Float) {
			return tf.Output{}, nil, fmt.Errorf("backbone variable %s is not float32", o.Name())
		}
		if sh, err := o.Attr("shape"); err == nil {
			if s, ok := sh.(tf.Shape); ok {
				v.Shape, _ = s.ToSlice()
			}
		}
		if v.Resource {
			// Outside BasePrefix: backbone.FromGraph takes only the backbone.
			rs := b.s.SubScope(fmt.Sprintf("base_read_%d", len(vars)))
			v.Read = op.ReadVariableOp(rs, v.Ref, tf.Float)
		} else {
			v.Read = v.Ref
		}
		vars = append(vars, v)
	}
	slices.SortFunc(vars, func(a, c *Variable) int { return strings.Compare(a.Name, c.Name) })
	return feat.Output(0), vars, b.s.Err()
}

// baseInit adds "base_init": a RestoreV2 of the backbone's variables from
// the bundle whose prefix is fed to "base_init/filename", under bb.Keys.
func (b *builder) baseInit(m *Model, bb *backbone.Backbone) error {
	var keys []string
	var assigns []*tf.Operation
	var targets []*Variable
	for _, v := range m.BaseVars {
		if b.opt.Replication != nil && slices.Contains(m.TuneVars, v) {
			// On the parameter servers, shared: the chief sets them from its
			// local copy (a replica starting late must not undo a resume).
			continue
		}
		k, ok := bb.Keys[strings.TrimPrefix(v.Name, BasePrefix+"/")]
		if !ok {
			return fmt.Errorf("backbone variable %s has no checkpoint key", strings.TrimPrefix(v.Name, BasePrefix+"/"))
		}
		keys, targets = append(keys, k), append(targets, v)
	}
	s := b.s.SubScope("base_init")
	file := op.Placeholder(s.SubScope("filename"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	dtypes := make([]tf.DataType, len(keys))
	for i := range dtypes {
		dtypes[i] = tf.Float
	}
	restored := op.RestoreV2(s, file, op.Const(s.SubScope("keys"), keys), op.Const(s.SubScope("slices"), make([]string, len(keys))), dtypes)
	for i, v := range targets {
		if v.Resource {
			assigns = append(assigns, op.AssignVariableOp(s.SubScope(fmt.Sprintf("assign_%d", i)), v.Ref, restored[i]))
		} else {
			assigns = append(assigns, s.AddOperation(tf.OpSpec{Type: opAssign, Name: fmt.Sprintf("Assign_%d", i),
				Input: []tf.Input{v.Ref, restored[i]}, Attrs: map[string]any{"validate_shape": true, "use_locking": true}}))
		}
	}
	m.baseFile = file
	m.baseInit = b.add(tf.OpSpec{Type: "NoOp", Name: "base_init", ControlDependencies: assigns})
	return b.s.Err()
}

// preprocess converts tfcat's input (BGR or grey, scaled by 1/255) to the
// backbone's: channels reversed for RGB, then (255·x − Mean)/Std.
func (b *builder) preprocess(base *network.Base, x tf.Output, channels int) (tf.Output, error) {
	if err := base.Validate(channels); err != nil {
		return tf.Output{}, err
	}
	s := b.s.SubScope(basePreprocess)
	if base.RGB {
		x = op.ReverseV2(s.SubScope("rgb"), x, op.Const(s.SubScope("channel_axis"), []int32{3}))
	}
	n := max(len(base.Mean), len(base.Std))
	scale, shift := make([]float32, n), make([]float32, n)
	identity := true
	for i := range n {
		m, sd := base.Mean[min(i, len(base.Mean)-1)], base.Std[min(i, len(base.Std)-1)]
		scale[i], shift[i] = float32(255/sd), float32(-m/sd)
		identity = identity && scale[i] == 1 && shift[i] == 0
	}
	if !identity {
		x = op.AddV2(s.SubScope("shift"), op.Mul(s.SubScope("scale"), x, op.Const(s.SubScope("scale_by"), scale)),
			op.Const(s.SubScope("shift_by"), shift))
	}
	return x, s.Err()
}
