package kserve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/serving"
)

// The signature's names (savedmodel's, as the export writes them).
const (
	inputKey         = savedmodel.InputKey
	probabilitiesKey = savedmodel.ProbabilitiesKey
	classesKey       = savedmodel.ClassesKey
)

// The v2 datatypes tfcat reads and writes.
const (
	dtFP32  = "FP32"
	dtINT64 = "INT64"
	dtBYTES = "BYTES"
)

// core is what both front ends share: the models and the server's facts.
type core struct {
	models serving.Models
	opt    Options
}

func newCore(models serving.Models, opt Options) *core {
	return &core{models: models, opt: opt.withDefaults()}
}

// invalid is a malformed request: INVALID_ARGUMENT, HTTP 400.
func invalid(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}

// spec reads a model name and a v2 version string: empty for the latest, a
// version number, or a version label.
func spec(name, version string) (serving.ModelSpec, error) {
	if name == "" {
		return serving.ModelSpec{}, invalid("the request names no model")
	}
	s := serving.ModelSpec{Name: name}
	if version == "" {
		return s, nil
	}
	if version[0] == '-' || version[0] == '+' || (version[0] >= '0' && version[0] <= '9') {
		v, err := strconv.ParseInt(version, 10, 64)
		// 0 (the latest in TensorFlow Serving's ModelSpec), negative
		// numbers, numbers past int64 and leading zeros name no version.
		if err != nil || v <= 0 || strconv.FormatInt(v, 10) != version {
			return s, &serving.NotFoundError{Msg: fmt.Sprintf("Servable not found for request: Specific(%s, %s)", name, version)}
		}
		s.Version = v
		return s, nil
	}
	s.Label = version
	return s, nil
}

// acquire returns the Server answering s, the version it serves and its
// release, and reports the version to ctx's serving.Served (the metrics'
// version label).
func (c *core) acquire(ctx context.Context, s serving.ModelSpec) (*serving.Server, int64, func(), error) {
	srv, v, release, err := c.models.Acquire(s)
	if err != nil {
		var nf *serving.NotFoundError
		if !errors.As(err, &nf) {
			err = acquireError{err}
		}
		return nil, 0, nil, err
	}
	serving.ReportServed(ctx, s.Name, v)
	return srv, v, release, nil
}

// modelReady reports whether s's version can infer, and if not why.
func (c *core) modelReady(ctx context.Context, s serving.ModelSpec) error {
	_, _, release, err := c.acquire(ctx, s)
	if err != nil {
		return err
	}
	release()
	return nil
}

// serverReady reports whether every model has a version to infer with.
func (c *core) serverReady(ctx context.Context) error {
	names := c.models.Names()
	if len(names) == 0 {
		return errors.New("no model is served yet")
	}
	for _, n := range names {
		if err := c.modelReady(ctx, serving.ModelSpec{Name: n}); err != nil {
			return fmt.Errorf("model %s is not ready: %w", n, err)
		}
	}
	return nil
}

// tensorMeta is an input's or output's metadata.
type tensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// modelMeta is a model's metadata.
type modelMeta struct {
	Name     string       `json:"name"`
	Versions []string     `json:"versions"`
	Platform string       `json:"platform"`
	Inputs   []tensorMeta `json:"inputs"`
	Outputs  []tensorMeta `json:"outputs"`
}

// metadata describes s's model: the versions available (only the one
// answering when s names a version or label), and the inputs and outputs of
// the answering version's serving_default signature.
func (c *core) metadata(ctx context.Context, s serving.ModelSpec) (modelMeta, error) {
	srv, version, release, err := c.acquire(ctx, s)
	if err != nil {
		return modelMeta{}, err
	}
	defer release()
	md := modelMeta{Name: s.Name, Platform: Platform}
	if s.Version == 0 && s.Label == "" {
		st, err := c.models.Status(serving.ModelSpec{Name: s.Name})
		if err != nil {
			return modelMeta{}, err
		}
		for _, v := range st {
			if v.State == serving.StateAvailable {
				md.Versions = append(md.Versions, strconv.FormatInt(v.Version, 10))
			}
		}
	}
	if len(md.Versions) == 0 {
		md.Versions = []string{strconv.FormatInt(version, 10)}
	}
	sig := srv.Signature()
	md.Inputs = tensorsMeta(sig.GetInputs(), inputKey)
	md.Outputs = tensorsMeta(sig.GetOutputs(), probabilitiesKey, classesKey)
	return md, nil
}

