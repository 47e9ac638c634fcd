package savedmodel

import (
	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/atomicfile"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfsession"

	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/tfgraph"
)

// ExportOptions change what Export writes.
type ExportOptions struct {
	// Classes names the classes in label order. It overrides the names the
	// checkpoint records; the Python tutorial's checkpoints record none, and
	// without names the classes are called "0", "1", ...
	Classes []string
	// Force replaces an existing, non-empty SavedModel folder. Export never
	// replaces a folder that does not hold a saved_model.pb.
	Force bool
	// Session configures the session that restores and re-saves the weights.
	Session tfsession.SessionConfig
}

// ErrExists is returned (wrapped) when the output folder exists, is not empty
// and ExportOptions.Force is not set.
var ErrExists = errors.New("the output folder exists and is not empty")

// ExistsError is Export's refusal to replace the SavedModel in Dir without
// ExportOptions.Force; it matches ErrExists.
type ExistsError struct{ Dir string }

func (e *ExistsError) Error() string        { return ErrExists.Error() }
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// Export writes the checkpoint at src (a prefix, or a folder with a
// "checkpoint" state file; tfcat's or the Python tutorial's) as a SavedModel in
// outDir. The network comes from tfcat's record in the .meta, or is inferred
// from the variables of a Python checkpoint. The graph is built anew for
// inference, the weights restored into it and saved again with SaveV2.
//
// The export is atomic: it is written to a temporary folder beside outDir,
// loaded back and checked against the checkpoint's predictions, and only then
// renamed to outDir. A failed export leaves nothing behind.
func Export(src, outDir string, opt ExportOptions) (*Info, error) {
	if outDir == "" {
		return nil, errors.New("export: no output folder")
	}
	if err := checkTarget(outDir, opt.Force); err != nil {
		return nil, err
	}
	prefix, err := checkpoint.Resolve(src)
	if err != nil {
		return nil, err
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return nil, fmt.Errorf("export needs the checkpoint's .meta to know the network: %w", err)
	}
	mi := network.InfoFromMeta(meta)
	var net network.Network
	if mi.Network != nil {
		net = *mi.Network
	} else if net, err = network.NetworkFromGraph(meta.GraphDef); err != nil {
		return nil, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
	}
	classes, err := classNames(opt.Classes, mi.Classes, net.Classes)
	if err != nil {
		return nil, err
	}

	bopt := tfgraph.BuildOptions{InferenceOnly: true}
	if net.Base != nil {
		// The backbone travels in the checkpoint's graph.
		if bopt.Base, err = backbone.FromGraph(meta.GraphDef, net.Base); err != nil {
			return nil, fmt.Errorf("%s: %w", prefix+checkpoint.MetaSuffix, err)
		}
	}
	m, err := tfgraph.Build(net, bopt)
	if err != nil {
		return nil, err
	}
	if err := addServingNodes(m); err != nil {
		return nil, err
	}
	sess, err := tfsession.NewSession(m, opt.Session)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := sess.RestoreVariables(prefix); err != nil {
		return nil, err
	}
	model, err := modelProto(m, network.Info{Classes: classes, Step: mi.Step})
	if err != nil {
		return nil, err
	}

	parent := filepath.Dir(filepath.Clean(outDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("export: creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(outDir))+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := writeExport(sess, model, classes, tmp); err != nil {
		return nil, err
	}
	if err := verifyExport(sess, tmp, opt.Session); err != nil {
		return nil, err
	}
	if err := publish(tmp, outDir, opt.Force); err != nil {
		return nil, err
	}
	published = true
	return Inspect(outDir)
}

// classNames picks the names to export: the caller's, the checkpoint's, or
// numbers. Each name becomes one line of the asset file.
func classNames(given, recorded []string, n int) ([]string, error) {
	names := given
	if len(names) == 0 {
		names = recorded
		if len(names) != n {
			names = network.NumberedClasses(n)
		}
	}
	if len(names) != n {
		return nil, fmt.Errorf("export: %d class names given, but the model has %d classes", len(names), n)
	}
	for i, c := range names {
		if strings.TrimSpace(c) == "" || strings.ContainsAny(c, "\r\n") {
			return nil, fmt.Errorf("export: class name %d (%q) must be non-blank and on one line", i, c)
		}
	}
	return names, nil
}

// addServingNodes adds the argmax output y_pred_cls (int64) and the string
// Const that stands for the class-names asset.
func addServingNodes(m *tfgraph.Model) error {
	g := m.Graph
	constant := func(name string, value any) (tf.Output, error) {
		t, err := tf.NewTensor(value)
		if err != nil {
			return tf.Output{}, err
		}
		o, err := g.AddOperation(tf.OpSpec{Type: "Const", Name: name, Attrs: map[string]any{"dtype": t.DataType(), "value": t}})
		if err != nil {
			return tf.Output{}, err
		}
		return o.Output(0), nil
	}
	dim, err := constant(ClassesOpName+"/dimension", int32(1))
	if err != nil {
		return fmt.Errorf("export: adding %s: %w", ClassesOpName, err)
	}
	if _, err := g.AddOperation(tf.OpSpec{Type: "ArgMax", Name: ClassesOpName,
		Input: []tf.Input{m.Pred, dim}, Attrs: map[string]any{"output_type": tf.Int64}}); err != nil {
		return fmt.Errorf("export: adding %s: %w", ClassesOpName, err)
	}
	if _, err := constant(classNamesAssetOp, ClassNamesAsset); err != nil {
		return fmt.Errorf("export: adding the class-names asset: %w", err)
	}
	return nil
}

// modelProto is the SavedModel: tfcat's MetaGraphDef for the checkpoint,
// pruned to what serving and restoring need, tagged, with the signature and
// the asset.
func modelProto(m *tfgraph.Model, info network.Info) (*corepb.SavedModel, error) {
	meta, err := m.MetaGraphDef(info)
	if err != nil {
		return nil, err
	}
	sd := meta.SaverDef
	fileOp, saveOp := checkpoint.NodeName(sd.FilenameTensorName), checkpoint.NodeName(sd.SaveTensorName)
	meta.GraphDef = pruneGraph(meta.GraphDef, []string{
		network.InputName, network.PredictionName, ClassesOpName, classNamesAssetOp,
		network.InitOpName, sd.RestoreOpName, saveOp, fileOp,
	})
	if err := checkCollections(meta); err != nil {
		return nil, err
	}
	if err := toResourceVariables(meta); err != nil {
		return nil, err
	}
	if meta.MetaInfoDef.StrippedOpList, err = tfgraph.StrippedOpList(meta.GraphDef); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	meta.MetaInfoDef.Tags = []string{Tag}
	net := m.Net
	meta.SignatureDef = map[string]*corepb.SignatureDef{
		SignatureKey: ServingSignature(net.Height, net.Width, net.Channels, net.Classes),
	}
	assetTensor := checkpoint.TensorName(classNamesAssetOp, 0)
	meta.AssetFileDef = []*corepb.AssetFileDef{{
		TensorInfo: &corepb.TensorInfo{Encoding: &corepb.TensorInfo_Name{Name: assetTensor},
			Dtype: typespb.DataType_DT_STRING, TensorShape: &shapepb.TensorShapeProto{}},
		Filename: ClassNamesAsset,
	}}
	meta.CollectionDef[assetFilepathsCollection] = &corepb.CollectionDef{Kind: &corepb.CollectionDef_NodeList_{
		NodeList: &corepb.CollectionDef_NodeList{Value: []string{assetTensor}}}}
	return &corepb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*corepb.MetaGraphDef{meta}}, nil
}

// pruneGraph keeps the nodes roots depend on (through data and control
// inputs), in their order.
func pruneGraph(gd *graphpb.GraphDef, roots []string) *graphpb.GraphDef {
	byName := make(map[string]*nodepb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		byName[n.Name] = n
	}
	keep := map[string]bool{}
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := byName[name]
		if keep[name] || n == nil {
			continue
		}
		keep[name] = true
		for _, in := range n.Input {
			stack = append(stack, checkpoint.NodeName(in))
		}
	}
	out := proto.Clone(gd).(*graphpb.GraphDef)
	out.Node = slices.DeleteFunc(out.Node, func(n *nodepb.NodeDef) bool { return !keep[n.Name] })
	return out
}

