package serving

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// request is a parsed predict request: n images, each either a float tensor
// already in x or encoded bytes in images[i] still to preprocess.
type request struct {
	signature string
	columnar  bool     // "inputs" rather than "instances"
	outputs   []string // output_filter, when given
	n         int
	x         []float32 // n × h×w×c values; zero where images[i] != nil
	images    [][]byte  // encoded images, by instance; nil entries are tensors
}

// requestError is a request TensorFlow Serving would call INVALID_ARGUMENT: HTTP 400.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{fmt.Sprintf(format, args...)}
}

// parser reads a predict request with a lexer, checking the request grammar
// and the image shapes as it goes.
type parser struct {
	lexer
	// the image shape each instance has, and the most instances accepted
	h, w, c int
	maxN    int
}

// parseRequest parses a TensorFlow Serving predict request for a model taking
// h×w×c float32 images, of at most maxN instances. An instance is a [h][w][c]
// list of numbers, {"b64": "<encoded image>"}, or either of these named:
// {"images": ...}.
func parseRequest(data []byte, h, w, c, maxN int) (*request, error) {
	p := &parser{lexer: lexer{data: data}, h: h, w: w, c: c, maxN: maxN}
	r := &request{}
	if err := p.request(r); err != nil {
		return nil, err
	}
	return r, nil
}

func (p *parser) request(r *request) error {
	p.ws()
	if !p.consume('{') {
		return p.syntax("the request must be a JSON object")
	}
	seen := map[string]bool{}
	first := true
	for {
		p.ws()
		if p.consume('}') {
			break
		}
		if !first {
			if !p.consume(',') {
				return p.syntax("expected ',' or '}' in the request object")
			}
			p.ws()
		}
		first = false
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.colon(); err != nil {
			return err
		}
		if seen[key] {
			return badRequest("the request has the key %q twice", key)
		}
		seen[key] = true
		switch key {
		case "signature_name":
			if r.signature, err = p.str(); err != nil {
				return err
			}
		case "instances":
			if seen["inputs"] {
				return badRequest("the request has both \"instances\" (row format) and \"inputs\" (columnar format); use one")
			}
			if err := p.instances(r, false); err != nil {
				return err
			}
		case "inputs":
			if seen["instances"] {
				return badRequest("the request has both \"instances\" (row format) and \"inputs\" (columnar format); use one")
			}
			r.columnar = true
			if err := p.inputs(r); err != nil {
				return err
			}
		case "output_filter":
			if r.outputs, err = p.strings(); err != nil {
				return err
			}
		default:
			if err := p.skip(); err != nil {
				return err
			}
		}
	}
	p.ws()
	if p.pos != len(p.data) {
		return p.syntax("unexpected data after the request object")
	}
	if !seen["instances"] && !seen["inputs"] {
		return badRequest("missing \"instances\" or \"inputs\" key")
	}
	if r.n == 0 {
		return badRequest("the request holds no instances")
	}
	return nil
}

// inputs reads the columnar value: the batch itself, {"images": batch}, or
// one encoded image {"b64": ...}.
func (p *parser) inputs(r *request) error {
	if p.peek() != '{' {
		return p.instances(r, false)
	}
	start := p.pos
	p.pos++
	p.ws()
	key, err := p.str()
	if err != nil {
		return err
	}
	if key == "b64" {
		p.pos = start
		return p.instance(r, 0, false)
	}
	if key != InputKey {
		return badRequest("unknown input %q: the signature's only input is %q", key, InputKey)
	}
	if err := p.colon(); err != nil {
		return err
	}
	if p.peek() == '{' {
		if err := p.instance(r, 0, true); err != nil {
			return err
		}
	} else if err := p.instances(r, true); err != nil {
		return err
	}
	p.ws()
	if !p.consume('}') {
		return badRequest("\"inputs\" names more than one input: the signature's only input is %q", InputKey)
	}
	return nil
}