// tensorsMeta lists a signature's tensors, those named in first first in
// that order, then the others by name.
func tensorsMeta(m map[string]*corepb.TensorInfo, first ...string) []tensorMeta {
	names := make([]string, 0, len(m))
	for n := range m {
		if !slices.Contains(first, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var pre []string
	for _, n := range first {
		if _, ok := m[n]; ok {
			pre = append(pre, n)
		}
	}
	out := make([]tensorMeta, 0, len(m))
	for _, n := range append(pre, names...) {
		info := m[n]
		shape := []int64{-1}
		if s := info.GetTensorShape(); s != nil && !s.GetUnknownRank() {
			shape = make([]int64, len(s.GetDim()))
			for i, d := range s.GetDim() {
				shape[i] = d.GetSize()
			}
		}
		out = append(out, tensorMeta{Name: n, Datatype: datatype(info.GetDtype()), Shape: shape})
	}
	return out
}

// datatype is the v2 datatype of a TensorFlow dtype.
func datatype(t typespb.DataType) string {
	switch t {
	case typespb.DataType_DT_BOOL:
		return "BOOL"
	case typespb.DataType_DT_UINT8:
		return "UINT8"
	case typespb.DataType_DT_UINT16:
		return "UINT16"
	case typespb.DataType_DT_UINT32:
		return "UINT32"
	case typespb.DataType_DT_UINT64:
		return "UINT64"
	case typespb.DataType_DT_INT8:
		return "INT8"
	case typespb.DataType_DT_INT16:
		return "INT16"
	case typespb.DataType_DT_INT32:
		return "INT32"
	case typespb.DataType_DT_INT64:
		return dtINT64
	case typespb.DataType_DT_HALF:
		return "FP16"
	case typespb.DataType_DT_BFLOAT16:
		return "BF16"
	case typespb.DataType_DT_FLOAT:
		return dtFP32
	case typespb.DataType_DT_DOUBLE:
		return "FP64"
	case typespb.DataType_DT_STRING:
		return dtBYTES
	}
	return strings.TrimPrefix(t.String(), "DT_")
}

// checkInputName refuses any input but the signature's.
func checkInputName(name string, count int) error {
	switch {
	case count == 0:
		return invalid("the request has no inputs: the model's input is %q", inputKey)
	case count > 1:
		return invalid("the request has %d inputs: the model's only input is %q", count, inputKey)
	case name != inputKey:
		return invalid("unexpected inference input %q: the model's only input is %q", name, inputKey)
	}
	return nil
}

// floatShape checks an FP32 input's shape, [N, H, W, C] with N within
// MaxInstances, before its values are read.
func floatShape(srv *serving.Server, shape []int64) (serving.FloatTensor, error) {
	ft, err := srv.FloatTensor(shape)
	return ft, tensorError(srv, err)
}

// bytesShape checks a BYTES input's shape, [N] or [N, 1], and returns N.
func bytesShape(srv *serving.Server, shape []int64) (int, error) {
	if (len(shape) != 1 && (len(shape) != 2 || shape[1] != 1)) || shape[0] < 1 {
		return 0, invalid("input %s: BYTES of shape %s; encoded images are [N] or [N,1] with N ≥ 1", inputKey, serving.ShapeString(shape))
	}
	if shape[0] > int64(srv.MaxInstances()) {
		return 0, invalid("input %s: %d images in one request, more than the limit of %d", inputKey, shape[0], srv.MaxInstances())
	}
	return int(shape[0]), nil
}

// rawBytes splits BYTES data in the binary form — each element a 4-byte
// little-endian length, then its bytes — into n elements, which alias b.
func rawBytes(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, invalid("input %s: BYTES data end inside an element's length", inputKey)
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, invalid("input %s: a BYTES element of %d bytes with %d left", inputKey, l, len(b))
		}
		if len(out) == n {
			return nil, invalid("input %s: more BYTES elements than the shape's %d", inputKey, n)
		}
		out = append(out, b[:l:l])
		b = b[l:]
	}
	if len(out) != n {
		return nil, invalid("input %s: %d BYTES elements for shape [%d]", inputKey, len(out), n)
	}
	return out, nil
}

