// Package pixels holds what a network's input is made of, with no image
// decoding linked: a Batch of preprocessed images and their labels, and the
// ResizeMode that brought images of any aspect ratio to the input size.
// Package dataset makes them from image files; tfsession feeds them to
// TensorFlow without linking dataset's decoders.
package pixels

import (
	"fmt"
	"strings"
)

// Batch is one batch of examples. dataset's NextBatch reuses its slices when
// they are large enough, so one Batch can serve a whole training run without
// allocating.
type Batch struct {
	// X holds N images, Size×Size×Channels float32 values each, in NHWC
	// order (BGR for 3 channels): what the tutorial feeds to its x
	// placeholder.
	X []float32
	// Y holds N one-hot label rows of len(Classes) values.
	Y []float32
	// Labels holds the N class indexes.
	Labels []int
	// Paths holds the N source files.
	Paths []string
	// N is the number of examples in the batch.
	N int
}

// ResizeMode is how an image of any aspect ratio becomes the square input.
type ResizeMode string

// The resize modes. Each uses the same OpenCV-identical bilinear resize.
const (
	// Stretch resizes to size×size, ignoring the aspect ratio: the
	// tutorial's cv2.resize(img, (size, size)). It is the default ("").
	Stretch ResizeMode = "stretch"
	// Pad resizes the longer side to size, keeping the aspect ratio, and
	// centres the result on black (zero) borders.
	Pad ResizeMode = "pad"
	// Crop resizes the shorter side to size, keeping the aspect ratio, and
	// keeps the centre size×size square.
	Crop ResizeMode = "crop"
)

// ResizeModes lists the modes in the order help texts show them.
var ResizeModes = []ResizeMode{Stretch, Pad, Crop}

// ParseResizeMode reads a mode name (case-insensitive); "" is Stretch.
func ParseResizeMode(s string) (ResizeMode, error) {
	m := ResizeMode(strings.ToLower(strings.TrimSpace(s)))
	if m == "" {
		return Stretch, nil
	}
	for _, k := range ResizeModes {
		if m == k {
			return m, nil
		}
	}
	return "", fmt.Errorf("resize mode %q: use stretch, pad or crop", s)
}
