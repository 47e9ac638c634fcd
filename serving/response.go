package serving

import (
	"math"
	"strconv"

	"github.com/tfcat/tfcat/metrics"
)

// encodePredictions writes the predict reply for n rows of k probabilities:
// {"predictions": ...} for a row request, {"outputs": ...} for a columnar one;
// with one output its bare value, else one object per row (row format) or
// one per output (columnar), as TensorFlow Serving shapes them.
func encodePredictions(columnar bool, outputs []string, probs []float32, n, k int) []byte {
	b := make([]byte, 0, 32+n*(k*14+32))
	row := func(b []byte, i int) []byte {
		b = append(b, '[')
		for j, v := range probs[i*k : (i+1)*k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, v)
		}
		return append(b, ']')
	}
	value := func(b []byte, name string, i int) []byte {
		if name == ClassesKey {
			return strconv.AppendInt(b, int64(metrics.ArgMax(probs[i*k:(i+1)*k])), 10)
		}
		return row(b, i)
	}
	column := func(b []byte, name string) []byte {
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = value(b, name, i)
		}
		return append(b, ']')
	}
	if columnar {
		b = append(b, `{"outputs":`...)
		if len(outputs) == 1 {
			b = column(b, outputs[0])
		} else {
			b = append(b, '{')
			for o, name := range outputs {
				if o > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendQuote(b, name)
				b = append(b, ':')
				b = column(b, name)
			}
			b = append(b, '}')
		}
		return append(b, '}')
	}
	b = append(b, `{"predictions":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if len(outputs) == 1 {
			b = value(b, outputs[0], i)
			continue
		}
		b = append(b, '{')
		for o, name := range outputs {
			if o > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, name)
			b = append(b, ':')
			b = value(b, name, i)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendFloat writes v in the fewest digits that read back as the same
// float32; NaN and infinities as TensorFlow Serving writes them.
func appendFloat(b []byte, v float32) []byte {
	switch {
	case v != v:
		return append(b, "NaN"...)
	case math.IsInf(float64(v), 1):
		return append(b, "Infinity"...)
	case math.IsInf(float64(v), -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}
