package dataset

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tfcat/tfcat/internal/parallel"
	"github.com/tfcat/tfcat/pixels"
)

// Options configure Load and Open. The zero value gives the tutorial's
// settings: 128×128 BGR images, classes in folder-name order, no validation
// split, seed 0.
type Options struct {
	// Size is the side of the square images after resizing (default 128).
	Size int
	// Channels is 3 for BGR (default, as the tutorial) or 1 for grey (as
	// cv2.IMREAD_GRAYSCALE).
	Channels int
	// Classes names the class sub-folders in label order. Empty means every
	// sub-folder of the directory, sorted by name.
	Classes []string
	// ValidationSize is the size of the validation split: a fraction of the
	// images when below 1 (int(ValidationSize*n) images, as the tutorial), a
	// count when 1 or more. The validation images are the first ones after
	// shuffling; the rest are the training split.
	ValidationSize float64
	// Seed seeds the shuffle (and the per-epoch reshuffles).
	Seed int64
	// Reshuffle reshuffles a split each time NextBatch starts a new epoch.
	// The tutorial does not.
	Reshuffle bool
	// Strict makes the first unusable image file an error. By default such
	// files are skipped and listed in the Report.
	Strict bool
	// MaxPixels limits width×height of each image before decoding: 0 means
	// DefaultMaxPixels, negative means no limit.
	MaxPixels int
	// Workers is the number of images decoded in parallel (default: all
	// CPUs, runtime.GOMAXPROCS).
	Workers int
	// Resize is how images become Size×Size: Stretch (default, the
	// tutorial's cv2.resize), Pad or Crop.
	Resize pixels.ResizeMode
}

func (o *Options) normalize() error {
	if o.Size == 0 {
		o.Size = 128
	}
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	mode, err := pixels.ParseResizeMode(string(o.Resize))
	if err != nil {
		return err
	}
	o.Resize = mode
	switch {
	case o.Size < 0 || o.Size > 1<<14:
		return fmt.Errorf("invalid image size %d", o.Size)
	case o.Channels != 1 && o.Channels != 3:
		return fmt.Errorf("channels must be 1 or 3, not %d", o.Channels)
	case math.IsNaN(o.ValidationSize) || o.ValidationSize < 0 || math.IsInf(o.ValidationSize, 0):
		return fmt.Errorf("invalid validation size %v", o.ValidationSize)
	case o.ValidationSize >= 1 && o.ValidationSize != math.Trunc(o.ValidationSize):
		return fmt.Errorf("validation size %v: a count must be a whole number (a fraction must be below 1)", o.ValidationSize)
	}
	return nil
}

// validationCount is the tutorial's int(validation_size * n), or the count.
func (o *Options) validationCount(n int) (int, error) {
	v := int(o.ValidationSize)
	if o.ValidationSize < 1 {
		v = int(o.ValidationSize * float64(n))
	}
	if v >= n && n > 0 {
		return 0, fmt.Errorf("validation size %v leaves no training images out of %d", o.ValidationSize, n)
	}
	return v, nil
}

// Problem is an image file that could not be used.
type Problem struct {
	Path string // the file
	Err  error  // what is wrong with it; wraps ErrCorrupt, ErrFormat or ErrTooLarge when it is the image
}

// String formats the problem as "path: error".
func (p Problem) String() string { return fmt.Sprintf("%s: %v", p.Path, p.Err) }

// Report describes what Load or Open found in the directory.
type Report struct {
	Dir      string   // the directory given to Load or Open
	Classes  []string // class names in label order
	PerClass []int    // usable images per class (for Open: listed, less those that failed so far)
	Images   int      // usable images in all
	// Ignored lists entries that are not image files: files without an
	// image extension, hidden entries (name starting with "."), and
	// non-folder entries beside the class folders.
	Ignored []string
	// Skipped lists image files that could not be decoded, in listing order.
	Skipped []Problem
}

// String summarises the report in a few lines, naming at most 10 skipped
// files.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d images in %d classes (", r.Dir, r.Images, len(r.Classes))
	for i, c := range r.Classes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", c, r.PerClass[i])
	}
	fmt.Fprintf(&b, "); %d other entries ignored; %d image files skipped", len(r.Ignored), len(r.Skipped))
	for i, p := range r.Skipped {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(r.Skipped)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return b.String()
}