// tensorError is a refused tensor as INVALID_ARGUMENT in v2's words: its
// datatypes, one answer for too many images whichever bound N passes, and
// for values that do not fill the shape the gRPC field that held them (JSON
// and binary data are counted as they are read, parseFloats and rawBytes).
func tensorError(srv *serving.Server, err error) error {
	var te *serving.TensorError
	if !errors.As(err, &te) {
		return err
	}
	shape := serving.ShapeString(te.Dims)
	switch te.Problem {
	case serving.TensorShape:
		h, w, c := srv.InputSize()
		return invalid("input %s: FP32 of shape %s; the model takes [N,%d,%d,%d] with N ≥ 1 (or BYTES [N] of encoded images)", inputKey, shape, h, w, c)
	case serving.TensorTooLarge, serving.TensorTooMany:
		return invalid("input %s: shape %s: %d images in one request, more than the limit of %d", inputKey, shape, te.Dims[0], srv.MaxInstances())
	case serving.TensorBytes:
		return invalid("input %s: %d bytes of FP32 data for %d values (%d bytes)", inputKey, te.Got, te.Want, 4*te.Want)
	case serving.TensorValues:
		return invalid("input %s: %d fp32_contents for shape %s (%d values)", inputKey, te.Got, shape, te.Want)
	case serving.TensorImages:
		return invalid("input %s: %d bytes_contents for shape %s", inputKey, te.Got, shape)
	}
	return invalid("%s", te)
}

// checkOutputs checks the names of the outputs a request asks for; none
// asks for both.
func checkOutputs(names []string) ([]string, error) {
	if len(names) == 0 {
		return []string{probabilitiesKey, classesKey}, nil
	}
	for i, n := range names {
		if n != probabilitiesKey && n != classesKey {
			return nil, invalid("unexpected inference output %q: the model's outputs are %q and %q", n, probabilitiesKey, classesKey)
		}
		if slices.Contains(names[:i], n) {
			return nil, invalid("the output %q is asked for twice", n)
		}
	}
	return names, nil
}

// refusedParameter is the error for a parameter of an extension tfcat does
// not have, or nil.
func refusedParameter(key string) error {
	switch {
	case strings.HasPrefix(key, "shared_memory_"):
		return invalid("parameter %q: tfcat has no shared memory extension: send the data in the request", key)
	case key == "classification":
		return invalid("parameter %q: tfcat has no classification extension: ask for the %q output", key, probabilitiesKey)
	}
	return nil
}

// output is one output tensor of a reply.
type output struct {
	name     string
	datatype string
	shape    []int64
	f32      []float32
	i64      []int64
}

// outputs makes the named outputs of n images' probabilities, k each.
func outputs(names []string, probs []float32, n, k int) []output {
	out := make([]output, len(names))
	for i, name := range names {
		if name == classesKey {
			classes := make([]int64, n)
			for j := range classes {
				classes[j] = int64(metrics.ArgMax(probs[j*k : (j+1)*k]))
			}
			out[i] = output{name: name, datatype: dtINT64, shape: []int64{int64(n)}, i64: classes}
			continue
		}
		out[i] = output{name: name, datatype: dtFP32, shape: []int64{int64(n), int64(k)}, f32: probs}
	}
	return out
}

// raw is the output's values in the binary form: little-endian.
func (o output) raw() []byte {
	if o.i64 != nil {
		b := make([]byte, 8*len(o.i64))
		for i, v := range o.i64 {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		return b
	}
	b := make([]byte, 4*len(o.f32))
	for i, v := range o.f32 {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// grpcCode is err's gRPC code: its own status, NOT_FOUND for an unknown
// model, version or label, UNAVAILABLE for other failures to acquire one (the
// models are closing), or the code serving.ErrorCode reports (TensorFlow's
// codes are gRPC's).
func grpcCode(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	var nf *serving.NotFoundError
	if errors.As(err, &nf) {
		return codes.NotFound
	}
	var ex exhausted
	var enc unsupportedEncoding
	switch {
	case errors.As(err, &ex):
		return codes.ResourceExhausted
	case errors.As(err, &enc):
		return codes.InvalidArgument
	}
	if _, ok := err.(acquireError); ok {
		return codes.Unavailable
	}
	return codes.Code(serving.ErrorCode(err))
}

// grpcError gives err its gRPC status.
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(grpcCode(err), errorMessage(err))
}

// errorMessage is err's message without a status's "rpc error: code = ..."
// prefix.
func errorMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// httpStatus is the HTTP status of err, as the v1 REST API answers the same
// failure: RESOURCE_EXHAUSTED is 503 when a wait for memory or a request slot
// ran out of time (try again) and 413 otherwise (the request is too large
// ever to fit).
func httpStatus(err error) int {
	var enc unsupportedEncoding
	if errors.As(err, &enc) {
		return http.StatusUnsupportedMediaType
	}
	code := grpcCode(err)
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.ResourceExhausted:
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return http.StatusServiceUnavailable
		}
		return http.StatusRequestEntityTooLarge
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // TensorFlow Serving's CANCELLED
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// acquireError is a failure to acquire a version other than NotFound: the
// models are closing.
type acquireError struct{ error }
