package dataset

import (
	"bufio"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// photo makes a smooth, photo-like test image (JPEG compresses it as it
// compresses photographs, unlike noise).
func photo(w, h int, seed int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := (y*w + x) * 4
			m.Pix[i] = uint8((x*3 + seed*17) ^ (y * 2))
			m.Pix[i+1] = uint8(x*y/(w/4+1) + seed)
			m.Pix[i+2] = uint8((x + y + seed*5) * 2)
			m.Pix[i+3] = 255
		}
	}
	return m
}

// photoTree writes n JPEG files of w×h over two class folders; with links > 0
// it writes only that many distinct files and makes the rest symbolic links.
func photoTree(tb testing.TB, dir string, n, w, h, distinct int) {
	tb.Helper()
	var srcs []string
	for i := range n {
		cls := []string{"cats", "dogs"}[i%2]
		p := filepath.Join(dir, cls, fmt.Sprintf("%s.%05d.jpg", cls, i))
		if i == 0 || i == 1 {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if distinct > 0 && i >= distinct {
			if err := os.Symlink(srcs[i%distinct], p); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, encJPEG(tb, photo(w, h, i)), 0o644); err != nil {
			tb.Fatal(err)
		}
		srcs = append(srcs, p)
	}
}

// BenchmarkPreprocess measures decode + resize + float32 of one 500×375
// JPEG (the typical Kaggle cats-vs-dogs size) on one goroutine.
func BenchmarkPreprocess(b *testing.B) {
	data := encJPEG(b, photo(500, 375, 1))
	var s scratch
	dst := make([]uint8, 128*128*3)
	x := make([]float32, len(dst))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		img, err := s.preprocess(data, 128, 3, 0, dst)
		if err != nil {
			b.Fatal(err)
		}
		img.Float32(x)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkLoadVsPython loads a folder of 400 500×375 JPEGs with Load (all
// CPUs) and with one worker, times the tutorial's Python loop (cv2.imread +
// cv2.resize + float32, testdata/bench.py) on the same folder, and reports
// images/s for each and the ratios. Run with -benchtime=1x.
func BenchmarkLoadVsPython(b *testing.B) {
	dir := b.TempDir()
	photoTree(b, dir, 400, 500, 375, 0)
	py := pythonPath(b)
	var goAll, goOne float64
	for range b.N {
		for _, workers := range []int{0, 1} {
			start := time.Now()
			set, err := Load(dir, Options{Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			rate := float64(set.Train.Len()) / time.Since(start).Seconds()
			if workers == 0 {
				goAll = rate
			} else {
				goOne = rate
			}
		}
	}
	b.StopTimer()
	out, err := exec.Command(py, filepath.Join("testdata", "bench.py"), dir, "128").CombinedOutput()
	if err != nil {
		b.Fatalf("bench.py: %v\n%s", err, out)
	}
	pyRate, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatalf("bench.py output %q", out)
	}
	b.ReportMetric(goAll, "tfcat-images/s")
	b.ReportMetric(goOne, "tfcat-1worker-images/s")
	b.ReportMetric(pyRate, "python-images/s")
	b.ReportMetric(goAll/pyRate, "ratio")
	b.ReportMetric(goOne/pyRate, "ratio-1worker")
}

// BenchmarkMemory25k measures the peak resident memory of a process that
// Loads 25,000 images at 128×128×3 (the target: at most 1.3 GB).
// The load runs in a child process (this test binary, TestMemoryChild) so
// that the peak is its own. The images are 100 distinct 256×192 JPEGs
// behind 25,000 file names. Run with -benchtime=1x.
func BenchmarkMemory25k(b *testing.B) {
	dir := b.TempDir()
	photoTree(b, dir, 25000, 256, 192, 100)
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TFCAT_MEMORY_CHILD="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var peak, images, secs float64
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "MEMORY "); i >= 0 {
				fmt.Sscanf(line[i:], "MEMORY %g %g %g", &peak, &images, &secs)
			}
		}
		if images != 25000 {
			b.Fatalf("child output:\n%s", out)
		}
		b.ReportMetric(peak/1e6, "peak-MB")
		b.ReportMetric(images/secs, "images/s")
		if peak > 1.3e9 {
			b.Errorf("peak resident memory %.0f MB, target 1300 MB; child:\n%s", peak/1e6, out)
		}
	}
}

// TestMemoryChild is BenchmarkMemory25k's child process; on its own it does
// nothing.
func TestMemoryChild(t *testing.T) {
	dir := os.Getenv("TFCAT_MEMORY_CHILD")
	if dir == "" {
		return
	}
	start := time.Now()
	set, err := Load(dir, Options{Size: 128, Channels: 3, ValidationSize: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	secs := time.Since(start).Seconds()
	n := set.Train.Len() + set.Validation.Len()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap alloc %d sys %d heapsys %d numgc %d totalalloc %d\n", ms.HeapAlloc>>20, ms.Sys>>20, ms.HeapSys>>20, ms.NumGC, ms.TotalAlloc>>20)
	fmt.Printf("MEMORY %d %d %g\n", peakRSS(t), n, secs)
}

// peakRSS is VmHWM from /proc/self/status, in bytes.
func peakRSS(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