// instances reads a list of instances.
func (p *parser) instances(r *request, named bool) error {
	if !p.consume('[') {
		return badRequest("expected a list of instances at offset %d", p.pos)
	}
	p.ws()
	if p.consume(']') {
		return nil
	}
	for {
		p.ws()
		if err := p.instance(r, r.n, named); err != nil {
			return err
		}
		p.ws()
		if p.consume(']') {
			return nil
		}
		if !p.consume(',') {
			return p.syntax("expected ',' or ']' in the list of instances")
		}
	}
}

// instance reads instance i: a tensor, {"b64": ...} or, unless named
// already, {"images": tensor-or-b64}.
func (p *parser) instance(r *request, i int, named bool) error {
	size := p.h * p.w * p.c
	if r.n >= p.maxN && (p.peek() == '[' || p.peek() == '{') {
		return badRequest("more than %d instances in one request", p.maxN)
	}
	switch p.peek() {
	case '[':
		r.n++
		r.images = append(r.images, nil)
		off := len(r.x)
		r.x = append(r.x, make([]float32, size)...)
		return p.tensor(r.x[off:off+size], i)
	case '{':
		p.pos++
		p.ws()
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.colon(); err != nil {
			return err
		}
		switch {
		case key == "b64":
			s, err := p.str()
			if err != nil {
				return err
			}
			img, err := decodeBase64(s)
			if err != nil {
				return badRequest("instance %d: the b64 value is not base64: %v", i, err)
			}
			r.n++
			r.images = append(r.images, img)
			r.x = append(r.x, make([]float32, size)...)
		case key == InputKey && !named:
			if err := p.instance(r, i, true); err != nil {
				return err
			}
		case key == InputKey:
			return badRequest("instance %d: %q nested in itself", i, InputKey)
		default:
			return badRequest("instance %d: unknown key %q: an instance is a [%d][%d][%d] list of numbers, {\"b64\": \"...\"} or {%q: ...}", i, key, p.h, p.w, p.c, InputKey)
		}
		p.ws()
		if !p.consume('}') {
			return badRequest("instance %d: an instance object has one key", i)
		}
		return nil
	default:
		if p.pos >= len(p.data) {
			return p.syntax("unexpected end")
		}
		return badRequest("instance %d: expected a [%d][%d][%d] list of numbers or {\"b64\": \"...\"}", i, p.h, p.w, p.c)
	}
}

// tensor reads a [h][w][c] list of numbers into out.
func (p *parser) tensor(out []float32, inst int) error {
	dims := [3]int{p.h, p.w, p.c}
	k := 0
	var walk func(level int) error
	walk = func(level int) error {
		if !p.consume('[') {
			return badRequest("instance %d: expected a list at depth %d, shape [%d][%d][%d]", inst, level+1, p.h, p.w, p.c)
		}
		for j := 0; ; j++ {
			p.ws()
			if p.consume(']') {
				if j != dims[level] {
					return badRequest("instance %d: %d elements at depth %d, want %d: the model takes [%d][%d][%d] images", inst, j, level+1, dims[level], p.h, p.w, p.c)
				}
				return nil
			}
			if j > 0 {
				if !p.consume(',') {
					return p.syntax("expected ',' or ']' in a list")
				}
				p.ws()
			}
			if j >= dims[level] {
				return badRequest("instance %d: more than %d elements at depth %d: the model takes [%d][%d][%d] images", inst, dims[level], level+1, p.h, p.w, p.c)
			}
			if level == 2 {
				v, err := p.number()
				if err != nil {
					if p.peek() == '[' {
						return badRequest("instance %d: nested deeper than [%d][%d][%d]", inst, p.h, p.w, p.c)
					}
					return badRequest("instance %d: %v", inst, err)
				}
				out[k] = v
				k++
			} else if err := walk(level + 1); err != nil {
				return err
			}
		}
	}
	return walk(0)
}

// decodeBase64 accepts standard base64 with or without padding, and the URL
// alphabet.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return b, nil
}

// AppendTensorJSON appends one image as the nested [h][w][c] JSON list a
// predict request's instance holds (x in HWC order), for clients written in Go.
func AppendTensorJSON(b []byte, x []float32, h, w, c int) []byte {
	b = append(b, '[')
	for i := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j := range w {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k := range c {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(x[(i*w+j)*c+k]), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, ']')
}
