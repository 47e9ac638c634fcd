package tfgraph

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/internal/tfc"
)

// Classifier is a loaded model that maps preprocessed images to class
// probabilities: a tfcat Session, a checkpoint imported from its .meta, or a
// SavedModel.
type Classifier interface {
	// InputSize is the image height, width and channels the model takes.
	InputSize() (height, width, channels int)
	// NumClasses is the length of each probability row.
	NumClasses() int
	// Predict returns n rows of probabilities for the n images in x (NHWC).
	Predict(x []float32, n int) ([]float32, error)
	Close() error
}

// ArgMax is the index of the largest probability; of equal maxima the first,
// as tf.argmax chooses.
func ArgMax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// InputSize is the model's image height, width and channels.
func (s *Session) InputSize() (int, int, int) {
	return s.Model.Net.Height, s.Model.Net.Width, s.Model.Net.Channels
}

// NumClasses is the number of classes the model tells apart.
func (s *Session) NumClasses() int { return s.Model.Net.Classes }

// Op types an imported graph may hold: those of the tutorial's graph as Python
// TF 1.x/2.x and tfcat build it (forward pass, gradients, Adam with reference or
// resource variables, initialisers, the Saver). Anything else — file writes,
// Python callbacks — is refused unless the caller trusts the file.
var allowedOps = setOf(
	// forward pass and metrics
	"Placeholder", "PlaceholderWithDefault", "Const", "Identity", "Conv2D", "Add", "AddV2", "BiasAdd",
	"MaxPool", "Relu", "Reshape", "MatMul", "Softmax", "SoftmaxCrossEntropyWithLogits", "Mean",
	"ArgMax", "Equal", "Cast", "NoOp", "StopGradient", "LogSoftmax",
	// variables and initialisers
	"VariableV2", "Variable", "Assign", "TruncatedNormal", "Mul", "Fill",
	"VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp", "IsVariableInitialized",
	// gradients and Adam
	"Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad", "ReluGrad", "BiasAddGrad",
	"ApplyAdam", "ResourceApplyAdam", "ConcatV2", "ExpandDims", "FloorMod", "FloorDiv", "GatherV2",
	"Neg", "Pack", "Prod", "RealDiv", "Shape", "ShapeN", "Slice", "Sub", "Sum", "Tile", "ZerosLike",
	"BroadcastGradientArgs", "Maximum", "Size", "Range", "Rank", "StridedSlice", "Squeeze", "Sqrt",
	"OnesLike", "DivNoNan", "Reciprocal", "Square", "Mod", "Div", "DynamicStitch",
	// the Saver
	"SaveV2", "RestoreV2", "MergeV2Checkpoints", "StringJoin", "ShardedFilename",
)

// fileWritingOps may sit in an allowed graph (Python's Saver has them) but must
// not be reached by what tfcat runs to restore and predict.
var fileWritingOps = setOf("SaveV2", "MergeV2Checkpoints")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// nodeName strips an input reference to its node: "^a", "a:1" -> "a".
func nodeName(input string) string {
	input = strings.TrimPrefix(input, "^")
	if i := strings.LastIndexByte(input, ':'); i >= 0 {
		if _, err := strconv.Atoi(input[i+1:]); err == nil {
			return input[:i]
		}
	}
	return input
}

// CheckGraph refuses a graph from elsewhere that could do more than restore
// variables and predict: every node's op type must be one the tutorial's graph
// uses, and nothing reachable from the nodes tfcat runs (roots) may write files.
// file names the .meta in errors.
func CheckGraph(gd *graphpb.GraphDef, roots []string, file string) error {
	byName := make(map[string]*nodepb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		if !allowedOps[n.Op] {
			return fmt.Errorf("%s: node %q has op type %s, which restoring and predicting do not need; refusing to run this graph (pass --trust-graph if you trust the file)", file, n.Name, n.Op)
		}
		byName[n.Name] = n
	}
	if lib := gd.GetLibrary(); lib != nil && len(lib.Function) > 0 {
		return fmt.Errorf("%s: the graph defines %d functions; the tutorial's graph has none, refusing it (pass --trust-graph if you trust the file)", file, len(lib.Function))
	}
	seen := map[string]bool{}
	stack := append([]string(nil), roots...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		n := byName[name]
		if n == nil {
			return fmt.Errorf("%s: the graph has no node %q", file, name)
		}
		if fileWritingOps[n.Op] {
			return fmt.Errorf("%s: restoring or predicting would run %q (%s), which writes files; refusing (pass --trust-graph if you trust the file)", file, n.Name, n.Op)
		}
		for _, in := range n.Input {
			stack = append(stack, nodeName(in))
		}
	}
	return nil
}

