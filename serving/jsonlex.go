package serving

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The JSON lexer of the request parser: tokens, strings, numbers and skipped
// values, read in place. The request grammar is in request.go.

// maxDepth bounds the nesting of JSON values the lexer follows.
const maxDepth = 64

// lexer reads one JSON document in place. Besides RFC 8259 it accepts the
// tokens NaN, Infinity and -Infinity, as TensorFlow Serving does. Its errors
// are *requestError (HTTP 400).
type lexer struct {
	data  []byte
	pos   int
	depth int
}

// number reads a JSON number, NaN, Infinity or -Infinity as float32: parsed
// as a double and rounded, as TensorFlow Serving and NumPy convert.
func (p *lexer) number() (float32, error) {
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
func (p *lexer) str() (string, error) {
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
func (p *lexer) escaped(start int) (string, error) {
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
func (p *lexer) strings() ([]string, error) {
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
func (p *lexer) skip() error {
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

func (p *lexer) literal(s string) bool {
	if len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

func (p *lexer) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *lexer) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *lexer) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// colon reads the ':' after an object key, with the white space around it.
func (p *lexer) colon() error {
	p.ws()
	if !p.consume(':') {
		return p.syntax("expected ':' after a key")
	}
	p.ws()
	return nil
}

func (p *lexer) syntax(msg string) error { return p.syntaxAt(p.pos, msg) }

func (p *lexer) syntaxAt(pos int, msg string) error {
	if pos >= len(p.data) {
		return badRequest("JSON Parse error: %s at the end of the body", msg)
	}
	return badRequest("JSON Parse error: %s at offset %d", msg, pos)
}
