package serving_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/serving"
)

// fakeServer serves testmodel.Fake (8×8×3 images) with room for 3 images a
// request.
func fakeServer(t *testing.T) *serving.Server {
	t.Helper()
	srv, err := serving.New(testmodel.Fake{}, serving.Config{MaxInstances: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestTensorInputs: the tensors gRPC Predict and v2 inference send become
// Inputs Predict takes: typed values used as they are, little-endian bytes
// read, encoded images passed on.
func TestTensorInputs(t *testing.T) {
	srv := fakeServer(t)
	x := make([]float32, 2*testmodel.FakeSize)
	x[0], x[testmodel.FakeSize] = 0.25, 0.75
	ft, err := srv.FloatTensor([]int64{2, 8, 8, 3})
	if err != nil || ft.N != 2 || ft.Count != len(x) {
		t.Fatalf("FloatTensor: %+v, %v", ft, err)
	}
	in, err := ft.Values(x)
	if err != nil || in.N != 2 || &in.X[0] != &x[0] {
		t.Fatalf("Values: %+v, %v (want x itself)", in, err)
	}
	raw := make([]byte, 0, 4*len(x))
	for _, v := range x {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	in, err = ft.Raw(raw)
	if err != nil || in.N != 2 || !slices.Equal(in.X, x) {
		t.Fatalf("Raw: %+v, %v", in, err)
	}
	p, err := srv.Predict(context.Background(), in)
	if err != nil || !slices.Equal(p, []float32{0.125, 0.375, 0.5, 0.375, 0.125, 0.5}) {
		t.Fatalf("Predict of Raw's input: %v, %v", p, err)
	}
	imgs := [][]byte{{1}, {2}}
	in, err = srv.ImageInput([]int64{2}, 2, imgs)
	if err != nil || in.N != 2 || len(in.Images) != 2 || in.X != nil {
		t.Fatalf("ImageInput: %+v, %v", in, err)
	}
}

// TestTensorErrors: each refusal is a TensorError naming its problem and
// numbers, for the front ends to word; its own message says what is wrong.
func TestTensorErrors(t *testing.T) {
	srv := fakeServer(t)
	ft, err := srv.FloatTensor([]int64{1, 8, 8, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		err       func() error
		problem   serving.TensorProblem
		got, want int
		msg       string
	}{
		{"rank", func() error { _, err := srv.FloatTensor([]int64{8, 8, 3}); return err }, serving.TensorShape, 0, 0,
			"input images: shape [8,8,3]; the model takes [N,8,8,3] with N ≥ 1"},
		{"no images", func() error { _, err := srv.FloatTensor([]int64{0, 8, 8, 3}); return err }, serving.TensorShape, 0, 0, "shape [0,8,8,3]"},
		{"channels", func() error { _, err := srv.FloatTensor([]int64{1, 8, 8, 1}); return err }, serving.TensorShape, 0, 0, "shape [1,8,8,1]"},
		// Past an int32 of values: refused before N is compared with
		// MaxInstances, or converted to an int.
		{"huge", func() error { _, err := srv.FloatTensor([]int64{1 << 40, 8, 8, 3}); return err }, serving.TensorTooLarge, 0, 0, "holds too many values"},
		{"too many", func() error { _, err := srv.FloatTensor([]int64{4, 8, 8, 3}); return err }, serving.TensorTooMany, 4, 3,
			"4 images in one request, more than the limit of 3"},
		{"short values", func() error { _, err := ft.Values(make([]float32, 3)); return err }, serving.TensorValues, 3, testmodel.FakeSize,
			"input images: 3 float32 values for shape [1,8,8,3] (192 values)"},
		{"long raw", func() error { _, err := ft.Raw(make([]byte, 769)); return err }, serving.TensorBytes, 769, testmodel.FakeSize,
			"769 bytes of float32 data for 192 values (768 bytes)"},
		{"too many images", func() error { _, err := srv.ImageInput([]int64{4}, 4, make([][]byte, 4)); return err }, serving.TensorTooMany, 4, 3, "more than the limit of 3"},
		{"image count", func() error { _, err := srv.ImageInput([]int64{2}, 2, [][]byte{{1}}); return err }, serving.TensorImages, 1, 2,
			"input images: 1 encoded images for shape [2]"},
		{"empty image", func() error { _, err := srv.ImageInput([]int64{2}, 2, [][]byte{{1}, {}}); return err }, serving.TensorEmptyImage, 1, 0,
			"input images: image 1 is empty: send the bytes of a JPEG, PNG or BMP image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var te *serving.TensorError
			err := c.err()
			if !errors.As(err, &te) {
				t.Fatalf("%v (%T), want a *serving.TensorError", err, err)
			}
			if te.Problem != c.problem || te.Got != c.got || te.Want != c.want {
				t.Errorf("problem %d, got %d, want %d; want %d, %d, %d", te.Problem, te.Got, te.Want, c.problem, c.got, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q, want %q in it", err, c.msg)
			}
		})
	}
}
