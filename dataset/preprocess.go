package dataset

import (
	"fmt"

	"github.com/tfcat/tfcat/pixels"
)

// Preprocess decodes an image held in memory and returns the tensor the
// tutorial feeds its network: size×size×channels float32 values in HWC order
// (BGR for 3 channels), equal bit for bit to
//
//	img = cv2.imread(path, flag)  # a file holding data; IMREAD_COLOR or IMREAD_GRAYSCALE
//	img = cv2.resize(img, (size, size), 0, 0, cv2.INTER_LINEAR)
//	np.multiply(img.astype(np.float32), 1.0 / 255.0)
//
// with DefaultMaxPixels as the pixel limit.
func Preprocess(data []byte, size, channels int) ([]float32, error) {
	img, err := PreprocessUint8(data, size, channels)
	if err != nil {
		return nil, err
	}
	return img.Float32(nil), nil
}

// PreprocessFiles is PreprocessFile for each file, one after the other in
// a [len(paths), size, size, channels] batch: what tfcat preprocess writes.
func PreprocessFiles(paths []string, size, channels int) ([]float32, error) {
	out := make([]float32, 0, len(paths)*size*size*channels)
	for _, p := range paths {
		x, err := PreprocessFile(p, size, channels)
		if err != nil {
			return nil, err
		}
		out = append(out, x...)
	}
	return out, nil
}

// PreprocessFile is Preprocess for an image file; errors name the file.
func PreprocessFile(path string, size, channels int) ([]float32, error) {
	var s scratch
	data, err := s.readFile(path)
	if err != nil {
		return nil, err
	}
	img, err := s.preprocess(data, size, channels, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img.Float32(nil), nil
}

// PreprocessUint8 decodes and resizes an image held in memory to
// size×size, as Preprocess does, but returns the 8-bit image that
// cv2.resize returns, before the conversion to float32.
func PreprocessUint8(data []byte, size, channels int) (*Image, error) {
	var s scratch
	return s.preprocess(data, size, channels, 0, nil)
}

// preprocess decodes and resizes into dst (allocated when nil).
func (s *scratch) preprocess(data []byte, size, channels, maxPixels int, dst []uint8) (*Image, error) {
	return s.preprocessMode(data, size, channels, maxPixels, pixels.Stretch, dst)
}

// preprocessMode decodes and brings the image to size×size by mode into dst
// (allocated when nil).
func (s *scratch) preprocessMode(data []byte, size, channels, maxPixels int, mode pixels.ResizeMode, dst []uint8) (*Image, error) {
	if size <= 0 {
		return nil, fmt.Errorf("invalid image size %d", size)
	}
	img, err := s.decode(data, channels, maxPixels)
	if err != nil {
		return nil, err
	}
	n := size * size * channels
	if dst == nil {
		dst = make([]uint8, n)
	}
	s.fitInto(img, dst[:n], size, mode)
	return &Image{Width: size, Height: size, Channels: channels, Pix: dst[:n]}, nil
}

// PreprocessLimit is Preprocess with a pixel limit: larger images are refused
// from their header with an error wrapping ErrTooLarge (0 means
// DefaultMaxPixels, negative no limit).
func PreprocessLimit(data []byte, size, channels, maxPixels int) ([]float32, error) {
	var s scratch
	img, err := s.preprocess(data, size, channels, maxPixels, nil)
	if err != nil {
		return nil, err
	}
	return img.Float32(nil), nil
}

// PreprocessMode is PreprocessLimit with a resize mode: Stretch gives
// PreprocessLimit's values; Pad and Crop keep the aspect ratio.
func PreprocessMode(data []byte, size, channels, maxPixels int, mode pixels.ResizeMode) ([]float32, error) {
	mode, err := pixels.ParseResizeMode(string(mode))
	if err != nil {
		return nil, err
	}
	var s scratch
	img, err := s.preprocessMode(data, size, channels, maxPixels, mode, nil)
	if err != nil {
		return nil, err
	}
	return img.Float32(nil), nil
}

// PreprocessFileMode is PreprocessFile with a resize mode.
func PreprocessFileMode(path string, size, channels int, mode pixels.ResizeMode) ([]float32, error) {
	mode, err := pixels.ParseResizeMode(string(mode))
	if err != nil {
		return nil, err
	}
	var s scratch
	data, err := s.readFile(path)
	if err != nil {
		return nil, err
	}
	img, err := s.preprocessMode(data, size, channels, 0, mode, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img.Float32(nil), nil
}
