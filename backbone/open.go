package backbone

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// Options change how Open reads a feature extractor.
type Options struct {
	// Output is the feature output: a key of the serving signature's
	// outputs, or a tensor name of the graph ("Relu_3:0"). Empty picks the
	// signature's only output.
	Output string
	// Size is the image side to use when the backbone takes any size; when
	// its size is fixed, a non-zero Size must equal it.
	Size int
	// Trust skips the op-type check (checkpoint.CheckGraph).
	Trust bool
}

// Error is Open's refusal: the SavedModel Dir cannot serve as a backbone,
// for the reason Err gives.
type Error struct {
	Dir string
	Err error
}

// Error names the SavedModel and what is wrong with it, on one line.
func (e *Error) Error() string {
	return fmt.Sprintf("backbone %s: %v", e.Dir, e.Err)
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// Open reads the SavedModel in dir as an image feature extractor for
// transfer learning: its serving signature's image input (float32, rank 4,
// 1 or 3 channels) and a feature output of shape [batch, features]. It
// checks the graph's ops (unless opt.Trust) and returns the nodes and
// functions the features and the restoring of its weights need.
func Open(dir string, opt Options) (*Backbone, error) {
	fail := func(format string, args ...any) (*Backbone, error) {
		return nil, &Error{Dir: dir, Err: fmt.Errorf(format, args...)}
	}
	if !checkpoint.IsSavedModel(dir) {
		return fail("not a SavedModel (no %s)", checkpoint.SavedModelFile)
	}
	sm, err := checkpoint.ReadSavedModel(dir)
	if err != nil {
		return nil, &Error{Dir: dir, Err: err}
	}
	meta, err := checkpoint.ServeGraph(dir, sm)
	if err != nil {
		return fail("no MetaGraph tagged %q", checkpoint.ServeTag)
	}
	sig := meta.SignatureDef[checkpoint.ServingSignatureKey]
	if sig == nil {
		return fail("no serving signature %q", checkpoint.ServingSignatureKey)
	}
	if meta.GraphDef == nil {
		return fail("the MetaGraph holds no graph")
	}
	if len(sig.Inputs) != 1 {
		return fail("signature %s has %d inputs; a backbone takes one image batch", checkpoint.ServingSignatureKey, len(sig.Inputs))
	}
	var inKey string
	var in *corepb.TensorInfo
	for k, ti := range sig.Inputs {
		inKey, in = k, ti
	}
	d := checkpoint.TensorInfoDims(in)
	switch {
	case in.Dtype != typespb.DataType_DT_FLOAT:
		return fail("input %s is %v; tfcat feeds float32 images", inKey, in.Dtype)
	case len(d) != 4:
		return fail("input %s has shape %v; an image batch is [batch, height, width, channels]", inKey, d)
	case d[3] != 1 && d[3] != 3:
		return fail("input %s has %d channels; tfcat's images have 1 or 3", inKey, d[3])
	case d[1] != d[2]:
		return fail("input %s is %dx%d; tfcat's images are square", inKey, d[1], d[2])
	}
	size := int(d[1])
	switch {
	case size > 0 && opt.Size > 0 && opt.Size != size:
		return fail("input %s takes %dx%d images, not the %dx%d asked for", inKey, size, size, opt.Size, opt.Size)
	case size <= 0 && opt.Size <= 0:
		return fail("input %s takes images of any size; give the size to resize to (224 for most ImageNet backbones)", inKey)
	case size <= 0:
		size = opt.Size
	}
	if size < 8 {
		return fail("input %s at %dx%d: too small for a feature extractor", inKey, size, size)
	}

	outName, outShape, err := output(sig, opt.Output)
	if err != nil {
		return nil, &Error{Dir: dir, Err: err}
	}
	bb := &Backbone{Input: in.GetName(), Output: outName, Height: size, Width: size, Channels: int(d[3]),
		ByTfcat: network.InfoFromMeta(meta).Network != nil}
	roots := []string{checkpoint.NodeName(outName)}
	if !opt.Trust {
		if err := checkpoint.CheckGraph(meta.GraphDef, roots, filepath.Join(dir, checkpoint.SavedModelFile)); err != nil {
			return nil, err
		}
	}
	if bb.Graph, err = checkpoint.PruneGraph(meta.GraphDef, roots); err != nil {
		return nil, &Error{Dir: dir, Err: err}
	}
	if bb.Keys, err = variableKeys(bb.Graph, meta.GetObjectGraphDef()); err != nil {
		return nil, &Error{Dir: dir, Err: err}
	}
	bb.Vars = baseVariables(bb.Keys, meta.GetObjectGraphDef())
	if len(bb.Keys) > 0 {
		bb.Variables = filepath.Join(dir, checkpoint.SavedModelVariablesDir, checkpoint.SavedModelVariablesName)
		if err := checkpoint.CheckIndex(bb.Variables); err != nil {
			return nil, &Error{Dir: dir, Err: err}
		}
	}
	// The graph's own shape inference, where the signature says nothing.
	if len(outShape) != 2 {
		if outShape, err = inferShape(bb); err != nil {
			return nil, &Error{Dir: dir, Err: err}
		}
	}
	if len(outShape) != 2 || outShape[1] <= 0 {
		return fail("output %s has shape %v; features are [batch, features]", opt.Output, outShape)
	}
	bb.Features = int(outShape[1])
	return bb, nil
}

// output resolves the feature output: a signature key, a graph tensor
// name, or the signature's only output.
func output(sig *corepb.SignatureDef, want string) (string, []int64, error) {
	keys := make([]string, 0, len(sig.Outputs))
	for k := range sig.Outputs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pick := func(k string) (string, []int64, error) {
		ti := sig.Outputs[k]
		if ti.Dtype != typespb.DataType_DT_FLOAT {
			return "", nil, fmt.Errorf("output %s is %v; features are float32", k, ti.Dtype)
		}
		d := checkpoint.TensorInfoDims(ti)
		if d != nil && (len(d) != 2 || d[1] <= 0) {
			return "", nil, fmt.Errorf("output %s has shape %v; features are [batch, features]", k, d)
		}
		return ti.GetName(), d, nil
	}
	switch {
	case want == "" && len(keys) == 1:
		return pick(keys[0])
	case want == "":
		return "", nil, fmt.Errorf("signature %s has outputs %s; choose the features with the output option", checkpoint.ServingSignatureKey, strings.Join(keys, ", "))
	case sig.Outputs[want] != nil:
		return pick(want)
	case strings.Contains(want, ":"):
		return want, nil, nil
	}
	return "", nil, fmt.Errorf("signature %s has no output %q (outputs: %s)", checkpoint.ServingSignatureKey, want, strings.Join(keys, ", "))
}

// inferShape imports bb's graph alone and returns its output's shape as
// TensorFlow infers it.
func inferShape(bb *Backbone) ([]int64, error) {
	def, err := proto.Marshal(bb.Graph)
	if err != nil {
		return nil, err
	}
	g := tf.NewGraph()
	if err := g.Import(def, ""); err != nil {
		return nil, fmt.Errorf("importing the graph: %w", err)
	}
	name, idx, err := checkpoint.ParseTensorName(bb.Output)
	if err != nil {
		return nil, err
	}
	o := g.Operation(name)
	if o == nil || idx < 0 || idx >= o.NumOutputs() {
		return nil, fmt.Errorf("the graph has no tensor %q", bb.Output)
	}
	if o.Output(idx).DataType() != tf.Float {
		return nil, fmt.Errorf("output %s is not float32", bb.Output)
	}
	s := o.Output(idx).Shape()
	if s.NumDimensions() < 0 {
		return nil, errors.New("the feature output's shape is unknown")
	}
	d, _ := s.ToSlice()
	return d, nil
}
