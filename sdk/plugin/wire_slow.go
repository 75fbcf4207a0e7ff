package plugin

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The rarely taken paths of the reader: strings with escapes or non-ASCII
// bytes, values of unknown members, and numbers in general.

// strSlow finishes a string from its first byte at start; end is the
// first special byte (an escape, a non-ASCII byte, a control character or
// the end of the input).
func (r *reader) strSlow(start, end int) string {
	var out []byte
	ascii, escaped := true, false
	i := end
	for {
		if i >= len(r.b) {
			r.i = i
			r.fail("unterminated string")
			return ""
		}
		switch c := r.b[i]; {
		case c == '"':
			r.i = i + 1
			var s string
			if escaped {
				s = string(append(out, r.b[start:i]...))
			} else {
				s = unsafe.String(unsafe.SliceData(r.b[start:]), i-start)
			}
			if !ascii && !utf8.ValidString(s) {
				s = toValidUTF8(s)
			}
			return s
		case c < 0x20:
			r.i = i
			r.fail("control character in string")
			return ""
		case c == '\\':
			out = append(out, r.b[start:i]...)
			escaped = true
			r.i = i
			if out = r.escape(out); r.err != nil {
				return ""
			}
			i, start = r.i, r.i
		default: // non-ASCII
			ascii = false
			i++
		}
		i = r.scan(i)
	}
}

// escape appends the character of the escape sequence at r.i.
func (r *reader) escape(out []byte) []byte {
	if r.i+1 >= len(r.b) {
		r.fail("unterminated string")
		return out
	}
	esc := r.b[r.i+1]
	r.i += 2
	switch esc {
	case '"', '\\', '/':
		return append(out, esc)
	case 'b':
		return append(out, '\b')
	case 'f':
		return append(out, '\f')
	case 'n':
		return append(out, '\n')
	case 'r':
		return append(out, '\r')
	case 't':
		return append(out, '\t')
	case 'u':
		return utf8.AppendRune(out, r.unicodeEscape())
	}
	r.fail("bad escape")
	return out
}

// unicodeEscape decodes the XXXX of \uXXXX ("\u" already consumed),
// pairing surrogates as encoding/json does.
func (r *reader) unicodeEscape() rune {
	c := r.hex4()
	if !utf16.IsSurrogate(c) {
		return c
	}
	if r.i+6 <= len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
		save := r.i
		r.i += 2
		if d := utf16.DecodeRune(c, r.hex4()); d != utf8.RuneError {
			return d
		}
		r.i = save
	}
	return utf8.RuneError
}

func (r *reader) hex4() rune {
	if r.i+4 > len(r.b) {
		r.fail("short \\u escape")
		return 0
	}
	var v rune
	for _, c := range r.b[r.i : r.i+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			r.fail("bad \\u escape")
			return 0
		}
		v = v<<4 | rune(d)
	}
	r.i += 4
	return v
}

// toValidUTF8 replaces each invalid byte with U+FFFD, as encoding/json.
func toValidUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		out = utf8.AppendRune(out, c)
		i += size
	}
	return string(out)
}

// skip consumes any value.
func (r *reader) skip() {
	r.ws()
	switch c := r.pad[r.i]; {
	case r.err != nil:
	case c == '{':
		for r.open(); ; {
			if _, ok := r.member(); !ok {
				return
			}
			r.skip()
		}
	case c == '[':
		r.skipArray()
	case c == '"':
		r.str()
	case c == 't' || c == 'f':
		r.bool()
	case c == 'n':
		if !r.null() {
			r.fail("bad literal")
		}
	case c == '-' || '0' <= c && c <= '9':
		r.number()
	default:
		r.fail("unexpected character")
	}
}

func (r *reader) skipArray() {
	r.i++
	r.ws()
	if r.pad[r.i] == ']' {
		r.i++
		return
	}
	for r.err == nil {
		r.skip()
		r.ws()
		switch r.pad[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			return
		default:
			r.fail("expected , or ]")
		}
	}
}

// number consumes a JSON number of any form.
func (r *reader) number() {
	start := r.i
	if r.pad[r.i] == '-' {
		r.i++
	}
	digits := r.i
	r.digits()
	if r.i == digits || r.b[digits] == '0' && r.i-digits > 1 {
		r.fail("bad number")
		return
	}
	if r.pad[r.i] == '.' {
		r.i++
		if !r.digits() {
			r.fail("bad number")
		}
	}
	if c := r.pad[r.i]; c == 'e' || c == 'E' {
		r.i++
		if c := r.pad[r.i]; c == '+' || c == '-' {
			r.i++
		}
		if !r.digits() {
			r.fail("bad number")
		}
	}
	if _, err := strconv.ParseFloat(string(r.b[start:r.i]), 64); err != nil {
		r.fail("bad number")
	}
}

// digits consumes decimal digits and reports whether there was any.
func (r *reader) digits() bool {
	start := r.i
	for c := r.pad[r.i]; '0' <= c && c <= '9'; c = r.pad[r.i] {
		r.i++
	}
	return r.i > start
}