// example is one listed image file.
type example struct {
	path  string
	label int
	slot  int // index of its pixels in the store (Load), -1 when streaming
}

// listing is the result of scanning a directory.
type listing struct {
	classes []string
	files   []example
	report  Report
}

func list(dir string, classes []string) (*listing, error) {
	l := &listing{report: Report{Dir: dir}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	isDir := func(p string) bool {
		st, err := os.Stat(p) // follows symbolic links
		return err == nil && st.IsDir()
	}
	if len(classes) > 0 {
		seen := map[string]bool{}
		for _, c := range classes {
			switch {
			case c == "" || c == "." || c == ".." || strings.ContainsAny(c, `/\`):
				return nil, fmt.Errorf("%s: invalid class name %q", dir, c)
			case seen[c]:
				return nil, fmt.Errorf("%s: class %q given twice", dir, c)
			case !isDir(filepath.Join(dir, c)):
				return nil, fmt.Errorf("%s: class %q has no folder %s", dir, c, filepath.Join(dir, c))
			}
			seen[c] = true
		}
		l.classes = slices.Clone(classes)
		for _, e := range entries {
			if !seen[e.Name()] {
				l.report.Ignored = append(l.report.Ignored, filepath.Join(dir, e.Name()))
			}
		}
	} else {
		for _, e := range entries { // os.ReadDir sorts by name
			p := filepath.Join(dir, e.Name())
			if strings.HasPrefix(e.Name(), ".") || !isDir(p) {
				l.report.Ignored = append(l.report.Ignored, p)
				continue
			}
			l.classes = append(l.classes, e.Name())
		}
	}
	switch len(l.classes) {
	case 0:
		return nil, fmt.Errorf("%s: no class folders: the directory needs one sub-folder of images per class", dir)
	case 1:
		return nil, fmt.Errorf("%s: only one class folder (%s): a classifier needs at least two", dir, l.classes[0])
	}
	l.report.Classes = l.classes
	l.report.PerClass = make([]int, len(l.classes))
	for label, c := range l.classes {
		cdir := filepath.Join(dir, c)
		files, err := os.ReadDir(cdir)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, f := range files {
			p := filepath.Join(cdir, f.Name())
			if strings.HasPrefix(f.Name(), ".") || !IsImageFile(f.Name()) {
				l.report.Ignored = append(l.report.Ignored, p)
				continue
			}
			l.files = append(l.files, example{path: p, label: label, slot: -1})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: class %q has no image files (%s)", cdir, c, strings.Join(ImageExtensions, ", "))
		}
		l.report.PerClass[label] = n
	}
	l.report.Images = len(l.files)
	return l, nil
}

// Set is a data set of labelled images split for training and validation.
type Set struct {
	// Classes are the class names in label order.
	Classes []string
	// Size and Channels describe every image: Size×Size×Channels values.
	Size, Channels int
	// Train and Validation are the two splits; Validation may be empty.
	Train, Validation *Split

	mu     sync.Mutex
	report Report
}

// ImageLen is the number of values in one image: Size*Size*Channels.
func (s *Set) ImageLen() int { return s.Size * s.Size * s.Channels }

// Report returns what loading found: classes, counts, ignored entries and
// skipped files (for a streaming Set, those skipped so far).
func (s *Set) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report
	r.Classes = slices.Clone(r.Classes)
	r.PerClass = slices.Clone(r.PerClass)
	r.Ignored = slices.Clone(r.Ignored)
	r.Skipped = slices.Clone(r.Skipped)
	return r
}

func (s *Set) skip(e example, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.Skipped = append(s.report.Skipped, Problem{Path: e.path, Err: err})
	s.report.PerClass[e.label]--
	s.report.Images--
}

// Load reads a directory with one sub-folder of images per class, decodes
// and resizes every image in parallel (see Preprocess for the exact
// arithmetic), holds them as uint8, shuffles them with opts.Seed and splits
// them into validation and training sets. Unusable image files are skipped
// and listed in the Report unless opts.Strict is set. A class folder
// without image files, a single class, and a class whose files are all
// unusable are errors.
func Load(dir string, opts Options) (*Set, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	l, err := list(dir, opts.Classes)
	if err != nil {
		return nil, err
	}
	imgLen := opts.Size * opts.Size * opts.Channels
	n := len(l.files)
	if n > math.MaxInt/imgLen {
		return nil, fmt.Errorf("%s: %d images of %d bytes do not fit in memory", dir, n, imgLen)
	}
	pix := make([]uint8, n*imgLen)
	errs := make([]error, n)
	var failed atomic.Bool
	var garbage atomic.Int64
	scr := make([]scratch, max(min(opts.Workers, n), 1))
	parallel.For(n, len(scr), func(w, i int) bool {
		s := &scr[w]
		f := l.files[i]
		data, err := s.readFile(f.path)
		if err == nil {
			f := Format(data)
			if f == "png" || f == "gif" {
				// image/png and image/gif allocate per image: with a
				// large live heap the collector would let that
				// garbage pile up, so nudge it.
				if garbage.Add(int64(len(data))*8) > 256<<20 {
					garbage.Store(0)
					runtime.GC()
				}
			}
			_, err = s.preprocessMode(data, opts.Size, opts.Channels, opts.MaxPixels, opts.Resize, pix[i*imgLen:(i+1)*imgLen])
		}
		if err != nil {
			errs[i] = err
			if opts.Strict {
				failed.Store(true)
				return false
			}
		}
		return true
	})

	set := &Set{Classes: l.classes, Size: opts.Size, Channels: opts.Channels, report: l.report}
	// Drop unusable files, compacting the pixels in place.
	var good []example
	for i, f := range l.files {
		if errs[i] != nil {
			if opts.Strict {
				return nil, fmt.Errorf("%s: %w", f.path, errs[i])
			}
			set.skip(f, errs[i])
			continue
		}
		if failed.Load() {
			continue // strict, and not every file was decoded
		}
		k := len(good)
		if k != i {
			copy(pix[k*imgLen:(k+1)*imgLen], pix[i*imgLen:(i+1)*imgLen])
		}
		f.slot = k
		good = append(good, f)
	}
	for c, cnt := range set.report.PerClass {
		if cnt == 0 {
			return nil, fmt.Errorf("%s: class %q: none of its image files could be used (%d skipped)", dir, l.classes[c], len(set.report.Skipped))
		}
	}
	st := &store{pix: pix[:len(good)*imgLen], imgLen: imgLen, mode: opts.Resize}
	if err := set.split(good, st, opts); err != nil {
		return nil, err
	}
	return set, nil
}

// Open lists a directory as Load does but decodes nothing up front: each
// NextBatch reads and decodes the images it returns (in parallel), so the
// directory may be larger than memory. Shuffling, the split and the
// batches are those Load gives for the same files and seed. An image file
// found unusable while batching is skipped, listed in the Report and
// replaced by the next one (or, with opts.Strict, NextBatch returns the
// error).
func Open(dir string, opts Options) (*Set, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	l, err := list(dir, opts.Classes)
	if err != nil {
		return nil, err
	}
	set := &Set{Classes: l.classes, Size: opts.Size, Channels: opts.Channels, report: l.report}
	st := &store{imgLen: opts.Size * opts.Size * opts.Channels, stream: true,
		maxPixels: opts.MaxPixels, mode: opts.Resize, workers: opts.Workers, strict: opts.Strict, set: set}
	if err := set.split(l.files, st, opts); err != nil {
		return nil, err
	}
	return set, nil
}

// split shuffles the examples and cuts them into the two splits.
func (s *Set) split(files []example, st *store, opts Options) error {
	rng := newRand(opts.Seed)
	shuffle(rng, files)
	v, err := opts.validationCount(len(files))
	if err != nil {
		return fmt.Errorf("%s: %w", s.report.Dir, err)
	}
	mk := func(ex []example, stream uint64) *Split {
		return &Split{
			examples: ex, store: st, classes: len(s.Classes), size: s.Size, channels: s.Channels,
			reshuffle: opts.Reshuffle, rng: newRandStream(opts.Seed, stream),
		}
	}
	s.Validation = mk(slices.Clip(files[:v]), 1)
	s.Train = mk(files[v:], 2)
	return nil
}

// errEmpty is returned by NextBatch on a split without images.
var errEmpty = errors.New("the split has no images")