// checkCollections makes sure every variable the collections name survived
// the pruning: Python rebuilds its Variable objects from them.
func checkCollections(meta *corepb.MetaGraphDef) error {
	nodes := map[string]bool{}
	for _, n := range meta.GraphDef.Node {
		nodes[n.Name] = true
	}
	for _, key := range []string{"variables", "trainable_variables"} {
		for _, b := range meta.CollectionDef[key].GetBytesList().GetValue() {
			name := checkpoint.VariableDefName(b)
			if name == "" || !nodes[checkpoint.NodeName(name)] {
				return fmt.Errorf("export: collection %s names %q, which the inference graph lacks", key, name)
			}
		}
	}
	return nil
}

// writeExport writes the SavedModel's files into dir and syncs them.
func writeExport(sess *tfsession.Session, model *corepb.SavedModel, classes []string, dir string) error {
	vars := filepath.Join(dir, VariablesDir)
	assets := filepath.Join(dir, AssetsDir)
	for _, d := range []string{vars, assets} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := sess.SaveVariables(filepath.Join(vars, VariablesName)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(model)
	if err != nil {
		return fmt.Errorf("export: encoding %s: %w", ModelFile, err)
	}
	files := map[string][]byte{
		filepath.Join(dir, ModelFile):          b,
		filepath.Join(assets, ClassNamesAsset): []byte(strings.Join(classes, "\n") + "\n"),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := atomicfile.SyncTree(dir); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// verifyExport loads the written SavedModel as a server would and checks that
// it predicts what the session that wrote it predicts.
func verifyExport(sess *tfsession.Session, dir string, cfg tfsession.SessionConfig) error {
	loaded, err := Load(dir, cfg)
	if err != nil {
		return fmt.Errorf("export: the written SavedModel does not load: %w", err)
	}
	defer loaded.Close()
	h, w, c := sess.InputSize()
	const n = 2
	x := make([]float32, n*h*w*c)
	// A fixed, image-like probe: a smooth pattern in [0, 1], and a blank image.
	for i := range h * w * c {
		x[i] = float32(0.5 + 0.5*math.Sin(float64(i)*0.001))
	}
	want, err := sess.Predict(x, n)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	got, err := loaded.Predict(x, n)
	if err != nil {
		return fmt.Errorf("export: the written SavedModel does not predict: %w", err)
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-6) {
			return fmt.Errorf("export: the written SavedModel predicts %g where the checkpoint predicts %g", got[i], want[i])
		}
	}
	return nil
}

// checkTarget refuses an output folder that Export must not replace.
func checkTarget(outDir string, force bool) error {
	fi, err := os.Lstat(outDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("export: %s exists and is not a folder", outDir)
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if !IsSavedModel(outDir) {
		return fmt.Errorf("export: %s: %w, and holds no %s; refusing to replace it", outDir, ErrExists, ModelFile)
	}
	if !force {
		return fmt.Errorf("export: %s: %w", outDir, &ExistsError{Dir: outDir})
	}
	return nil
}

// publish renames the finished export tmp to outDir, replacing an empty folder
// or, with force, an older SavedModel; the old one is removed only once the new
// one is in place.
func publish(tmp, outDir string, force bool) error {
	if err := checkTarget(outDir, force); err != nil {
		return err
	}
	var old string
	if _, err := os.Lstat(outDir); err == nil {
		if entries, _ := os.ReadDir(outDir); len(entries) == 0 {
			if err := os.Remove(outDir); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		} else {
			old = tmp + ".old"
			if err := os.Rename(outDir, old); err != nil {
				return fmt.Errorf("export: moving the old SavedModel aside: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, outDir); err != nil {
		if old != "" {
			os.Rename(old, outDir)
		}
		return fmt.Errorf("export: %w", err)
	}
	atomicfile.SyncDir(filepath.Dir(filepath.Clean(outDir)))
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}
