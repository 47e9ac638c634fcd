package savedmodel

import (
	"fmt"
	"os"
	"path/filepath"

	tf "github.com/wamuir/graft/tensorflow"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/tfsession"
)

// LoadOptions change how LoadWithOptions opens a SavedModel.
type LoadOptions struct {
	Session tfsession.SessionConfig
	// Trust skips the op-type check of the graph (checkpoint.CheckGraph): only for
	// SavedModels from a trusted source.
	Trust bool
}

// Model is a SavedModel loaded for prediction through TensorFlow's SavedModel
// loader: the "serve" MetaGraph, its variables restored, the serving_default
// signature's image input and probabilities output found by name. It
// implements tfsession.Classifier and is safe for concurrent use.
type Model struct {
	tfsession.Predictor
	Dir  string
	Info *Info

	sm *tf.SavedModel
}

var _ tfsession.Classifier = (*Model)(nil)

// Load opens the SavedModel in dir, refusing graphs with ops beyond what
// restoring and predicting need (see LoadWithOptions to trust one).
func Load(dir string, cfg tfsession.SessionConfig) (*Model, error) {
	return LoadWithOptions(dir, LoadOptions{Session: cfg})
}

// LoadWithOptions opens the SavedModel in dir.
func LoadWithOptions(dir string, opt LoadOptions) (*Model, error) {
	meta, err := checkpoint.ReadServeGraph(dir)
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
		if err := checkpoint.CheckGraph(meta.GraphDef, loaderRoots(meta, sig), filepath.Join(dir, ModelFile)); err != nil {
			return nil, err
		}
	}
	info, err := describe(dir, meta)
	if err != nil {
		return nil, err
	}
	// TensorFlow's loader would read the variables' index unchecked.
	if vars := filepath.Join(dir, VariablesDir, VariablesName); fileExists(vars + checkpoint.IndexSuffix) {
		if err := checkpoint.CheckIndex(vars); err != nil {
			return nil, fmt.Errorf("loading the SavedModel %s: restoring variables: %w", dir, err)
		}
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
	p := &m.Predictor
	p.Session = loaded.Session
	if info.Network != nil {
		p.Resize = info.Network.Resize
	}
	fail := func(err error) (*Model, error) {
		m.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	s, ok := loaded.Signatures[SignatureKey]
	if !ok {
		return fail(fmt.Errorf("the loader reports no signature %q", SignatureKey))
	}
	if p.X, err = m.output(s.Inputs[inKey].Name); err != nil {
		return fail(err)
	}
	if p.Pred, err = m.output(s.Outputs[outKey].Name); err != nil {
		return fail(err)
	}
	d := checkpoint.TensorInfoDims(inInfo)
	if len(d) != 4 {
		d, _ = p.X.Shape().ToSlice()
	}
	if len(d) != 4 || d[1] <= 0 || d[2] <= 0 || d[3] <= 0 {
		return fail(fmt.Errorf("input %s has shape %v; tfcat needs [batch, height, width, channels]", inKey, d))
	}
	p.Height, p.Width, p.Channels = int(d[1]), int(d[2]), int(d[3])
	d = checkpoint.TensorInfoDims(outInfo)
	if len(d) != 2 || d[1] <= 0 {
		d, _ = p.Pred.Shape().ToSlice()
	}
	if len(d) != 2 || d[1] <= 0 {
		return fail(fmt.Errorf("output %s has shape %v; tfcat needs [batch, classes]", outKey, d))
	}
	p.Classes = int(d[1])
	if info.Classes != nil && len(info.Classes) != p.Classes {
		return fail(fmt.Errorf("%d class names for %d classes", len(info.Classes), p.Classes))
	}
	info.Height, info.Width, info.Channels, info.NumClasses = p.Height, p.Width, p.Channels, p.Classes
	return m, nil
}

// loaderRoots are the nodes TensorFlow's loader and a prediction run: the
// restore op, the init ops, the asset tensors and the signature's tensors.
func loaderRoots(meta *corepb.MetaGraphDef, sig *corepb.SignatureDef) []string {
	var roots []string
	add := func(tensor string) {
		if tensor != "" {
			roots = append(roots, checkpoint.NodeName(tensor))
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
	op, idx, err := checkpoint.ParseTensorName(name)
	if err != nil {
		return tf.Output{}, err
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

// Classes are the class names the SavedModel carries, in label order, or nil
// when it carries none.
func (m *Model) Classes() []string { return m.Info.Classes }

// Variables reads every variable of the graph (reference or resource) by name.
func (m *Model) Variables() (map[string][]float32, error) {
	if m.Session == nil {
		return nil, fmt.Errorf("variables: %w", tfsession.ErrClosed)
	}
	return tfsession.ReadVariables(m.sm.Session, m.sm.Graph)
}

// Close releases the session. Predict fails afterwards.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	return m.Predictor.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
