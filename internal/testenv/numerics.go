package testenv

import (
	"math"
	"os"
)

// Tolerances of the numerics tests. Each comparison of two float32
// computations states which kind its bound is:
//
//   - Exact: the same operations on the same kernels in the same order (the
//     tutorial's arithmetic in Go and in Python, preprocessing): equal bits, on
//     every kernel family (scripts/numerics.sh runs them under each).
//   - SameGraph: the same forward operations run by two sessions or two
//     loaders (a checkpoint and its SavedModel, Go and Python). Measured equal
//     bits on every family here; SameGraphProb allows a few float32 ulps of a
//     probability for kernels that split a reduction by thread count.
//   - Spread: two computations that sum in different orders (other gradient
//     forms, oneDNN against Eigen, a batch split over replicas, another
//     graph's fusions). The bound is the largest difference measured across
//     the kernel families (native, AVX512_CORE, AVX2, Eigen; AMX figures from
//     issue 24) times SpreadHeadroom, and each test's comment gives both.
//
// Every bound is also checked against errors of the size real bugs make:
// TFCAT_TEST_FAULT (see Fault) makes the tests commit one on tfcat's side,
// and scripts/numerics.sh must then fail on every family.

// Unit is float32's unit roundoff, 2⁻²⁴: the largest relative error of one
// rounding.
const Unit = 0x1p-24

// SameGraphProb bounds the difference between two probabilities computed by
// the same operations: 8 ulps of 1 (float32's spacing just below 1 is 2⁻²⁴,
// above it 2⁻²³), room for a reduction split differently across threads —
// and 100 times below what an input scaled by 1.001 moves them.
const SameGraphProb = 8 * 0x1p-23

// SpreadHeadroom multiplies the largest difference measured across kernel
// families: on every spread-bounded comparison the largest of the four
// families measured here is at most 3 times the second largest, so 4 leaves
// room for a blocking not seen yet while staying at least 4 times under the
// faults' effects (TFCAT_TEST_FAULT).
const SpreadHeadroom = 4

// Faults that TFCAT_TEST_FAULT asks the numerics tests to commit on tfcat's
// side of a comparison.
const (
	FaultScale   = "scale"   // the input multiplied by 1.001
	FaultChannel = "channel" // the first and last channels swapped (BGR read as RGB)
	FaultStep    = "step"    // one variable from another training step
)

// Fault returns the deliberate error TFCAT_TEST_FAULT names, or "". It exists
// to show that the bounds catch errors of the size real bugs make:
//
//	TFCAT_TEST_FAULT=scale bash scripts/numerics.sh   # must fail on every family
func Fault() string { return os.Getenv("TFCAT_TEST_FAULT") }

// FaultInput returns x (NHWC, c channels) with the input fault applied, or x
// itself when none is asked for.
func FaultInput(x []float32, c int) []float32 {
	switch Fault() {
	case FaultScale:
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = v * 1.001
		}
		return y
	case FaultChannel:
		if c < 2 {
			return x
		}
		y := append([]float32(nil), x...)
		for i := 0; i+c <= len(y); i += c {
			y[i], y[i+c-1] = y[i+c-1], y[i]
		}
		return y
	}
	return x
}

// MaxAbs is the largest |v|.
func MaxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// MaxAbsDiff is the largest |a[i] − b[i]|; +Inf if the lengths differ.
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// Flatten64 flattens a tensor's value as graft's Tensor.Value gives it — a
// []float32 nested up to four deep — into float64s, row-major; nil for any
// other type.
func Flatten64(v any) []float64 {
	switch v := v.(type) {
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	case [][]float32:
		return flattenRows(v)
	case [][][]float32:
		return flattenRows(v)
	case [][][][]float32:
		return flattenRows(v)
	}
	return nil
}

func flattenRows[T any](rows []T) []float64 {
	var out []float64
	for _, r := range rows {
		out = append(out, Flatten64(r)...)
	}
	return out
}
