package trainer

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tfcat/tfcat/backbone"
	"github.com/tfcat/tfcat/network"
)

// DefaultFeatureCacheBytes bounds the backbone features kept in memory when
// training on a frozen backbone without augmentation: 1 GiB holds the
// features of about 200,000 images of MobileNetV2 (1280 floats each).
const DefaultFeatureCacheBytes = 1 << 30

// Base is a pretrained backbone to train a new head on (transfer learning):
// a SavedModel whose serving signature takes an image batch and gives
// features. The backbone is frozen; the head is the fully connected layers
// of Options.FC (none unless set) and the softmax. Its graph and weights are
// copied into the checkpoints, which then need nothing from Path.
type Base struct {
	// Path is the SavedModel folder.
	Path string
	// Output picks the feature output when the signature has several: an
	// output key, or a tensor name of the graph.
	Output string
	// Channels is the channel order the backbone takes: "rgb" (Keras
	// applications, TF Hub) or "bgr" (tfcat's and the tutorial's models).
	// Empty: "bgr" for a SavedModel tfcat exported, "rgb" otherwise.
	Channels string
	// Scale is the backbone's input scaling of pixels p in 0..255 (see
	// ParseScale): "0,1", "-1,1", "0,255", "caffe", "torch" or "M/S".
	// Empty: "0,1", TF Hub's convention and tfcat's.
	Scale string
	// Trust skips the op check of the backbone's graph.
	Trust bool
	// CacheBytes bounds the features cached in memory (default
	// DefaultFeatureCacheBytes); negative caches none.
	CacheBytes int64
}

// ParseScale reads a backbone's input scaling as the mean and standard
// deviation by which a pixel p in 0..255 becomes (p − mean)/std:
//
//	0,1    p/255 (TF Hub, tfcat)            -1,1   p/127.5 − 1 (MobileNet, Inception, EfficientNetV2 without its own rescaling)
//	0,255  p (EfficientNet, ConvNeXt)       caffe  p − [103.939 116.779 123.68] (ResNet50, VGG16, in BGR)
//	torch  (p/255 − [0.485 0.456 0.406]) / [0.229 0.224 0.225] (DenseNet, in RGB)
//
// or "M/S" with M and S one number or one per channel, comma-separated:
// "127.5/127.5".
func ParseScale(s string) (mean, std []float64, err error) {
	switch s {
	case "", "0,1":
		return []float64{0}, []float64{255}, nil
	case "-1,1":
		return []float64{127.5}, []float64{127.5}, nil
	case "0,255":
		return []float64{0}, []float64{1}, nil
	case "caffe":
		return []float64{103.939, 116.779, 123.68}, []float64{1}, nil
	case "torch":
		return []float64{123.675, 116.28, 103.53}, []float64{58.395, 57.12, 57.375}, nil
	}
	m, sd, ok := strings.Cut(s, "/")
	if !ok {
		return nil, nil, fmt.Errorf("%q: want 0,1, -1,1, 0,255, caffe, torch or MEAN/STD", s)
	}
	if mean, err = parseFloats(m); err == nil {
		std, err = parseFloats(sd)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%q: %w", s, err)
	}
	for _, v := range std {
		if !(v > 0) {
			return nil, nil, fmt.Errorf("%q: std must be positive", s)
		}
	}
	return mean, std, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, v)
	}
	if len(out) != 1 && len(out) != 3 {
		return nil, fmt.Errorf("%d values; want 1 or 3", len(out))
	}
	return out, nil
}

// openBase reads the backbone and settles the input size and channels from
// its signature: the data are loaded at the backbone's size.
func (r *run) openBase() error {
	o := &r.opt
	b := o.Base
	bb, err := backbone.Open(b.Path, backbone.Options{Output: b.Output, Size: o.Size, Trust: b.Trust})
	if err != nil {
		return err
	}
	if o.Channels != 0 && o.Channels != bb.Channels {
		return &OptionError{Option: "Channels", Value: o.Channels, Reason: fmt.Sprintf("contradicts the backbone's %d", bb.Channels)}
	}
	rec := &network.Base{Input: bb.Input, Output: bb.Output, Features: bb.Features, Variables: bb.Vars}
	if abs, err := filepath.Abs(b.Path); err == nil {
		rec.Source = abs
	}
	channels := b.Channels
	if channels == "" {
		channels = "rgb"
		if bb.ByTfcat {
			channels = "bgr"
		}
	}
	switch channels {
	case "rgb":
		rec.RGB = bb.Channels == 3
	case "bgr":
	default:
		return &OptionError{Option: "Base.Channels", Value: b.Channels, Reason: "must be rgb or bgr"}
	}
	if rec.Mean, rec.Std, err = ParseScale(b.Scale); err != nil {
		return &OptionError{Option: "Base.Scale", Value: b.Scale, Reason: err.Error()}
	}
	if err := rec.Validate(bb.Channels); err != nil {
		return &OptionError{Option: "Base.Scale", Value: b.Scale, Reason: err.Error()}
	}
	o.Size, o.Channels = bb.Height, bb.Channels
	r.backbone, r.base = bb, rec
	return nil
}
