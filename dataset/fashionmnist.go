package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the gzip'd IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTClasses are folder-safe names of the ten Fashion-MNIST
// classes, in label order: T-shirt/top, Trouser, Pullover, Dress, Coat,
// Sandal, Shirt, Sneaker, Bag, Ankle boot.
var FashionMNISTClasses = []string{
	"tshirt-top", "trouser", "pullover", "dress", "coat",
	"sandal", "shirt", "sneaker", "bag", "ankle-boot",
}

// MNIST holds an MNIST-format data set: N grey images of Rows×Cols bytes,
// stored one after another in Images, and their labels.
type MNIST struct {
	N, Rows, Cols int     // image count and size
	Images        []uint8 // N*Rows*Cols pixels, image after image, row-major
	Labels        []uint8 // N class indexes into FashionMNISTClasses
}

// Image returns image i as a one-channel Image sharing m's memory.
func (m *MNIST) Image(i int) *Image {
	n := m.Rows * m.Cols
	return &Image{Width: m.Cols, Height: m.Rows, Channels: 1, Pix: m.Images[i*n : (i+1)*n : (i+1)*n]}
}

// ReadFashionMNIST reads one split ("train" or "test") of Fashion-MNIST from
// dir (FashionMNISTDir when empty): {train,t10k}-images-idx3-ubyte.gz and
// the matching labels file. Magic numbers, dimensions, counts, label values
// and lengths are checked.
func ReadFashionMNIST(dir, split string) (*MNIST, error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	var prefix string
	switch split {
	case "train":
		prefix = "train"
	case "test", "t10k":
		prefix = "t10k"
	default:
		return nil, fmt.Errorf("fashion-mnist: split %q: want train or test", split)
	}
	imgPath := filepath.Join(dir, prefix+"-images-idx3-ubyte.gz")
	lblPath := filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz")
	images, dims, err := readIDX(imgPath, 0x0803)
	if err != nil {
		return nil, err
	}
	labels, ldims, err := readIDX(lblPath, 0x0801)
	if err != nil {
		return nil, err
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("fashion-mnist: %s has %d images but %s has %d labels", imgPath, dims[0], lblPath, ldims[0])
	}
	for i, l := range labels {
		if int(l) >= len(FashionMNISTClasses) {
			return nil, fmt.Errorf("%s: label %d of item %d is not a class (0-9)", lblPath, l, i)
		}
	}
	return &MNIST{N: dims[0], Rows: dims[1], Cols: dims[2], Images: images, Labels: labels}, nil
}

// readIDX reads a gzip'd IDX file of unsigned bytes with the given magic
// (0x0801: 1 dimension, 0x0803: 3 dimensions).
func readIDX(path string, magic uint32) ([]uint8, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not gzip data: %w", path, err)
	}
	var m uint32
	if err := binary.Read(zr, binary.BigEndian, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: reading IDX magic: %w", path, err)
	}
	if m != magic {
		return nil, nil, fmt.Errorf("%s: IDX magic %#08x, want %#08x (unsigned bytes, %d dimensions)", path, m, magic, magic&0xff)
	}
	dims := make([]int, magic&0xff)
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(zr, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: reading IDX dimension %d: %w", path, i, err)
		}
		if d == 0 || d > 1<<24 || (i > 0 && d > 4096) {
			return nil, nil, fmt.Errorf("%s: implausible IDX dimension %d = %d", path, i, d)
		}
		dims[i] = int(d)
		total *= int(d)
	}
	if total > 1<<31 {
		return nil, nil, fmt.Errorf("%s: IDX dimensions %v too large", path, dims)
	}
	data := make([]uint8, total)
	if _, err := io.ReadFull(zr, data); err != nil {
		return nil, nil, fmt.Errorf("%s: IDX data shorter than its dimensions %v: %w", path, dims, err)
	}
	if n, _ := io.Copy(io.Discard, zr); n > 0 {
		return nil, nil, fmt.Errorf("%s: %d bytes after the IDX data %v", path, n, dims)
	}
	if err := zr.Close(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, dims, nil
}

// ExportOptions select what ExportFashionMNIST writes.
type ExportOptions struct {
	// Split is "train" (60,000 images, default) or "test" (10,000).
	Split string
	// Classes limits the export to these FashionMNISTClasses names (all when
	// empty).
	Classes []string
	// Limit is the most images written per class (0: all).
	Limit int
}

// ExportFashionMNIST writes Fashion-MNIST from srcDir (FashionMNISTDir when
// empty) as class folders of 28×28 grey PNG files under dstDir
// (dstDir/<class>/<split>-<index>.png, index being the image's position in
// the IDX file), ready for Load with Channels 1. It returns the number of
// files written per class, in the order of opts.Classes (or
// FashionMNISTClasses).
func ExportFashionMNIST(srcDir, dstDir string, opts ExportOptions) ([]int, error) {
	if opts.Split == "" {
		opts.Split = "train"
	}
	if opts.Limit < 0 {
		return nil, errors.New("fashion-mnist: negative limit")
	}
	classes := opts.Classes
	if len(classes) == 0 {
		classes = FashionMNISTClasses
	}
	want := map[int]int{} // label -> position in classes
	for i, c := range classes {
		l := slices.Index(FashionMNISTClasses, c)
		if l < 0 {
			return nil, fmt.Errorf("fashion-mnist: unknown class %q (classes: %v)", c, FashionMNISTClasses)
		}
		if _, dup := want[l]; dup {
			return nil, fmt.Errorf("fashion-mnist: class %q given twice", c)
		}
		want[l] = i
	}
	m, err := ReadFashionMNIST(srcDir, opts.Split)
	if err != nil {
		return nil, err
	}
	for _, c := range classes {
		if err := os.MkdirAll(filepath.Join(dstDir, c), 0o755); err != nil {
			return nil, err
		}
	}
	counts := make([]int, len(classes))
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	prefix := opts.Split
	if prefix == "t10k" {
		prefix = "test"
	}
	for i := 0; i < m.N; i++ {
		k, ok := want[int(m.Labels[i])]
		if !ok || (opts.Limit > 0 && counts[k] >= opts.Limit) {
			continue
		}
		img := m.Image(i)
		g := &image.Gray{Pix: img.Pix, Stride: img.Width, Rect: image.Rect(0, 0, img.Width, img.Height)}
		p := filepath.Join(dstDir, classes[k], fmt.Sprintf("%s-%05d.png", prefix, i))
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		err = enc.Encode(f, g)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		counts[k]++
	}
	return counts, nil
}

// ExportSummary totals what ExportFashionMNIST wrote: the number of images
// and, per class, "tshirt-top 600, trouser 600". classes are those given to
// it (empty: all ten), counts what it returned.
func ExportSummary(classes []string, counts []int) (total int, perClass string) {
	if len(classes) == 0 {
		classes = FashionMNISTClasses
	}
	parts := make([]string, len(classes))
	for i, cl := range classes {
		total += counts[i]
		parts[i] = fmt.Sprintf("%s %d", cl, counts[i])
	}
	return total, strings.Join(parts, ", ")
}
