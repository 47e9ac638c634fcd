package serving

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tfcat/tfcat/internal/fuzzlimit"
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
	})
}

// BenchmarkParseRequest parses one tutorial-sized image (128×128×3) sent as
// a float tensor.
func BenchmarkParseRequest(b *testing.B) {
	x := images(1, 128*128*3, 9)
	body := []byte(`{"instances": [` + tensorJSON(x, 128, 128, 3) + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseRequest(body, 128, 128, 3, 1); err != nil {
			b.Fatal(err)
		}
	}
}
