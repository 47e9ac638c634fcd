package network

import (
	"errors"
	"fmt"

	"github.com/tfcat/tfcat/pixels"
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
	FC                      int // units of the (first) hidden fully connected layer
	// MoreFC lists the units of further hidden fully connected layers after
	// FC; the tutorial has none.
	MoreFC []int `json:",omitempty"`

	// Dropout is the fraction of each hidden fully connected layer's outputs
	// dropped in training (TF's dropout: the rest scaled by 1/(1-Dropout));
	// the inference path has no dropout. Zero, the tutorial's, adds none.
	Dropout float64 `json:",omitempty"`
	// BatchNorm normalises every conv and hidden fully connected layer's
	// pre-activations (batch statistics in training, moving averages at
	// inference; see tfgraph's layers.go); the layer's bias is then BatchNorm's beta.
	BatchNorm bool `json:",omitempty"`
	// Resize is how images of another aspect ratio are brought to the input
	// size, in training and prediction alike; "" is pixels.Stretch, the
	// tutorial's cv2.resize.
	Resize pixels.ResizeMode `json:",omitempty"`
	// Base, when set, puts the network's head — its fully connected layers
	// and the softmax — on a pretrained backbone's features instead of conv
	// layers (Conv is then empty); the backbone is frozen.
	Base *Base `json:",omitempty"`

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
	case len(n.Conv) == 0 && n.Base == nil:
		return errors.New("network: no conv layers")
	case len(n.Conv) > 0 && n.Base != nil:
		return errors.New("network: conv layers on a backbone")
	case n.FC < 0 || (n.FC == 0 && (n.Base == nil || len(n.MoreFC) > 0)):
		return fmt.Errorf("network: fully connected size %d must be positive", n.FC)
	case !(n.Dropout >= 0 && n.Dropout < 1):
		return fmt.Errorf("network: dropout %g must lie in [0, 1)", n.Dropout)
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
	for i, u := range n.MoreFC {
		if u <= 0 {
			return fmt.Errorf("network: fully connected layer %d has %d units; must be positive", i+2, u)
		}
	}
	if _, err := pixels.ParseResizeMode(string(n.Resize)); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if n.Base != nil {
		return n.Base.Validate(n.Channels)
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
	if n.Base != nil {
		return n.Base.Features
	}
	return pooled(n.Height, len(n.Conv)) * pooled(n.Width, len(n.Conv)) * n.Conv[len(n.Conv)-1].Filters
}

// Hidden lists the units of the hidden fully connected layers: FC, then MoreFC.
// A network on a backbone may have none (FC 0): the softmax then sits on the
// backbone's features.
func (n Network) Hidden() []int {
	if n.FC == 0 {
		return nil
	}
	return append([]int{n.FC}, n.MoreFC...)
}

// IsTutorial reports whether n has only what the tutorial's graph has: no
// extra fully connected layers, dropout or batch normalisation, and the
// tutorial's resizing. Such a network builds exactly the tutorial's graph.
func (n Network) IsTutorial() bool {
	return len(n.MoreFC) == 0 && n.Dropout == 0 && n.Base == nil && !n.BatchNorm && (n.Resize == "" || n.Resize == pixels.Stretch)
}

// VariableShapes lists the shapes of the weights and biases, the variables
// named Variable, Variable_1, ..., in creation order: each conv layer's
// weights then bias, then each fully connected layer's (fc1 and fc2 in the
// tutorial). With BatchNorm, the conv and hidden layers have no bias.
func (n Network) VariableShapes() [][]int64 {
	var shapes [][]int64
	in := n.Channels
	for _, c := range n.Conv {
		shapes = append(shapes, []int64{int64(c.Size), int64(c.Size), int64(in), int64(c.Filters)})
		if !n.BatchNorm {
			shapes = append(shapes, []int64{int64(c.Filters)})
		}
		in = c.Filters
	}
	in = n.FlatSize()
	for _, u := range n.Hidden() {
		shapes = append(shapes, []int64{int64(in), int64(u)})
		if !n.BatchNorm {
			shapes = append(shapes, []int64{int64(u)})
		}
		in = u
	}
	return append(shapes, []int64{int64(in), int64(n.Classes)}, []int64{int64(n.Classes)})
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
	in = n.FlatSize()
	for _, u := range n.Hidden() {
		macs += int64(in) * int64(u)
		in = u
	}
	macs += int64(in) * int64(n.Classes)
	return 2 * macs
}

// LayerNames are the scopes of the layers in order: conv1..convN, then
// fc1..fcK for the hidden fully connected layers and fc(K+1) for the logits.
func (n Network) LayerNames() []string {
	var names []string
	for i := range n.Conv {
		names = append(names, fmt.Sprintf("conv%d", i+1))
	}
	for i := range len(n.Hidden()) + 1 {
		names = append(names, fmt.Sprintf("fc%d", i+1))
	}
	return names
}
