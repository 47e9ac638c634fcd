package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
)

// FuzzParseRequest feeds arbitrary bodies to the predict request parser: it
// must never panic nor break fuzzlimit's time and memory limits, a request it accepts must hold 1..maxN instances and
// exactly their values, and, NaN and Infinity aside, it accepts only valid
// JSON. CI runs it for a fixed time:
//
//	go test ./serving/ -run '^$' -fuzz FuzzParseRequest -fuzztime 20s
func FuzzParseRequest(f *testing.F) {
	one := `[[[0.5],[1]],[[-2e-3],[0]]]`
	for _, seed := range []string{
		`{"instances": [` + one + `]}`,
		`{"instances": [` + one + `,` + one + `], "signature_name": "serving_default"}`,
		`{"inputs": [` + one + `]}`,
		`{"inputs": {"images": [` + one + `]}}`,
		`{"inputs": {"b64": "iVBORw0KGgo="}}`,
		`{"instances": [{"b64": "aGVsbG8="}, {"images": ` + one + `}, {"images": {"b64": "AAAA"}}]}`,
		`{"instances": [[[[NaN],[Infinity]],[[-Infinity],[1E+2]]]], "output_filter": ["classes"]}`,
		`{"inputs": [{"images": ` + one + `}, {"b64": "aGk-_w=="}, [[[-0],[1e39]],[[0.1],[-3.4028235e38]]]]}`,
		`{"inputs": {"images": {"b64": "aGVsbG8"}}}`,
		`{"instances": [{"b64": "a\u0047VsbG8="}, ` + one + `], "x": [NaN, "NaN\"", -Infinity]}`,
		`{"instances": [` + one + `], "inputs": [` + one + `]}`,
		`{"x": {"y": [true, false, null, "s\u00e9\ud83d\ude00\n"]}, "instances": []}`,
		`{"instances": [[[[1],[2]],[[3],[4],[5]]]]}`,
		`{"instances": [[[[01],[2]],[[3],[4]]]]}`,
		`{"instances": [`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	const h, w, c, maxN = 2, 2, 1, 8
	f.Fuzz(func(t *testing.T, data []byte) {
		var r *request
		var err error
		fuzzlimit.Check(t, "parsing a request", func() { r, err = parseRequest(data, h, w, c, maxN) })
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.n < 1 || r.n > maxN || len(r.x) != r.n*h*w*c || len(r.images) != r.n {
			t.Fatalf("accepted %d instances with %d values and %d image slots", r.n, len(r.x), len(r.images))
		}
		for i, img := range r.images {
			if img != nil && len(img) == 0 {
				t.Fatalf("instance %d: an empty image", i)
			}
		}
		if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		// The values themselves, against encoding/json's reading.
		want, err := referenceRequest(data, h, w, c)
		if err != nil {
			t.Fatalf("accepted %q, which encoding/json reads as no request: %v", data, err)
		}
		sameImage := func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }
		if want.n != r.n || want.columnar != r.columnar || !sameFloats(want.x, r.x) || !slices.EqualFunc(want.images, r.images, sameImage) {
			t.Fatalf("%q: parsed %d instances (columnar %v), values %v, images %q; encoding/json reads %d (columnar %v), values %v, images %q",
				data, r.n, r.columnar, r.x, r.images, want.n, want.columnar, want.x, want.images)
		}
	})
}

// sameFloats compares bit for bit, NaN equal to NaN.
func sameFloats(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool {
		return x == y && math.Signbit(float64(x)) == math.Signbit(float64(y)) || x != x && y != y
	})
}