// Imported is a checkpoint loaded the way the tutorial's predict.py loads it:
// the .meta's graph imported, its Saver's restore op run with the prefix fed,
// and x:0 fed, y_pred:0 fetched.
type Imported struct {
	Prefix string
	Meta   MetaInfo
	graph  *tf.Graph
	sess   *tf.Session
	x      tf.Output
	labels tf.Output // y_true:0, fed with zeros as predict.py does; may be unset
	pred   tf.Output
	h, w   int
	c, n   int
}

// ImportOptions change how ImportCheckpoint treats the graph.
type ImportOptions struct {
	Session SessionConfig
	// Trust skips the op-type check: only for .meta files from a trusted source.
	Trust bool
}

func splitTensorName(name string) (string, int) {
	op, idx, ok := strings.Cut(name, ":")
	if !ok {
		return name, 0
	}
	i, err := strconv.Atoi(idx)
	if err != nil {
		return name, 0
	}
	return op, i
}

// ImportCheckpoint loads the checkpoint at prefix (tfcat's or Python's) through
// its .meta, as import_meta_graph + restore do.
func ImportCheckpoint(prefix string, opt ImportOptions) (*Imported, error) {
	meta, err := ReadMetaGraph(prefix)
	if err != nil {
		return nil, err
	}
	sd := meta.SaverDef
	if sd == nil || sd.RestoreOpName == "" || sd.FilenameTensorName == "" {
		return nil, fmt.Errorf("%s: the .meta has no SaverDef; tfcat needs one to restore", prefix+MetaSuffix)
	}
	restoreOp := sd.RestoreOpName
	fileOp, fileIdx := splitTensorName(sd.FilenameTensorName)
	roots := []string{restoreOp, PredictionName, InputName}
	if !opt.Trust {
		if err := CheckGraph(meta.GraphDef, roots, prefix+MetaSuffix); err != nil {
			return nil, err
		}
	}
	gdBytes, err := proto.Marshal(meta.GraphDef)
	if err != nil {
		return nil, err
	}
	g := tf.NewGraph()
	if err := g.Import(gdBytes, ""); err != nil {
		return nil, fmt.Errorf("%s: importing the graph: %w", prefix+MetaSuffix, err)
	}
	im := &Imported{Prefix: prefix, Meta: InfoFromMeta(meta), graph: g}
	op := func(name string) (*tf.Operation, error) {
		o := g.Operation(name)
		if o == nil {
			return nil, fmt.Errorf("%s: the graph has no %q", prefix+MetaSuffix, name)
		}
		return o, nil
	}
	xo, err := op(InputName)
	if err != nil {
		return nil, err
	}
	po, err := op(PredictionName)
	if err != nil {
		return nil, err
	}
	ro, err := op(restoreOp)
	if err != nil {
		return nil, err
	}
	fo, err := op(fileOp)
	if err != nil {
		return nil, err
	}
	im.x, im.pred = xo.Output(0), po.Output(0)
	if lo := g.Operation(LabelsName); lo != nil {
		im.labels = lo.Output(0)
	}
	shape, err := im.x.Shape().ToSlice()
	if err != nil || len(shape) != 4 || shape[1] <= 0 || shape[2] <= 0 || shape[3] <= 0 {
		return nil, fmt.Errorf("%s: input x has shape %v; want [batch, height, width, channels]", prefix+MetaSuffix, im.x.Shape())
	}
	im.h, im.w, im.c = int(shape[1]), int(shape[2]), int(shape[3])
	if ps, err := im.pred.Shape().ToSlice(); err == nil && len(ps) == 2 && ps[1] > 0 {
		im.n = int(ps[1])
	} else if s := im.pred.Shape(); s.NumDimensions() == 2 && s.Size(1) > 0 {
		im.n = int(s.Size(1))
	} else {
		return nil, fmt.Errorf("%s: y_pred has shape %v; want [batch, classes]", prefix+MetaSuffix, im.pred.Shape())
	}

	opts, err := opt.Session.Options()
	if err != nil {
		return nil, err
	}
	if im.sess, err = tf.NewSession(g, opts); err != nil {
		return nil, fmt.Errorf("opening a session: %w", err)
	}
	t, err := tf.NewTensor(prefix)
	if err != nil {
		im.Close()
		return nil, err
	}
	defer tfc.Free(t)
	if _, err := im.sess.Run(map[tf.Output]*tf.Tensor{fo.Output(fileIdx): t}, nil, []*tf.Operation{ro}); err != nil {
		im.Close()
		return nil, fmt.Errorf("%s: restoring variables: %w", prefix, err)
	}
	return im, nil
}

