package serving_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tfcat/tfcat/serving"
)

// Config.OnBatch hears of each batch: the model version, its images and the
// requests merged into it.
func TestOnBatch(t *testing.T) {
	var (
		mu  sync.Mutex
		got []serving.Batch
	)
	srv, err := serving.New(constModel{}, serving.Config{Name: "pets", Version: 4, MaxBatch: 4, BatchWait: time.Minute,
		OnBatch: func(b serving.Batch) {
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 { // 2 requests of 2 images fill one batch of 4
		wg.Go(func() {
			if _, err := srv.Predict(context.Background(), serving.Input{N: 2, X: make([]float32, 2*4)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("OnBatch called %d times, want once: %+v", len(got), got)
	}
	b := got[0]
	if b.Model != "pets" || b.Version != 4 || b.Images != 4 || b.Requests != 2 || b.Err != nil || b.Duration < 0 {
		t.Errorf("OnBatch got %+v, want pets version 4, 4 images from 2 requests", b)
	}
}

// ReportServed reaches the Served of the request's context, and does nothing
// without one.
func TestReportServed(t *testing.T) {
	serving.ReportServed(context.Background(), "pets", 1)
	ctx, served := serving.WithServed(context.Background())
	if _, _, ok := served.Get(); ok {
		t.Fatal("a version reported before any was")
	}
	serving.ReportServed(context.WithValue(ctx, struct{}{}, 1), "pets", 3)
	if name, v, ok := served.Get(); !ok || name != "pets" || v != 3 {
		t.Errorf("Get() = %q %d %v, want pets 3", name, v, ok)
	}
}
