package serving

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds the nesting of JSON values the parser follows.
const maxDepth = 64

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

// parser reads one JSON document in place. Besides RFC 8259 it accepts the
// tokens NaN, Infinity and -Infinity, as TensorFlow Serving does.
type parser struct {
	data  []byte
	pos   int
	depth int
	// the image shape each instance has, and the most instances accepted
	h, w, c int
	maxN    int
}

// parseRequest parses a TensorFlow Serving predict request for a model taking
// h×w×c float32 images, of at most maxN instances. An instance is a [h][w][c]
// list of numbers, {"b64": "<encoded image>"}, or either of these named:
// {"images": ...}.
func parseRequest(data []byte, h, w, c, maxN int) (*request, error) {
	p := &parser{data: data, h: h, w: w, c: c, maxN: maxN}
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

// number reads a JSON number, NaN, Infinity or -Infinity as float32: parsed
// as a double and rounded, as TensorFlow Serving and NumPy convert.
func (p *parser) number() (float32, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	if rest := d[i:]; len(rest) >= 8 && string(rest[:8]) == "Infinity" {
		p.pos = i + 8
		if i > start {
			return float32(math.Inf(-1)), nil
		}
		return float32(math.Inf(1)), nil
	}
	if i == start && len(d)-i >= 3 && string(d[i:i+3]) == "NaN" {
		p.pos = i + 3
		return float32(math.NaN()), nil
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return 0, badRequest("expected a number at offset %d", start)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return 0, badRequest("malformed number at offset %d", start)
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, badRequest("malformed number at offset %d", start)
		}
	}
	p.pos = i
	tok := d[start:i]
	// The token is only read here; the string does not outlive the call.
	v, err := strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
	if err != nil {
		return 0, badRequest("number %s at offset %d is out of range", string(tok), start)
	}
	return float32(v), nil
}

// str reads a JSON string.
func (p *parser) str() (string, error) {
	if !p.consume('"') {
		return "", p.syntax("expected a string")
	}
	start := p.pos
	d := p.data
	// Fast path: no escapes.
	for i := start; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			p.pos = i + 1
			return string(d[start:i]), nil
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", p.syntaxAt(i, "control character in a string")
		}
	}
	return "", p.syntaxAt(len(d), "unterminated string")
}

// escaped reads the rest of a string that holds escapes, from start.
func (p *parser) escaped(start int) (string, error) {
	var b strings.Builder
	d := p.data
	i := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return b.String(), nil
		case c < 0x20:
			return "", p.syntaxAt(i, "control character in a string")
		case c != '\\':
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(d) {
			break
		}
		e := d[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(d, i)
			if !ok {
				return "", p.syntaxAt(i, "bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(d, i+2); ok && i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default:
			return "", p.syntaxAt(i-1, "bad escape")
		}
	}
	return "", p.syntaxAt(len(d), "unterminated string")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// strings reads a list of strings.
func (p *parser) strings() ([]string, error) {
	if !p.consume('[') {
		return nil, badRequest("expected a list of strings at offset %d", p.pos)
	}
	out := []string{}
	for {
		p.ws()
		if p.consume(']') {
			return out, nil
		}
		if len(out) > 0 {
			if !p.consume(',') {
				return nil, p.syntax("expected ',' or ']' in a list")
			}
			p.ws()
		}
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}

// skip reads and discards any JSON value.
func (p *parser) skip() error {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return badRequest("JSON nested deeper than %d", maxDepth)
	}
	switch c := p.peek(); {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.pos++
		for n := 0; ; n++ {
			p.ws()
			if p.consume(end) {
				return nil
			}
			if n > 0 {
				if !p.consume(',') {
					return p.syntax("expected ',' or a closing bracket")
				}
				p.ws()
			}
			if c == '{' {
				if _, err := p.str(); err != nil {
					return err
				}
				if err := p.colon(); err != nil {
					return err
				}
			}
			if err := p.skip(); err != nil {
				return err
			}
		}
	case p.literal("true") || p.literal("false") || p.literal("null"):
		return nil
	default:
		_, err := p.number()
		return err
	}
}

func (p *parser) literal(s string) bool {
	if len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *parser) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// colon reads the ':' after an object key, with the white space around it.
func (p *parser) colon() error {
	p.ws()
	if !p.consume(':') {
		return p.syntax("expected ':' after a key")
	}
	p.ws()
	return nil
}

func (p *parser) syntax(msg string) error { return p.syntaxAt(p.pos, msg) }

func (p *parser) syntaxAt(pos int, msg string) error {
	if pos >= len(p.data) {
		return badRequest("JSON Parse error: %s at the end of the body", msg)
	}
	return badRequest("JSON Parse error: %s at offset %d", msg, pos)
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