// InputSize is the image height, width and channels of the imported model.
func (im *Imported) InputSize() (int, int, int) { return im.h, im.w, im.c }

// NumClasses is the width of y_pred.
func (im *Imported) NumClasses() int { return im.n }

// Predict feeds x:0 (and zeros to y_true:0, as predict.py does) and returns
// y_pred:0 for the n images in x.
func (im *Imported) Predict(x []float32, n int) ([]float32, error) {
	size := im.h * im.w * im.c
	if n <= 0 || len(x) < n*size {
		return nil, fmt.Errorf("predict: %d images need %d values, have %d", n, n*size, len(x))
	}
	xt, err := tfc.NewFloat32(int64(n), int64(im.h), int64(im.w), int64(im.c))
	if err != nil {
		return nil, err
	}
	defer tfc.Free(xt)
	xs, _ := tfc.Float32s(xt)
	copy(xs, x[:n*size])
	feeds := map[tf.Output]*tf.Tensor{im.x: xt}
	if im.labels.Op != nil {
		yt, err := tfc.NewFloat32(int64(n), int64(im.n))
		if err != nil {
			return nil, err
		}
		defer tfc.Free(yt)
		feeds[im.labels] = yt
	}
	return predictRun(im.sess, feeds, im.pred)
}

// Variables reads every variable of the imported graph by name.
func (im *Imported) Variables() (map[string][]float32, error) {
	return ReadVariables(im.sess, im.graph)
}

// ReadVariables reads every variable of g in sess by op name: reference
// variables (VariableV2) directly, resource variables (VarHandleOp) through a
// ReadVariableOp of theirs.
func ReadVariables(sess *tf.Session, g *tf.Graph) (map[string][]float32, error) {
	var names []string
	var fetches []tf.Output
	for _, o := range g.Operations() {
		switch o.Type() {
		case opVariableV2:
			names = append(names, o.Name())
			fetches = append(fetches, o.Output(0))
		case "VarHandleOp":
			for _, c := range o.Output(0).Consumers() {
				if c.Op.Type() == "ReadVariableOp" {
					names = append(names, o.Name())
					fetches = append(fetches, c.Op.Output(0))
					break
				}
			}
		}
	}
	return fetchFloat32s(sess, names, fetches)
}

// fetchFloat32s runs fetches and copies each float32 result out under its name,
// freeing the tensors.
func fetchFloat32s(sess *tf.Session, names []string, fetches []tf.Output) (map[string][]float32, error) {
	vals := make(map[string][]float32, len(names))
	if len(fetches) == 0 {
		return vals, nil
	}
	out, err := sess.Run(nil, fetches, nil)
	if err != nil {
		return nil, fmt.Errorf("reading variables: %w", err)
	}
	defer tfc.FreeAll(out)
	for i, n := range names {
		f, err := tfc.Float32s(out[i])
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", n, err)
		}
		vals[n] = append([]float32(nil), f...)
	}
	return vals, nil
}

// Close releases the session.
func (im *Imported) Close() error {
	if im.sess == nil {
		return nil
	}
	err := im.sess.Close()
	im.sess = nil
	return err
}

