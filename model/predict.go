package model

import (
	"fmt"
	"io"
	"runtime"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/parallel"
	"github.com/tfcat/tfcat/metrics"
)

// Prediction is one image's result: Probabilities and the predicted Class
// (an index into Model.Classes), or Err when the file could not be read.
type Prediction struct {
	File          string
	Class         int
	Probabilities []float32
	Err           error
}

// ReportFailures writes each prediction's error to w, one line each
// prefixed "tfcat: ", and returns an error that counts them and names the
// first file, or nil when every file was predicted.
func ReportFailures(w io.Writer, preds []Prediction) error {
	var failed []string
	for _, p := range preds {
		if p.Err != nil {
			fmt.Fprintf(w, "tfcat: %v\n", p.Err)
			failed = append(failed, p.File)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images could not be read (first: %s)", len(failed), len(preds), failed[0])
	}
	return nil
}

// PredictFiles preprocesses the files as the tutorial does and predicts them
// in batches of batch images. The next batch is decoded, on all cores, while
// the model runs the current one, so memory holds two batches, not every
// file. A file that cannot be read gets its Err and no probabilities; the
// error PredictFiles returns is the model's.
func (m *Model) PredictFiles(files []string, batch int) ([]Prediction, error) {
	h, w, ch := m.InputSize()
	if h != w {
		return nil, fmt.Errorf("the model takes %dx%d images; tfcat's preprocessing makes square ones", h, w)
	}
	if batch <= 0 {
		return nil, fmt.Errorf("batch size %d must be positive", batch)
	}
	size, mode := h*w*ch, m.ResizeMode()
	preds := make([]Prediction, len(files))
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
		for start := 0; start < len(files); start += batch {
			end := min(start+batch, len(files))
			inputs := make([][]float32, end-start)
			parallel.For(end-start, runtime.GOMAXPROCS(0), func(_, k int) bool {
				inputs[k], preds[start+k].Err = dataset.PreprocessFileMode(files[start+k], h, ch, mode)
				return true
			})
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
			preds[i].Probabilities = p[n*k : (n+1)*k]
			preds[i].Class = metrics.ArgMax(preds[i].Probabilities)
		}
	}
	return preds, nil
}
