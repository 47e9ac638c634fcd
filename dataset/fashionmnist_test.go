package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeIDX writes a gzip'd IDX file: magic, dimensions, data.
func writeIDX(t *testing.T, path string, magic uint32, dims []uint32, data []byte) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	binary.Write(zw, binary.BigEndian, magic)
	binary.Write(zw, binary.BigEndian, dims)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeMNIST writes a small IDX pair with n images labelled i%10.
func fakeMNIST(t *testing.T, dir, prefix string, n int) {
	img := make([]byte, n*28*28)
	for i := range img {
		img[i] = byte(i * 7)
	}
	lbl := make([]byte, n)
	for i := range lbl {
		lbl[i] = byte(i % 10)
	}
	writeIDX(t, filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"), 0x803, []uint32{uint32(n), 28, 28}, img)
	writeIDX(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"), 0x801, []uint32{uint32(n)}, lbl)
}

func TestExportFashionMNIST(t *testing.T) {
	src := t.TempDir()
	fakeMNIST(t, src, "t10k", 35)
	dst := t.TempDir()
	counts, err := ExportFashionMNIST(src, dst, ExportOptions{Split: "test", Classes: []string{"sneaker", "tshirt-top", "bag"}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(counts, []int{3, 3, 3}) {
		t.Errorf("counts %v", counts)
	}
	m, err := ReadFashionMNIST(src, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Files hold the IDX pixels exactly, as 28x28 grey PNG.
	for _, c := range []string{"sneaker", "tshirt-top", "bag"} {
		files, _ := filepath.Glob(filepath.Join(dst, c, "*.png"))
		if len(files) != 3 {
			t.Fatalf("%s: %d files", c, len(files))
		}
		for _, f := range files {
			img, err := DecodeFile(f, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			var idx int
			if _, err := fmt.Sscanf(filepath.Base(f), "test-%05d.png", &idx); err != nil {
				t.Fatal(err)
			}
			if FashionMNISTClasses[m.Labels[idx]] != c || !slices.Equal(img.Pix, m.Image(idx).Pix) || img.Width != 28 {
				t.Errorf("%s: wrong pixels or class", f)
			}
		}
	}
	// The export loads as a data set.
	set, err := Load(dst, Options{Size: 28, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.Classes, []string{"bag", "sneaker", "tshirt-top"}) || set.Train.Len() != 9 {
		t.Errorf("loaded %v, %d images", set.Classes, set.Train.Len())
	}
	if _, err := ExportFashionMNIST(src, dst, ExportOptions{Classes: []string{"T-shirt/top"}}); err == nil || !strings.Contains(err.Error(), "unknown class") {
		t.Errorf("unknown class: %v", err)
	}
	if _, err := ExportFashionMNIST(src, dst, ExportOptions{Split: "valid"}); err == nil {
		t.Error("bad split: no error")
	}
}

func TestReadFashionMNISTErrors(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, dir string)
		want  string
	}{
		{"missing", func(t *testing.T, dir string) {}, "no such file"},
		{"not gzip", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), []byte("plain"), 0o644)
		}, "not gzip"},
		{"labels as images", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x801, []uint32{3}, []byte{1, 2, 3})
		}, "IDX magic 0x00000801, want 0x00000803"},
		{"short data", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, []uint32{3, 28, 28}, make([]byte, 100))
		}, "shorter than its dimensions"},
		{"trailing data", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, []uint32{3}, []byte{1, 2, 3, 4})
		}, "bytes after the IDX data"},
		{"count mismatch", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, []uint32{2}, []byte{1, 2})
		}, "has 3 images but"},
		{"bad label", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, []uint32{3}, []byte{1, 12, 3})
		}, "label 12 of item 1"},
		{"zero dimension", func(t *testing.T, dir string) {
			fakeMNIST(t, dir, "train", 3)
			writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, []uint32{3, 0, 28}, nil)
		}, "implausible IDX dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.write(t, dir)
			_, err := ReadFashionMNIST(dir, "train")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestFashionMNISTInstalled reads the Debian package's files (the
// development machines and CI install dataset-fashion-mnist).
func TestFashionMNISTInstalled(t *testing.T) {
	for split, n := range map[string]int{"train": 60000, "test": 10000} {
		m, err := ReadFashionMNIST("", split)
		if err != nil {
			t.Fatalf("%v (install the Debian package dataset-fashion-mnist)", err)
		}
		if m.N != n || m.Rows != 28 || m.Cols != 28 {
			t.Errorf("%s: %d images of %dx%d", split, m.N, m.Rows, m.Cols)
		}
		per := make([]int, 10)
		for _, l := range m.Labels {
			per[l]++
		}
		for c, k := range per {
			if k != n/10 {
				t.Errorf("%s: class %s has %d images", split, FashionMNISTClasses[c], k)
			}
		}
	}
	dst := t.TempDir()
	counts, err := ExportFashionMNIST("", dst, ExportOptions{Split: "test", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(counts, []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}) {
		t.Errorf("counts %v", counts)
	}
}
