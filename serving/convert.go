package serving

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tfcat/tfcat/savedmodel"
)

// The image tensors of the front ends other than REST's JSON — TensorFlow
// Serving's gRPC Predict, KServe's v2 inference over gRPC and REST — become
// an Input through these checks. Each protocol declares a tensor in its own
// terms (its dtypes, the shapes it allows for encoded images, where the
// values lie) and its clients expect its own wording, so a refusal is a
// TensorError that says what is wrong, with the numbers, and the front end
// words it where its protocol words it otherwise.

// TensorProblem is what is wrong with an image tensor.
type TensorProblem int

const (
	// TensorShape: float32 values not shaped [N,H,W,C] with the model's H,
	// W and C and N ≥ 1.
	TensorShape TensorProblem = iota + 1
	// TensorTooLarge: N×H×W×C values, more than an int32 counts.
	TensorTooLarge
	// TensorTooMany: Got images, more than Config.MaxInstances (Want).
	TensorTooMany
	// TensorBytes: Got bytes of little-endian float32 values where the
	// shape wants Want values, 4 bytes each.
	TensorBytes
	// TensorValues: Got float32 values where the shape wants Want.
	TensorValues
	// TensorImages: Got encoded images where the shape wants Want.
	TensorImages
	// TensorEmptyImage: the encoded image at index Got holds no bytes.
	TensorEmptyImage
)

// TensorError is an image tensor refused before Predict. Its message is
// the plain wording; a front end whose protocol words a problem otherwise
// answers its own.
type TensorError struct {
	Problem TensorProblem
	// Dims is the tensor's shape as the request declared it.
	Dims []int64
	// Got and Want are the problem's numbers (TensorProblem says which).
	Got, Want int
	msg       string
}

func (e *TensorError) Error() string { return e.msg }

func tensorError(p TensorProblem, dims []int64, got, want int, format string, args ...any) *TensorError {
	return &TensorError{Problem: p, Dims: dims, Got: got, Want: want, msg: fmt.Sprintf(format, args...)}
}

// ShapeString writes dims as both protocols' messages do: [1,224,224,3].
func ShapeString(dims []int64) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// FloatTensor is a tensor of preprocessed images whose shape FloatTensor
// checked: N images of Count float32 values in all.
type FloatTensor struct {
	Dims     []int64
	N, Count int
}

// FloatTensor checks the shape of a tensor of preprocessed images: [N,H,W,C]
// with the model's H, W and C, and 1 ≤ N ≤ Config.MaxInstances. The bound
// comes before any value is read, so that Count may size what holds them.
func (s *Server) FloatTensor(dims []int64) (FloatTensor, error) {
	h, w, c := s.InputSize()
	if len(dims) != 4 || dims[0] < 1 || dims[1] != int64(h) || dims[2] != int64(w) || dims[3] != int64(c) {
		return FloatTensor{}, tensorError(TensorShape, dims, 0, 0, "input %s: shape %s; the model takes [N,%d,%d,%d] with N ≥ 1", savedmodel.InputKey, ShapeString(dims), h, w, c)
	}
	size := int64(h * w * c)
	if dims[0] > math.MaxInt32/size {
		// Before MaxInstances: N may not fit an int.
		return FloatTensor{}, tensorError(TensorTooLarge, dims, 0, 0, "input %s: shape %s holds too many values", savedmodel.InputKey, ShapeString(dims))
	}
	if err := s.tooMany(dims, dims[0]); err != nil {
		return FloatTensor{}, err
	}
	return FloatTensor{Dims: dims, N: int(dims[0]), Count: int(dims[0] * size)}, nil
}

// tooMany refuses more than MaxInstances images as Predict does, in its words.
func (s *Server) tooMany(dims []int64, n int64) error {
	if n > int64(s.cfg.MaxInstances) {
		return tensorError(TensorTooMany, dims, int(n), s.cfg.MaxInstances, "%d images in one request, more than the limit of %d", n, s.cfg.MaxInstances)
	}
	return nil
}

// Values is t's Input from x, the request's own float32 values: X is x,
// not a copy.
func (t FloatTensor) Values(x []float32) (Input, error) {
	if len(x) != t.Count {
		return Input{}, tensorError(TensorValues, t.Dims, len(x), t.Count, "input %s: %d float32 values for shape %s (%d values)", savedmodel.InputKey, len(x), ShapeString(t.Dims), t.Count)
	}
	return Input{N: t.N, X: x}, nil
}

// Raw is t's Input from b, 4 little-endian bytes a value, as a TensorProto's
// tensor_content and v2's raw and binary data hold them.
func (t FloatTensor) Raw(b []byte) (Input, error) {
	if len(b) != 4*t.Count {
		return Input{}, tensorError(TensorBytes, t.Dims, len(b), t.Count, "input %s: %d bytes of float32 data for %d values (%d bytes)", savedmodel.InputKey, len(b), t.Count, 4*t.Count)
	}
	x := make([]float32, t.Count)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return Input{N: t.N, X: x}, nil
}

// ImageInput is the Input of n encoded images, the number the front end read
// from dims (the forms allowed differ by protocol): imgs must hold n, at most
// Config.MaxInstances, none of them empty, which would otherwise fail later
// as an undecodable image. Images is imgs, not a copy.
func (s *Server) ImageInput(dims []int64, n int64, imgs [][]byte) (Input, error) {
	if err := s.tooMany(dims, n); err != nil {
		return Input{}, err
	}
	if int64(len(imgs)) != n {
		return Input{}, tensorError(TensorImages, dims, len(imgs), int(n), "input %s: %d encoded images for shape %s", savedmodel.InputKey, len(imgs), ShapeString(dims))
	}
	for i, b := range imgs {
		if len(b) == 0 {
			return Input{}, tensorError(TensorEmptyImage, dims, i, 0, "input %s: image %d is empty: send the bytes of a JPEG, PNG or BMP image", savedmodel.InputKey, i)
		}
	}
	return Input{N: int(n), Images: imgs}, nil
}
