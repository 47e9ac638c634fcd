package kserve

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// parseFloats reads the JSON data of an FP32 tensor of count values: numbers,
// flat or nested in arrays (row-major order, which the count checks, not the
// nesting). data is valid JSON (json.Unmarshal checked it).
func parseFloats(data []byte, count int) ([]float32, error) {
	x := make([]float32, 0, count)
	for i := 0; i < len(data); {
		switch c := data[i]; {
		case c == '[' || c == ']' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c != '-' && (c < '0' || c > '9'):
			return nil, invalid("input %s: FP32 data must be numbers (in arrays), found %s", inputKey, excerpt(data[i:]))
		}
		j := i + 1
		for j < len(data) && data[j] != ',' && data[j] != ']' && data[j] != ' ' && data[j] != '\t' && data[j] != '\n' && data[j] != '\r' {
			j++
		}
		if len(x) == count {
			return nil, invalid("input %s: more than the %d FP32 values of its shape", inputKey, count)
		}
		v, err := strconv.ParseFloat(string(data[i:j]), 32)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) && !math.IsInf(v, 0) {
				// Below float32's smallest: it rounds to zero.
				err = nil
			} else {
				return nil, invalid("input %s: %s is not a float32", inputKey, data[i:j])
			}
		}
		x = append(x, float32(v))
		i = j
	}
	if len(x) != count {
		return nil, invalid("input %s: %d FP32 values; its shape holds %d", inputKey, len(x), count)
	}
	return x, nil
}

// parseBase64 reads the JSON data of a BYTES tensor of n encoded images:
// strings (flat or nested), each the base64 of an image.
func parseBase64(data []byte, n int) ([][]byte, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, invalid("input %s: %v", inputKey, err)
	}
	var strs []string
	var walk func(any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case string:
			if len(strs) == n {
				return invalid("input %s: more than the %d BYTES elements of its shape", inputKey, n)
			}
			strs = append(strs, v)
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		default:
			return invalid("input %s: BYTES data in JSON are strings, each the base64 of a JPEG, PNG or BMP image (or send binary data)", inputKey)
		}
		return nil
	}
	if err := walk(v); err != nil {
		return nil, err
	}
	if len(strs) != n {
		return nil, invalid("input %s: %d BYTES elements; its shape holds %d", inputKey, len(strs), n)
	}
	imgs := make([][]byte, n)
	for i, s := range strs {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, invalid("input %s: element %d is not base64 (%v): BYTES data in JSON are the base64 of each image, or send binary data", inputKey, i, err)
		}
		imgs[i] = b
	}
	return imgs, nil
}

// appendFloat appends v as JSON, NaN and infinities as the v1 REST API
// writes them (NaN, Infinity, -Infinity).
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

// excerpt is the start of b, for an error message.
func excerpt(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}
