package tfsession

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// mnistSplit holds Fashion-MNIST examples as the network's inputs.
type mnistSplit struct {
	x       []float32 // n×28×28×1
	labels  []int
	classes int
}

// fashion reads one split of Debian's dataset-fashion-mnist, keeping the given
// labels (renumbered 0, 1, ... in that order; all ten when keep is empty).
func fashion(t testing.TB, split string, keep ...int) mnistSplit {
	t.Helper()
	m, err := dataset.ReadFashionMNIST("", split)
	if err != nil {
		t.Fatalf("%v (install Debian's dataset-fashion-mnist: scripts/setup-debian.sh)", err)
	}
	remap := map[int]int{}
	for i, k := range keep {
		remap[k] = i
	}
	s := mnistSplit{classes: len(keep)}
	if len(keep) == 0 {
		s.classes = 10
	}
	for i := 0; i < m.N; i++ {
		l := int(m.Labels[i])
		if len(keep) > 0 {
			var ok bool
			if l, ok = remap[l]; !ok {
				continue
			}
		}
		s.x = append(s.x, m.Image(i).Float32(nil)...)
		s.labels = append(s.labels, l)
	}
	return s
}

func (s mnistSplit) batch(idx []int, b *Batch) {
	const img = 28 * 28
	b.N = len(idx)
	b.X, b.Y = b.X[:0], make([]float32, len(idx)*s.classes)
	for j, i := range idx {
		b.X = append(b.X, s.x[i*img:(i+1)*img]...)
		b.Y[j*s.classes+s.labels[i]] = 1
	}
}

// accuracy evaluates the model on every example of s.
func accuracy(t testing.TB, sess *Session, s mnistSplit) float64 {
	var b Batch
	correct := 0
	for start := 0; start < len(s.labels); start += 500 {
		idx := make([]int, 0, 500)
		for i := start; i < min(start+500, len(s.labels)); i++ {
			idx = append(idx, i)
		}
		s.batch(idx, &b)
		_, acc, err := sess.Evaluate(&b)
		if err != nil {
			t.Fatal(err)
		}
		correct += int(acc*float32(b.N) + 0.5)
	}
	return float64(correct) / float64(len(s.labels))
}

// TestLearnsFashionMNIST: the tutorial's layers at 28×28×1, two classes
// (T-shirt/top vs Trouser) of real data, batch 32: the validation accuracy
// reaches 97% within 300 iterations, for every seed tried. At the tutorial's
// learning rate (1e-4) 300 steps are too few to be sure of it (seed 2 gave
// 0.971, seed 7 0.961), so the test uses 1e-3, the rate tfcat's 28×28 demo and
// benchmark use too.
func TestLearnsFashionMNIST(t *testing.T) {
	for _, seed := range []int64{2, 7} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { learnFashion(t, seed) })
	}
}

func learnFashion(t *testing.T, seed int64) {
	all := fashion(t, "train", 0, 1)
	// The tutorial's split: shuffle, the first 20% for validation.
	r := rand.New(rand.NewPCG(1, 1))
	perm := r.Perm(len(all.labels))
	nValid := len(perm) / 5
	valid := mnistSplit{classes: 2}
	for _, i := range perm[:nValid] {
		valid.x = append(valid.x, all.x[i*784:(i+1)*784]...)
		valid.labels = append(valid.labels, all.labels[i])
	}
	train := perm[nValid:]

	net := network.Tutorial(2).WithInput(28, 28, 1)
	net.LearningRate = 1e-3
	sess := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: seed}))
	if err := sess.Init(); err != nil {
		t.Fatal(err)
	}
	var b Batch
	best, bestStep := 0.0, 0
	for step := 1; step <= 300; step++ {
		start := ((step - 1) * 32) % (len(train) - 32)
		all.batch(train[start:start+32], &b)
		if _, err := sess.Step(&b); err != nil {
			t.Fatal(err)
		}
		if step%25 == 0 {
			if acc := accuracy(t, sess, valid); acc > best {
				best, bestStep = acc, step
			}
		}
	}
	t.Logf("best validation accuracy %.4f at step %d (%d validation images)", best, bestStep, nValid)
	if best < 0.97 {
		t.Errorf("validation accuracy %.4f after 300 steps, want >= 0.97", best)
	}
}

// BenchmarkFashionMNIST10 trains the tutorial's architecture at 28×28×1 on all
// ten classes of the full training set for a fixed budget of 3 epochs and
// reports the test-set accuracy, to set beside the dataset's published CNN
// baselines (3 conv + 2 FC: 0.907; TensorFlow's 2 conv + pooling tutorial:
// 0.916). Run: go test -run=^$ -bench=FashionMNIST10 -benchtime=1x ./tfsession/
func BenchmarkFashionMNIST10(b *testing.B) {
	train, test := fashion(b, "train"), fashion(b, "test")
	const epochs, batchSize = 3, 32
	for range b.N {
		net := network.Tutorial(10).WithInput(28, 28, 1)
		net.LearningRate = 1e-3
		sess := mustSession(b, mustBuild(b, net, tfgraph.BuildOptions{Seed: 2}))
		if err := sess.Init(); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		var batch Batch
		for range epochs {
			perm := r.Perm(len(train.labels))
			for start := 0; start+batchSize <= len(perm); start += batchSize {
				train.batch(perm[start:start+batchSize], &batch)
				if _, err := sess.Step(&batch); err != nil {
					b.Fatal(err)
				}
			}
		}
		acc := accuracy(b, sess, test)
		b.ReportMetric(acc, "test-accuracy")
		b.Logf("10 classes, %d epochs: test accuracy %.4f (published baselines: 3 conv + 2 FC 0.907, 2 conv + pooling 0.916)", epochs, acc)
	}
}
