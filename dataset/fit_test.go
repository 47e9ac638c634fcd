package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"slices"
	"testing"

	"github.com/tfcat/tfcat/pixels"
)

// wide is a w×h image with distinct pixels.
func wide(w, h, ch int) *Image {
	img := NewImage(w, h, ch)
	for i := range img.Pix {
		img.Pix[i] = uint8(17 + i*7)
	}
	return img
}

func TestFitModes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		w, h, size int
		mode       pixels.ResizeMode
		want       func(img *Image) []uint8
	}{
		{"stretch is cv2.resize", 12, 6, 4, pixels.Stretch, func(img *Image) []uint8 {
			r, _ := Resize(img, 4, 4)
			return r.Pix
		}},
		{"empty mode is stretch", 5, 9, 4, "", func(img *Image) []uint8 {
			r, _ := Resize(img, 4, 4)
			return r.Pix
		}},
		{"pad a wide image: black rows above and below", 12, 6, 4, pixels.Pad, func(img *Image) []uint8 {
			r, _ := Resize(img, 4, 2)
			out := make([]uint8, 4*4*img.Channels)
			copy(out[1*4*img.Channels:], r.Pix)
			return out
		}},
		{"pad a tall image: black columns", 6, 12, 4, pixels.Pad, func(img *Image) []uint8 {
			r, _ := Resize(img, 2, 4)
			out := make([]uint8, 4*4*img.Channels)
			for y := range 4 {
				copy(out[(y*4+1)*img.Channels:], r.Pix[y*2*img.Channels:(y+1)*2*img.Channels])
			}
			return out
		}},
		{"crop a wide image: the centre", 12, 6, 4, pixels.Crop, func(img *Image) []uint8 {
			r, _ := Resize(img, 8, 4)
			var out []uint8
			for y := range 4 {
				out = append(out, r.Pix[(y*8+2)*img.Channels:(y*8+6)*img.Channels]...)
			}
			return out
		}},
		{"square images are the same in every mode", 9, 9, 4, pixels.Crop, func(img *Image) []uint8 {
			r, _ := Resize(img, 4, 4)
			return r.Pix
		}},
	} {
		for _, ch := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, ch), func(t *testing.T) {
				img := wide(tc.w, tc.h, ch)
				got, err := Fit(img, tc.size, tc.mode)
				if err != nil {
					t.Fatal(err)
				}
				if want := tc.want(img); !slices.Equal(got.Pix, want) {
					t.Errorf("Fit(%dx%d, %d, %q):\n got %v\nwant %v", tc.w, tc.h, tc.size, tc.mode, got.Pix, want)
				}
			})
		}
	}
}

// TestPreprocessModeStretch: the Stretch mode is the tutorial's
// preprocessing, bit for bit.
func TestPreprocessModeStretch(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 30, 20))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 13)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	want, err := Preprocess(buf.Bytes(), 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pixels.ResizeMode{"", pixels.Stretch} {
		got, err := PreprocessMode(buf.Bytes(), 16, 3, 0, mode)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("PreprocessMode(%q) differs from Preprocess (%v)", mode, err)
		}
	}
	pad, err := PreprocessMode(buf.Bytes(), 16, 3, 0, pixels.Pad)
	if err != nil || slices.Equal(pad, want) || pad[0] != 0 {
		t.Errorf("PreprocessMode(pad): %v; want black top rows, unlike stretch", err)
	}
}

func ExampleFit() {
	// A 4×2 image, brought to 2×2 three ways (pad puts the odd row of
	// border below, as tf.image.resize_with_pad does).
	img := &Image{Width: 4, Height: 2, Channels: 1, Pix: []uint8{
		10, 20, 30, 40,
		50, 60, 70, 80,
	}}
	for _, mode := range pixels.ResizeModes {
		out, err := Fit(img, 2, mode)
		if err != nil {
			panic(err)
		}
		fmt.Println(mode, out.Pix)
	}
	// Output:
	// stretch [15 35 55 75]
	// pad [35 55 0 0]
	// crop [20 30 60 70]
}
