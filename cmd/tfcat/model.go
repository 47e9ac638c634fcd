package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/tfgraph"
)

// Flags shared by the commands that load a model.
var (
	trustFlag   = &cli.BoolFlag{Name: "trust-graph", Usage: "run a checkpoint's graph even if it holds ops beyond what restoring and predicting need (only for files you trust)"}
	classesFlag = &cli.StringFlag{Name: "classes", Usage: "comma-separated class names in label order (for checkpoints that store none, such as the Python tutorial's)"}
	deviceFlag  = &cli.StringFlag{Name: "device", Value: "auto", Usage: "where to run: auto, /cpu:0 or /gpu:N"}
	threadsFlag = &cli.IntFlag{Name: "threads", Usage: "TensorFlow intra-op threads (0: one per core)"}
	batchFlag   = &cli.IntFlag{Name: "batch", Value: 32, Usage: "images per Session.Run"}
)

// loadedModel is a model ready to predict, with its class names.
type loadedModel struct {
	tfgraph.Classifier
	Path    string
	Classes []string
	// Variables reads the model's variables by name, where the model can.
	Variables func() (map[string][]float32, error)
}

// sessionConfig reads --device and --threads, resolving "auto" and checking an
// explicit GPU. It tells the user when auto falls back to the CPU.
func sessionConfig(c *cli.Context) (tfgraph.SessionConfig, error) {
	want := c.String("device")
	dev, err := tfgraph.ResolveDevice(want)
	if err != nil {
		return tfgraph.SessionConfig{}, err
	}
	if strings.EqualFold(want, tfgraph.DeviceAuto) && dev == tfgraph.DeviceCPU && !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, "tfcat: no GPU visible; running on /cpu:0")
	}
	threads := c.Int("threads")
	if threads < 0 {
		return tfgraph.SessionConfig{}, usagef("--threads %d must not be negative", threads)
	}
	return tfgraph.SessionConfig{Device: dev, IntraOpThreads: threads}, nil
}

// openModel reads --device and --threads and loads --model.
func openModel(c *cli.Context) (*loadedModel, error) {
	cfg, err := sessionConfig(c)
	if err != nil {
		return nil, err
	}
	return loadModel(c, c.String("model"), cfg)
}

// loadModel opens a checkpoint folder or prefix (tfcat's or the Python
// tutorial's), as predict.py does: import the .meta, restore, feed x:0.
func loadModel(c *cli.Context, path string, cfg tfgraph.SessionConfig) (*loadedModel, error) {
	if path == "" {
		return nil, usagef("--model is required")
	}
	if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if lm, ok, err := loadSavedModel(c, path, cfg); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return withClassFlag(c, lm)
	}
	prefix, err := tfgraph.ResolveCheckpoint(path)
	if err != nil {
		return nil, err
	}
	im, err := tfgraph.ImportCheckpoint(prefix, tfgraph.ImportOptions{Session: cfg, Trust: c.Bool("trust-graph")})
	if err != nil {
		return nil, err
	}
	lm := &loadedModel{Classifier: im, Path: prefix, Classes: im.Meta.Classes, Variables: im.Variables}
	return withClassFlag(c, lm)
}

// withClassFlag applies --classes, or names classes by index when the model
// stores no names.
func withClassFlag(c *cli.Context, lm *loadedModel) (*loadedModel, error) {
	if s := c.String("classes"); s != "" {
		names := splitList(s)
		if len(names) != lm.NumClasses() {
			lm.Close()
			return nil, usagef("--classes names %d classes, but the model has %d", len(names), lm.NumClasses())
		}
		lm.Classes = names
	}
	if len(lm.Classes) != lm.NumClasses() {
		lm.Classes = make([]string, lm.NumClasses())
		for i := range lm.Classes {
			lm.Classes[i] = fmt.Sprint(i)
		}
	}
	return lm, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// imageFiles expands the arguments: files as given, folders walked for image
// files (by extension), sorted.
func imageFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, errors.Unwrap(err))
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && dataset.IsImageFile(p) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no image files (jpg, jpeg, png, bmp, gif) in this folder", a)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

// prediction is one image's result.
type prediction struct {
	File  string
	Index int
	Probs []float32
	Err   error
}

// predictFiles runs the model over the files in batches. The next batch is
// decoded, on all cores, while the model runs the current one, so memory holds
// two batches, not the whole folder. A file that cannot be read gets its error
// and no probabilities.
func predictFiles(m tfgraph.Classifier, files []string, batch int) ([]prediction, error) {
	h, w, ch := m.InputSize()
	if h != w {
		return nil, fmt.Errorf("the model takes %dx%d images; tfcat's preprocessing makes square ones", h, w)
	}
	if batch <= 0 {
		return nil, usagef("--batch %d must be positive", batch)
	}
	size := h * w * ch
	preds := make([]prediction, len(files))
	for i, f := range files {
		preds[i].File = f
	}
	type job struct {
		idx []int // files in the batch that decoded
		x   []float32
	}
	jobs := make(chan job, 1)
	stop := make(chan struct{})
	go func() {
		defer close(jobs)
		workers := runtime.GOMAXPROCS(0)
		for start := 0; start < len(files); start += batch {
			end := min(start+batch, len(files))
			inputs := make([][]float32, end-start)
			var wg sync.WaitGroup
			next := make(chan int)
			for range min(workers, end-start) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						inputs[i-start], preds[i].Err = dataset.PreprocessFile(files[i], h, ch)
					}
				}()
			}
			for i := start; i < end; i++ {
				next <- i
			}
			close(next)
			wg.Wait()
			j := job{x: make([]float32, 0, (end-start)*size)}
			for i := start; i < end; i++ {
				if preds[i].Err == nil {
					j.idx = append(j.idx, i)
					j.x = append(j.x, inputs[i-start]...)
				}
			}
			if len(j.idx) == 0 {
				continue
			}
			select {
			case jobs <- j:
			case <-stop:
				return
			}
		}
	}()
	k := m.NumClasses()
	for j := range jobs {
		p, err := m.Predict(j.x, len(j.idx))
		if err != nil {
			close(stop)
			for range jobs {
			}
			return nil, err
		}
		for n, i := range j.idx {
			preds[i].Probs = p[n*k : (n+1)*k]
			preds[i].Index = tfgraph.ArgMax(preds[i].Probs)
		}
	}
	return preds, nil
}
