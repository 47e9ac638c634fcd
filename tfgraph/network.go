package tfgraph

import (
	"errors"
	"fmt"
)

// ConvLayer is one convolution block: Conv2D (stride 1, SAME) with Size×Size
// filters, Add of a bias, MaxPool 2×2 stride 2 SAME, Relu.
type ConvLayer struct {
	Size    int // filter height and width
	Filters int // output channels
}

// Network describes the tutorial's classifier. The zero value is not valid; start
// from Tutorial and change what differs.
type Network struct {
	Height, Width, Channels int // input image size
	Classes                 int
	Conv                    []ConvLayer
	FC                      int // units of the hidden fully connected layer

	// Adam's hyper-parameters (TF1 AdamOptimizer).
	LearningRate float64
	Beta1        float64
	Beta2        float64
	Epsilon      float64

	// WeightStddev and BiasInit set the initial values: weights from a truncated
	// normal with this standard deviation, biases to this constant.
	WeightStddev float64
	BiasInit     float64
}

// Tutorial is exactly the cv-tricks tutorial's network: 128×128×3 input, three
// 3×3 conv layers of 32, 32 and 64 filters, fc 128, Adam at 1e-4, for the given
// number of classes (2 in the tutorial).
func Tutorial(classes int) Network {
	return Network{
		Height: 128, Width: 128, Channels: 3,
		Classes:      classes,
		Conv:         []ConvLayer{{3, 32}, {3, 32}, {3, 64}},
		FC:           128,
		LearningRate: 1e-4,
		Beta1:        0.9,
		Beta2:        0.999,
		Epsilon:      1e-8,
		WeightStddev: 0.05,
		BiasInit:     0.05,
	}
}

// WithInput returns n with another input size.
func (n Network) WithInput(height, width, channels int) Network {
	n.Height, n.Width, n.Channels = height, width, channels
	return n
}

// Validate reports the first thing that makes n unbuildable.
func (n Network) Validate() error {
	switch {
	case n.Height <= 0 || n.Width <= 0:
		return fmt.Errorf("network: input size %dx%d must be positive", n.Height, n.Width)
	case n.Channels != 1 && n.Channels != 3:
		return fmt.Errorf("network: %d channels; want 1 or 3", n.Channels)
	case n.Classes < 2:
		return fmt.Errorf("network: %d classes; need at least 2", n.Classes)
	case len(n.Conv) == 0:
		return errors.New("network: no conv layers")
	case n.FC <= 0:
		return fmt.Errorf("network: fully connected size %d must be positive", n.FC)
	case n.LearningRate <= 0:
		return fmt.Errorf("network: learning rate %g must be positive", n.LearningRate)
	case n.Beta1 < 0 || n.Beta1 >= 1 || n.Beta2 < 0 || n.Beta2 >= 1:
		return fmt.Errorf("network: Adam betas %g, %g must lie in [0, 1)", n.Beta1, n.Beta2)
	case n.Epsilon <= 0:
		return fmt.Errorf("network: Adam epsilon %g must be positive", n.Epsilon)
	case n.WeightStddev <= 0:
		return fmt.Errorf("network: weight stddev %g must be positive", n.WeightStddev)
	}
	for i, c := range n.Conv {
		if c.Size <= 0 || c.Filters <= 0 {
			return fmt.Errorf("network: conv layer %d has size %d and %d filters; both must be positive", i+1, c.Size, c.Filters)
		}
	}
	return nil
}

// pooled is the spatial size after each SAME 2×2/2 max-pool: ceil(n/2).
func pooled(n, layers int) int {
	for range layers {
		n = (n + 1) / 2
	}
	return n
}

// FlatSize is the length of the flattened last conv output (16·16·64 = 16384 for
// the tutorial).
func (n Network) FlatSize() int {
	return pooled(n.Height, len(n.Conv)) * pooled(n.Width, len(n.Conv)) * n.Conv[len(n.Conv)-1].Filters
}

// VariableShapes lists the trainable variables' shapes in the tutorial's creation
// order: each conv layer's weights then bias, then fc1 and fc2.
func (n Network) VariableShapes() [][]int64 {
	var shapes [][]int64
	in := n.Channels
	for _, c := range n.Conv {
		shapes = append(shapes, []int64{int64(c.Size), int64(c.Size), int64(in), int64(c.Filters)}, []int64{int64(c.Filters)})
		in = c.Filters
	}
	shapes = append(shapes,
		[]int64{int64(n.FlatSize()), int64(n.FC)}, []int64{int64(n.FC)},
		[]int64{int64(n.FC), int64(n.Classes)}, []int64{int64(n.Classes)})
	return shapes
}

// FLOPs is the forward pass's multiply-adds per image, times two (one multiply,
// one add), over the conv and matmul layers.
func (n Network) FLOPs() int64 {
	var macs int64
	h, w, in := n.Height, n.Width, n.Channels
	for _, c := range n.Conv {
		macs += int64(h) * int64(w) * int64(c.Size*c.Size*in) * int64(c.Filters)
		h, w, in = (h+1)/2, (w+1)/2, c.Filters
	}
	macs += int64(n.FlatSize())*int64(n.FC) + int64(n.FC)*int64(n.Classes)
	return 2 * macs
}