// referenceRequest reads a predict request with encoding/json, independently
// of the parser's lexer: the instances under "instances", or under
// "inputs" (a list, {"b64": ...}, or {"images": a list or one instance});
// each a [h][w][c] list of numbers (float64 rounded to float32, as
// TensorFlow Serving converts them), {"b64": ...} or {"images": ...}. The
// parser's NaN, Infinity and -Infinity are quoted first so that
// encoding/json reads them (as strings). It is only for requests the parser
// accepted: it checks their values, not their grammar.
func referenceRequest(data []byte, h, w, c int) (*request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(quoteNonFinite(data), &top); err != nil {
		return nil, err
	}
	r := &request{}
	named := false // the instances are under "images" already
	raw, ok := top["instances"]
	if !ok {
		if raw, ok = top["inputs"]; !ok {
			return nil, errors.New("no instances or inputs")
		}
		r.columnar = true
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			if _, ok := obj["b64"]; ok {
				return r, referenceInstance(r, raw, h, w, c, false)
			}
			if raw, ok = obj[InputKey]; !ok || len(obj) != 1 {
				return nil, fmt.Errorf("inputs object %s", raw)
			}
			named = true
			if json.Unmarshal(raw, &obj) == nil {
				return r, referenceInstance(r, raw, h, w, c, true)
			}
		}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	for _, inst := range list {
		if err := referenceInstance(r, inst, h, w, c, named); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// referenceInstance appends one instance to r.
func referenceInstance(r *request, raw json.RawMessage, h, w, c int, named bool) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		if len(obj) != 1 {
			return fmt.Errorf("instance object %s", raw)
		}
		if v, ok := obj[InputKey]; ok && !named {
			return referenceInstance(r, v, h, w, c, true)
		}
		var s string
		if err := json.Unmarshal(obj["b64"], &s); err != nil {
			return fmt.Errorf("instance %s: %v", raw, err)
		}
		enc := base64.RawStdEncoding
		if strings.ContainsAny(s, "-_") {
			enc = base64.RawURLEncoding
		}
		img, err := enc.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return err
		}
		r.n++
		r.images = append(r.images, img)
		r.x = append(r.x, make([]float32, h*w*c)...)
		return nil
	}
	var t [][][]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&t); err != nil {
		return err
	}
	if len(t) != h {
		return fmt.Errorf("%d rows", len(t))
	}
	for _, row := range t {
		if len(row) != w {
			return fmt.Errorf("%d columns", len(row))
		}
		for _, px := range row {
			if len(px) != c {
				return fmt.Errorf("%d channels", len(px))
			}
			for _, v := range px {
				var f float64
				switch v := v.(type) {
				case json.Number:
					var err error
					if f, err = strconv.ParseFloat(string(v), 64); err != nil {
						return err
					}
				case string: // quoted by quoteNonFinite
					f = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[v]
				default:
					return fmt.Errorf("value %v", v)
				}
				r.x = append(r.x, float32(f))
			}
		}
	}
	r.n++
	r.images = append(r.images, nil)
	return nil
}

// quoteNonFinite quotes the NaN, Infinity and -Infinity outside strings.
func quoteNonFinite(data []byte) []byte {
	var out []byte
	inString := false
	for i := 0; i < len(data); i++ {
		b := data[i]
		switch {
		case inString:
			if b == '\\' && i+1 < len(data) {
				out = append(out, b)
				i++
				b = data[i]
			} else if b == '"' {
				inString = false
			}
		case b == '"':
			inString = true
		default:
			for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
				if bytes.HasPrefix(data[i:], []byte(tok)) {
					out = append(out, '"')
					out = append(out, tok...)
					b = '"'
					i += len(tok) - 1
					break
				}
			}
		}
		out = append(out, b)
	}
	return out
}

// BenchmarkParseRequest parses one tutorial-sized image (128×128×3) sent as
// a float tensor.
func BenchmarkParseRequest(b *testing.B) {
	x := testmodel.Images(1, 128*128*3, 9)
	body := []byte(`{"instances": [` + tensorJSON(x, 128, 128, 3) + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseRequest(body, 128, 128, 3, 1); err != nil {
			b.Fatal(err)
		}
	}
}