// NetworkFromGraph infers the tutorial-style network of a graph from its
// variables Variable, Variable_1, ... (weights then bias, layer by layer) and
// its input placeholder x. Hyper-parameters are the tutorial's.
func NetworkFromGraph(gd *graphpb.GraphDef) (Network, error) {
	shapes := map[int][]int64{}
	var inShape []int64
	for _, n := range gd.Node {
		if n.Name == InputName && n.Op == "Placeholder" {
			for _, d := range n.Attr["shape"].GetShape().GetDim() {
				inShape = append(inShape, d.Size)
			}
		}
		if n.Op != opVariableV2 && n.Op != "VarHandleOp" {
			continue
		}
		idx := -1
		if n.Name == "Variable" {
			idx = 0
		} else if rest, ok := strings.CutPrefix(n.Name, "Variable_"); ok {
			if i, err := strconv.Atoi(rest); err == nil && i > 0 {
				idx = i
			}
		}
		if idx < 0 {
			continue
		}
		var dims []int64
		for _, d := range n.Attr["shape"].GetShape().GetDim() {
			dims = append(dims, d.Size)
		}
		shapes[idx] = dims
	}
	if len(inShape) != 4 {
		return Network{}, fmt.Errorf("no input placeholder %q of rank 4", InputName)
	}
	idx := make([]int, 0, len(shapes))
	for i := range shapes {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for i, v := range idx {
		if i != v {
			return Network{}, fmt.Errorf("variables are not numbered Variable, Variable_1, ... (missing Variable_%d)", i)
		}
	}
	if len(idx) < 6 || len(idx)%2 != 0 {
		return Network{}, fmt.Errorf("%d variables: not the tutorial's layout of weight and bias pairs", len(idx))
	}
	net := Tutorial(2).WithInput(int(inShape[1]), int(inShape[2]), int(inShape[3]))
	net.Conv = nil
	nconv := len(idx)/2 - 2
	for l := range nconv {
		w := shapes[2*l]
		if len(w) != 4 || w[0] != w[1] {
			return Network{}, fmt.Errorf("Variable_%d has shape %v; want a square conv filter", 2*l, w)
		}
		net.Conv = append(net.Conv, ConvLayer{Size: int(w[0]), Filters: int(w[3])})
	}
	fc1, fc2 := shapes[2*nconv], shapes[2*nconv+2]
	if len(fc1) != 2 || len(fc2) != 2 {
		return Network{}, fmt.Errorf("fully connected weights have shapes %v and %v; want matrices", fc1, fc2)
	}
	net.FC, net.Classes = int(fc1[1]), int(fc2[1])
	if err := net.Validate(); err != nil {
		return Network{}, err
	}
	got := net.VariableShapes()
	for i, s := range got {
		if fmt.Sprint(s) != fmt.Sprint(shapes[i]) {
			return Network{}, fmt.Errorf("Variable_%d has shape %v; the inferred network needs %v", i, shapes[i], s)
		}
	}
	return net, nil
}

// stepFromBeta1Power recovers the step count from Adam's beta1 accumulator,
// which is β₁^(t+1) after t steps: Python's tutorial saves no global step.
func stepFromBeta1Power(b1p float32, beta1 float64) int {
	if b1p <= 0 || b1p >= 1 || beta1 <= 0 || beta1 >= 1 {
		return 0
	}
	return max(int(math.Round(math.Log(float64(b1p))/math.Log(beta1)))-1, 0)
}

// Resume opens a training session on the checkpoint at prefix, written by tfcat
// or by the Python tutorial: the network comes from tfcat's record in the .meta
// or is inferred from the variables, every variable (Adam's slots and beta
// powers included) is restored, and the step count is tfcat's record or, for
// Python's checkpoints, recovered from beta1_power.
func Resume(prefix string, c SessionConfig, lr float64) (*Session, MetaInfo, error) {
	meta, err := ReadMetaGraph(prefix)
	if err != nil {
		return nil, MetaInfo{}, err
	}
	mi := InfoFromMeta(meta)
	var net Network
	if mi.Network != nil {
		net = *mi.Network
	} else if net, err = NetworkFromGraph(meta.GraphDef); err != nil {
		return nil, mi, fmt.Errorf("%s: %w", prefix+MetaSuffix, err)
	}
	if lr > 0 {
		net.LearningRate = lr
	}
	m, err := Build(net, BuildOptions{})
	if err != nil {
		return nil, mi, err
	}
	s, err := NewSession(m, c)
	if err != nil {
		return nil, mi, err
	}
	if err := s.RestoreVariables(prefix); err != nil {
		s.Close()
		return nil, mi, err
	}
	if !mi.Tfcat {
		b, err := s.VariableValues(Beta1PowerName)
		if err != nil {
			s.Close()
			return nil, mi, err
		}
		mi.Step = stepFromBeta1Power(b[Beta1PowerName][0], net.Beta1)
	}
	return s, mi, nil
}
