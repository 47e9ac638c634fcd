// Package testmodel makes the small seeded models that tfcat's tests save,
// export, serve and report on: a network built, initialised and, for
// Checkpoint, saved as tfcat train saves it; Fake, a model without
// TensorFlow for the serving packages' request-handling tests; and the
// images the serving tests send them.
//
// It is not part of package testenv because it imports tfgraph and
// tfsession, whose own tests import testenv: testenv importing them would be
// an import cycle. For the same reason their tests cannot use it.
package testmodel

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// Options says how a test model is built and saved. Every caller names its
// seed: Seed 0 means fresh random weights (tfgraph.BuildOptions), which no
// test comparing values wants.
type Options struct {
	Seed          int64 // tfgraph.BuildOptions.Seed
	InferenceOnly bool  // tfgraph.BuildOptions.InferenceOnly: no optimiser
	// Session runs the initialisation (and, from Session, the test's own
	// runs). An empty Device is the CPU, not tfsession's automatic choice, so
	// that a test model's values do not depend on the machine having a GPU.
	// The thread counts are the caller's to choose: the first session of a
	// process fixes TensorFlow's pools for the whole test binary.
	Session tfsession.SessionConfig

	// For Checkpoint only.
	Dir     string   // the checkpoint's folder; empty is a new "model" folder in t.TempDir()
	Classes []string // the class names the checkpoint records
	Step    int      // the training step it records
}

// Session builds net, opens a session on it and initialises its variables;
// the session is closed when the test ends.
func Session(t testing.TB, net network.Network, opt Options) *tfsession.Session {
	t.Helper()
	s := open(t, net, opt)
	t.Cleanup(func() { s.Close() })
	return s
}

// Serving is the model the serving packages' tests serve: the tutorial's
// network on side×side×channels images into 3 classes, seed 1, without the
// optimiser, on the CPU with 2 intra-op threads and 1 inter-op thread.
func Serving(t testing.TB, side, channels int) *tfsession.Session {
	t.Helper()
	return Session(t, network.Tutorial(3).WithInput(side, side, channels), Options{Seed: 1, InferenceOnly: true,
		Session: tfsession.SessionConfig{IntraOpThreads: 2, InterOpThreads: 1}})
}

// Checkpoint saves a freshly initialised net as tfsession's Session.Save does
// for tfcat train (the default checkpoint name, with opt's classes and step)
// and returns its folder.
func Checkpoint(t testing.TB, net network.Network, opt Options) string {
	t.Helper()
	s := open(t, net, opt)
	// Closed now rather than at the end of the test: a caller may save many
	// versions (the servables tests), each session holding its graph.
	defer s.Close()
	dir := opt.Dir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "model")
	}
	if _, err := s.Save(tfsession.SaveOptions{Dir: dir}, network.Info{Classes: opt.Classes, Step: opt.Step}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// open returns an initialised session of net; the caller closes it.
func open(t testing.TB, net network.Network, opt Options) *tfsession.Session {
	t.Helper()
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{Seed: opt.Seed, InferenceOnly: opt.InferenceOnly})
	if err != nil {
		t.Fatal(err)
	}
	cfg := opt.Session
	if cfg.Device == "" {
		cfg.Device = tfsession.DeviceCPU
	}
	s, err := tfsession.NewSession(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

// FakeSize is the number of values in one of Fake's images (8×8×3).
const FakeSize = 8 * 8 * 3

// Fake is a tfsession.Classifier of 8×8×3 images into 3 classes without
// TensorFlow, for tests of request handling: the probabilities of an image
// are (v/2, 1/2 − v/2, 1/2) where v is its first value, so that a reply shows
// which image it answers.
type Fake struct {
	// Delay is how long each Predict takes, for tests of timeouts and
	// concurrency limits.
	Delay time.Duration
	// Entered, when set, receives a value as Predict starts unless it is
	// full: a test learns that a request is running without blocking it.
	Entered chan struct{}
}

var _ tfsession.Classifier = Fake{}

func (Fake) InputSize() (int, int, int) { return 8, 8, 3 }
func (Fake) NumClasses() int            { return 3 }
func (Fake) Close() error               { return nil }

func (f Fake) Predict(x []float32, n int) ([]float32, error) {
	select {
	case f.Entered <- struct{}{}:
	default:
	}
	time.Sleep(f.Delay)
	out := make([]float32, 0, 3*n)
	for i := range n {
		v := x[i*FakeSize]
		out = append(out, v/2, 0.5-v/2, 0.5)
	}
	return out, nil
}

// Images returns n preprocessed images of size values each, uniform in
// [0, 1) and the same for the same seed.
func Images(n, size int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, n*size)
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// PNG is a w×h colour PNG whose channels differ, so that a channel-order
// mistake shows; seed shifts its values.
func PNG(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x*7) + seed, G: uint8(y * 5), B: uint8(x*y) + 3*seed, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
