package trainer

import (
	"slices"
	"testing"
)

// TestParseScale reads the named scalings and MEAN/STD, and refuses the rest.
func TestParseScale(t *testing.T) {
	for _, c := range []struct {
		in        string
		mean, std []float64
		bad       bool
	}{
		{"", []float64{0}, []float64{255}, false},
		{"0,1", []float64{0}, []float64{255}, false},
		{"-1,1", []float64{127.5}, []float64{127.5}, false},
		{"0,255", []float64{0}, []float64{1}, false},
		{"caffe", []float64{103.939, 116.779, 123.68}, []float64{1}, false},
		{"torch", []float64{123.675, 116.28, 103.53}, []float64{58.395, 57.12, 57.375}, false},
		{"127.5/127.5", []float64{127.5}, []float64{127.5}, false},
		{"1,2,3/4,5,6", []float64{1, 2, 3}, []float64{4, 5, 6}, false},
		{"1/0", nil, nil, true},
		{"1/-2", nil, nil, true},
		{"1,2/3", []float64{1, 2}, nil, true},
		{"imagenet", nil, nil, true},
		{"a/b", nil, nil, true},
	} {
		mean, std, err := ParseScale(c.in)
		if c.bad != (err != nil) || (!c.bad && (!slices.Equal(mean, c.mean) || !slices.Equal(std, c.std))) {
			t.Errorf("ParseScale(%q) = %v, %v, %v", c.in, mean, std, err)
		}
	}
}
