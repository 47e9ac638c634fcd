package metrics

import (
	"math"
	"slices"
	"testing"
)

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		c         Confusion
		accuracy  float64
		precision []float64
		recall    []float64
	}{
		{"perfect", Confusion{{3, 0}, {0, 2}}, 1, []float64{1, 1}, []float64{1, 1}},
		{"mixed", Confusion{{3, 1}, {2, 4}}, 0.7, []float64{0.6, 0.8}, []float64{0.75, 4.0 / 6}},
		// A class never predicted has precision 0; one with no examples recall 0.
		{"empty", Confusion{{2, 0, 0}, {1, 0, 0}, {0, 0, 0}}, 2.0 / 3, []float64{2.0 / 3, 0, 0}, []float64{1, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := make([]string, len(tc.c))
			ev, err := Evaluate(tc.c, names)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ev.Accuracy-tc.accuracy) > 1e-12 {
				t.Errorf("accuracy %v, want %v", ev.Accuracy, tc.accuracy)
			}
			for i, s := range ev.PerClass {
				if math.Abs(s.Precision-tc.precision[i]) > 1e-12 || math.Abs(s.Recall-tc.recall[i]) > 1e-12 {
					t.Errorf("class %d: precision %v recall %v, want %v %v", i, s.Precision, s.Recall, tc.precision[i], tc.recall[i])
				}
				f1 := 0.0
				if s.Precision+s.Recall > 0 {
					f1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
				}
				if s.F1 != f1 {
					t.Errorf("class %d: F1 %v, want %v", i, s.F1, f1)
				}
			}
		})
	}
	if _, err := Evaluate(Confusion{{1}}, []string{"a", "b"}); err == nil {
		t.Error("Evaluate accepted 2 names for a 1×1 matrix")
	}
}

func TestCompareProbabilities(t *testing.T) {
	a := [][]float32{{0.9, 0.1}, {0.4, 0.6}, {0.5, 0.5}}
	b := [][]float32{{0.8, 0.2}, {0.6, 0.4}, {0.5, 0.5}}
	c, err := CompareProbabilities(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Images != 3 || c.Agree != 2 || !slices.Equal(c.Disagree, []int{1}) {
		t.Errorf("agreement %d of %d, disagree %v", c.Agree, c.Images, c.Disagree)
	}
	if math.Abs(c.MaxAbsDiff-0.2) > 1e-6 || math.Abs(c.MeanAbsDiff-0.6/6) > 1e-6 {
		t.Errorf("max %v mean %v, want 0.2 and 0.1", c.MaxAbsDiff, c.MeanAbsDiff)
	}
	if _, err := CompareProbabilities(a, b[:2]); err == nil {
		t.Error("rows of different counts accepted")
	}
}

func TestArgMaxTies(t *testing.T) {
	// tf.argmax picks the first of equal maxima.
	if got := ArgMax([]float32{0.2, 0.4, 0.4}); got != 1 {
		t.Errorf("ArgMax = %d, want 1", got)
	}
}

func TestVariableDiffs(t *testing.T) {
	d := VariableDiffs(map[string][]float32{"w": {1, 2}, "b": {1}, "only_a": {0}}, map[string][]float32{"w": {1, 2.5}, "b": {1, 2}})
	if len(d) != 1 || d["w"] != 0.5 {
		t.Errorf("diffs %v, want only w: 0.5", d)
	}
}
