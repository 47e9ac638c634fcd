package tfsession

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/network"
)

// Imported is a checkpoint loaded the way the tutorial's predict.py loads it:
// the .meta's graph imported, its Saver's restore op run with the prefix fed,
// and x:0 fed (with zeros fed to y_true:0, as predict.py does), y_pred:0
// fetched. It is a Classifier.
type Imported struct {
	Predictor
	Prefix string
	Meta   network.MetaInfo
	graph  *tf.Graph
}

// ImportOptions change how ImportCheckpoint treats the graph.
type ImportOptions struct {
	Session SessionConfig
	// Trust skips the op-type check: only for .meta files from a trusted source.
	Trust bool
}

// ImportCheckpoint loads the checkpoint at prefix (tfcat's or Python's) through
// its .meta, as import_meta_graph + restore do.
func ImportCheckpoint(prefix string, opt ImportOptions) (*Imported, error) {
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		return nil, err
	}
	sd := meta.SaverDef
	if sd == nil || sd.RestoreOpName == "" || sd.FilenameTensorName == "" {
		return nil, fmt.Errorf("%s: the .meta has no SaverDef; tfcat needs one to restore", prefix+checkpoint.MetaSuffix)
	}
	restoreOp := sd.RestoreOpName
	fileOp, fileIdx, err := checkpoint.ParseTensorName(sd.FilenameTensorName)
	if err != nil {
		return nil, fmt.Errorf("%s: SaverDef: %w", prefix+checkpoint.MetaSuffix, err)
	}
	roots := []string{restoreOp, network.PredictionName, network.InputName}
	if !opt.Trust {
		if err := checkpoint.CheckGraph(meta.GraphDef, roots, prefix+checkpoint.MetaSuffix); err != nil {
			return nil, err
		}
	}
	gdBytes, err := proto.Marshal(meta.GraphDef)
	if err != nil {
		return nil, err
	}
	g := tf.NewGraph()
	if err := g.Import(gdBytes, ""); err != nil {
		return nil, fmt.Errorf("%s: importing the graph: %w", prefix+checkpoint.MetaSuffix, err)
	}
	im := &Imported{Prefix: prefix, Meta: network.InfoFromMeta(meta), graph: g}
	ops := make([]*tf.Operation, 4)
	for i, name := range []string{network.InputName, network.PredictionName, restoreOp, fileOp} {
		if ops[i] = g.Operation(name); ops[i] == nil {
			return nil, fmt.Errorf("%s: the graph has no %q", prefix+checkpoint.MetaSuffix, name)
		}
	}
	xo, po, ro, fo := ops[0], ops[1], ops[2], ops[3]
	p := &im.Predictor
	p.X, p.Pred = xo.Output(0), po.Output(0)
	if im.Meta.Network != nil {
		p.Resize = im.Meta.Network.Resize
	}
	if lo := g.Operation(network.LabelsName); lo != nil {
		p.Zeros = lo.Output(0)
	}
	shape, err := p.X.Shape().ToSlice()
	if err != nil || len(shape) != 4 || shape[1] <= 0 || shape[2] <= 0 || shape[3] <= 0 {
		return nil, fmt.Errorf("%s: input x has shape %v; want [batch, height, width, channels]", prefix+checkpoint.MetaSuffix, p.X.Shape())
	}
	p.Height, p.Width, p.Channels = int(shape[1]), int(shape[2]), int(shape[3])
	if s := p.Pred.Shape(); s.NumDimensions() == 2 && s.Size(1) > 0 {
		p.Classes = int(s.Size(1))
	} else {
		return nil, fmt.Errorf("%s: y_pred has shape %v; want [batch, classes]", prefix+checkpoint.MetaSuffix, p.Pred.Shape())
	}

	if err := checkpoint.CheckIndex(prefix); err != nil {
		return nil, fmt.Errorf("restoring variables: %w", err)
	}
	opts, err := opt.Session.Options()
	if err != nil {
		return nil, err
	}
	if p.Session, err = tf.NewSession(g, opts); err != nil {
		return nil, fmt.Errorf("opening a session: %w", err)
	}
	t, err := tf.NewTensor(prefix)
	if err != nil {
		im.Close()
		return nil, err
	}
	defer tfc.Free(t)
	if _, err := p.Session.Run(map[tf.Output]*tf.Tensor{fo.Output(fileIdx): t}, nil, []*tf.Operation{ro}); err != nil {
		im.Close()
		return nil, fmt.Errorf("%s: restoring variables: %w", prefix, err)
	}
	return im, nil
}

// Variables reads every variable of the imported graph by name.
func (im *Imported) Variables() (map[string][]float32, error) {
	if im.Session == nil {
		return nil, fmt.Errorf("variables: %w", ErrClosed)
	}
	return ReadVariables(im.Session, im.graph)
}

// ReadVariables reads every variable of g in sess by op name: reference
// variables (VariableV2) directly, resource variables (VarHandleOp) through a
// ReadVariableOp of theirs.
func ReadVariables(sess *tf.Session, g *tf.Graph) (map[string][]float32, error) {
	var names []string
	var fetches []tf.Output
	for _, o := range g.Operations() {
		switch o.Type() {
		case "VariableV2":
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
