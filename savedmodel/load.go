package savedmodel

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/tfgraph"
)

// LoadOptions change how LoadWithOptions opens a SavedModel.
type LoadOptions struct {
	Session tfgraph.SessionConfig
	// Trust skips the op-type check of the graph (tfgraph.CheckGraph): only for
	// SavedModels from a trusted source.
	Trust bool
}

// Model is a SavedModel loaded for prediction through TensorFlow's SavedModel
// loader: the "serve" MetaGraph, its variables restored, the serving_default
// signature's image input and probabilities output found by name. It
// implements tfgraph.Classifier and is safe for concurrent use.
type Model struct {
	Dir  string
	Info *Info

	sm      *tf.SavedModel
	x, prob tf.Output
	h, w, c int
	k       int
}

var _ tfgraph.Classifier = (*Model)(nil)

// Load opens the SavedModel in dir, refusing graphs with ops beyond what
// restoring and predicting need (see LoadWithOptions to trust one).
func Load(dir string, cfg tfgraph.SessionConfig) (*Model, error) {
	return LoadWithOptions(dir, LoadOptions{Session: cfg})
}

// LoadWithOptions opens the SavedModel in dir.
func LoadWithOptions(dir string, opt LoadOptions) (*Model, error) {
	meta, err := readServeGraph(dir)
	if err != nil {
		return nil, err
	}
	sig := meta.SignatureDef[SignatureKey]
	if sig == nil {
		return nil, fmt.Errorf("%s: no signature %q", dir, SignatureKey)
	}
	inInfo, inKey, err := pickInput(sig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	outInfo, outKey, err := pickProbabilities(sig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if inInfo.Dtype != typespb.DataType_DT_FLOAT || outInfo.Dtype != typespb.DataType_DT_FLOAT {
		return nil, fmt.Errorf("%s: signature %s maps %s %v to %s %v; tfcat needs float32 images and probabilities",
			dir, SignatureKey, inKey, inInfo.Dtype, outKey, outInfo.Dtype)
	}
	if !opt.Trust {
		if meta.GraphDef == nil {
			return nil, fmt.Errorf("%s: the MetaGraph holds no graph", dir)
		}
		if err := tfgraph.CheckGraph(meta.GraphDef, loaderRoots(meta, sig), filepath.Join(dir, ModelFile)); err != nil {
			return nil, err
		}
	}
	info, err := describe(dir, meta)
	if err != nil {
		return nil, err
	}

	opts, err := opt.Session.Options()
	if err != nil {
		return nil, err
	}
	loaded, err := tf.LoadSavedModel(dir, []string{Tag}, opts)
	if err != nil {
		return nil, fmt.Errorf("loading the SavedModel %s: %w", dir, err)
	}
	m := &Model{Dir: dir, Info: info, sm: loaded}
	fail := func(err error) (*Model, error) {
		m.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	s, ok := loaded.Signatures[SignatureKey]
	if !ok {
		return fail(fmt.Errorf("the loader reports no signature %q", SignatureKey))
	}
	if m.x, err = m.output(s.Inputs[inKey].Name); err != nil {
		return fail(err)
	}
	if m.prob, err = m.output(s.Outputs[outKey].Name); err != nil {
		return fail(err)
	}
	d := dims(inInfo)
	if len(d) != 4 {
		d, _ = m.x.Shape().ToSlice()
	}
	if len(d) != 4 || d[1] <= 0 || d[2] <= 0 || d[3] <= 0 {
		return fail(fmt.Errorf("input %s has shape %v; tfcat needs [batch, height, width, channels]", inKey, d))
	}
	m.h, m.w, m.c = int(d[1]), int(d[2]), int(d[3])
	d = dims(outInfo)
	if len(d) != 2 || d[1] <= 0 {
		d, _ = m.prob.Shape().ToSlice()
	}
	if len(d) != 2 || d[1] <= 0 {
		return fail(fmt.Errorf("output %s has shape %v; tfcat needs [batch, classes]", outKey, d))
	}
	m.k = int(d[1])
	if info.Classes != nil && len(info.Classes) != m.k {
		return fail(fmt.Errorf("%d class names for %d classes", len(info.Classes), m.k))
	}
	info.Height, info.Width, info.Channels, info.NumClasses = m.h, m.w, m.c, m.k
	return m, nil
}

// loaderRoots are the nodes TensorFlow's loader and a prediction run: the
// restore op, the init ops, the asset tensors and the signature's tensors.
func loaderRoots(meta *corepb.MetaGraphDef, sig *corepb.SignatureDef) []string {
	var roots []string
	add := func(tensor string) {
		if tensor != "" {
			roots = append(roots, inputNode(tensor))
		}
	}
	if sd := meta.SaverDef; sd != nil {
		add(sd.RestoreOpName)
		add(sd.FilenameTensorName)
	}
	for _, key := range []string{"saved_model_main_op", "legacy_init_op"} {
		for _, n := range meta.CollectionDef[key].GetNodeList().GetValue() {
			add(n)
		}
	}
	if init := meta.SignatureDef["__saved_model_init_op"]; init != nil {
		for _, ti := range init.Outputs {
			add(ti.GetName())
		}
	}
	for _, a := range meta.AssetFileDef {
		add(a.GetTensorInfo().GetName())
	}
	for _, ti := range sig.Inputs {
		add(ti.GetName())
	}
	for _, ti := range sig.Outputs {
		add(ti.GetName())
	}
	return roots
}

// output resolves a tensor name such as "y_pred:0" in the loaded graph.
func (m *Model) output(name string) (tf.Output, error) {
	op, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return tf.Output{}, fmt.Errorf("bad tensor name %q", name)
		}
		op, idx = name[:i], n
	}
	o := m.sm.Graph.Operation(op)
	if o == nil {
		return tf.Output{}, fmt.Errorf("the graph has no tensor %q", name)
	}
	if idx < 0 || idx >= o.NumOutputs() {
		return tf.Output{}, fmt.Errorf("the graph has no tensor %q", name)
	}
	return o.Output(idx), nil
}

// InputSize is the image height, width and channels the model takes.
func (m *Model) InputSize() (int, int, int) { return m.h, m.w, m.c }

// NumClasses is the width of the probabilities.
func (m *Model) NumClasses() int { return m.k }

// Classes are the class names the SavedModel carries, in label order, or nil
// when it carries none.
func (m *Model) Classes() []string { return m.Info.Classes }

// Predict feeds the n images in x (NHWC, preprocessed) to the signature's
// input and returns n rows of probabilities.
func (m *Model) Predict(x []float32, n int) ([]float32, error) {
	if m.sm == nil {
		return nil, errors.New("predict: the model is closed")
	}
	size := m.h * m.w * m.c
	if n <= 0 || len(x) < n*size {
		return nil, fmt.Errorf("predict: %d images need %d values, have %d", n, n*size, len(x))
	}
	xt, err := tfc.NewFloat32(int64(n), int64(m.h), int64(m.w), int64(m.c))
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	defer tfc.Free(xt)
	xs, err := tfc.Float32s(xt)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	copy(xs, x[:n*size])
	out, err := m.sm.Session.Run(map[tf.Output]*tf.Tensor{m.x: xt}, []tf.Output{m.prob}, nil)
	if err != nil {
		return nil, fmt.Errorf("predicting: %w", err)
	}
	defer tfc.FreeAll(out)
	p, err := tfc.Float32s(out[0])
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(p) != n*m.k {
		return nil, fmt.Errorf("predict: the model returned %d values for %d images of %d classes", len(p), n, m.k)
	}
	return append([]float32(nil), p...), nil
}

// Variables reads every variable of the graph (reference or resource) by name.
func (m *Model) Variables() (map[string][]float32, error) {
	if m.sm == nil {
		return nil, errors.New("variables: the model is closed")
	}
	return tfgraph.ReadVariables(m.sm.Session, m.sm.Graph)
}

// Close releases the session. Predict fails afterwards.
func (m *Model) Close() error {
	if m == nil || m.sm == nil {
		return nil
	}
	err := m.sm.Session.Close()
	m.sm = nil
	return err
}
