package plugin

import (
	"errors"
	"math/bits"
	"strconv"
	"unsafe"
)

// This file is a small JSON reader for the ABI payloads. Inside the sandbox
// the host's deadline enforcement costs a trip out of the guest on every
// taken branch of Go code (Go's WebAssembly backend turns each jump into a
// branch to its function's loop header, where the check sits), so
// encoding/json runs several times slower there than natively. This reader
// is written to take few branches: it scans strings and keys 8 bytes at a
// time with SWAR bit tricks, matches keys as integers, and lets strings
// without escapes alias the input, which therefore must never change after
// decoding. It accepts what encoding/json produces for the abi types (keys
// matched exactly, unknown keys skipped, null leaves a field zero) and
// rejects malformed JSON.

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// padding is how many zero bytes the reader needs past the input.
const padding = 16

// reader scans one JSON document in b. b's capacity extends at least
// padding zero bytes past its length (see newReader), so the 8-byte loads
// of scans and key codes at any index up to len(b) stay in bounds and see
// zeros past the end.
type reader struct {
	b     []byte
	pad   []byte // b[:len(b)+padding]
	i     int
	err   error
	first bool // inside an object, before its first member
}

// newReader prepares in for reading, copying it when it lacks zero
// padding.
func newReader(in []byte) reader {
	n := len(in)
	if cap(in)-n < padding || word64(in[n:n+8]) != 0 || word64(in[n+8:n+16]) != 0 {
		p := make([]byte, n, n+padding)
		copy(p, in)
		in = p
	}
	return reader{b: in, pad: in[:n+padding]}
}

func word64(b []byte) uint64 {
	return *(*uint64)(unsafe.Pointer(unsafe.SliceData(b)))
}

// load returns the 8 bytes at i as a little-endian word.
func (r *reader) load(i int) uint64 {
	return *(*uint64)(unsafe.Pointer(unsafe.SliceData(r.pad[i : i+8])))
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = errors.New("plugin: malformed JSON input: " + what + " at offset " + strconv.Itoa(r.i))
	}
}

// ws skips whitespace. Compact JSON has none: one test, no loop.
func (r *reader) ws() {
	if r.pad[r.i] <= ' ' && r.i < len(r.b) {
		r.wsSlow()
	}
}

func (r *reader) wsSlow() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// special returns a word with the high bit set in each byte of x that is a
// quote, a backslash, a control character or not ASCII. The lowest set
// bit always marks the first such byte.
func special(x uint64) uint64 {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	return ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x | x) & msb
}

// scan returns the index of the first special byte at or after i; past
// the end that is len(b), where the zero padding stops it.
func (r *reader) scan(i int) int {
	for {
		if m := special(r.load(i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
}

// open starts reading an object; it returns false for null or on error.
func (r *reader) open() bool {
	r.ws()
	if r.err != nil || r.pad[r.i] != '{' {
		if !r.null() {
			r.fail("expected an object")
		}
		return false
	}
	r.i++
	r.first = true
	return true
}

// member advances to the next member of the object being read and returns
// its key's code, with ok false at the closing brace or on error. The
// caller then consumes the value.
func (r *reader) member() (k keyCode, ok bool) {
	r.ws()
	c := r.pad[r.i]
	switch {
	case r.err != nil:
		return k, false
	case c == '}':
		r.i++
		r.first = false
		return k, false
	case r.first:
		r.first = false
	case c == ',':
		r.i++
		r.ws()
	default:
		r.fail("expected , or }")
		return k, false
	}
	if r.pad[r.i] != '"' {
		r.fail("expected a key")
		return k, false
	}
	start := r.i + 1
	end := r.scan(start)
	if r.pad[end] == '"' && end-start <= 16 {
		k = r.code(start, end-start)
		r.i = end + 1
	} else {
		r.str() // escapes or an unusual key: matches none of ours
	}
	r.ws()
	if r.pad[r.i] != ':' {
		r.fail("expected :")
		return k, false
	}
	r.i++
	r.ws()
	return k, r.err == nil
}

// keyCode identifies a key of at most 16 bytes: its bytes and length.
type keyCode struct{ w0, w1, n uint64 }

// masks[n] keeps the first n bytes of a word (n <= 8).
var masks = [9]uint64{0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff, 0xffffffffffffff, ^uint64(0)}

// code computes the keyCode of the n <= 16 bytes at i.
func (r *reader) code(i, n int) keyCode {
	n0 := min(n, 8)
	return keyCode{r.load(i) & masks[n0], r.load(i+8) & masks[n-n0], uint64(n)}
}

// key returns the keyCode of a key of at most 16 bytes, without
// allocating.
func key(s string) keyCode {
	if len(s) > 16 {
		panic("plugin: key too long: " + s)
	}
	var buf [16]byte
	copy(buf[:], s)
	n0 := min(len(s), 8)
	w0 := *(*uint64)(unsafe.Pointer(&buf[0]))
	w1 := *(*uint64)(unsafe.Pointer(&buf[8]))
	return keyCode{w0 & masks[n0], w1 & masks[len(s)-n0], uint64(len(s))}
}

// str reads a string; null reads as "".
func (r *reader) str() string {
	if r.pad[r.i] != '"' {
		if !r.null() {
			r.fail("expected a string")
		}
		return ""
	}
	start := r.i + 1
	end := r.scan(start)
	if r.pad[end] == '"' {
		r.i = end + 1
		return unsafe.String(unsafe.SliceData(r.b[start:]), end-start)
	}
	return r.strSlow(start, end)
}

// null consumes a null literal if one is next.
func (r *reader) null() bool {
	if r.load(r.i)&masks[4] == lit4("null") {
		r.i += 4
		return true
	}
	return false
}

// lit4 packs a 4-byte literal like load does.
func lit4(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

// bool reads true or false; null reads as false.
func (r *reader) bool() bool {
	w := r.load(r.i)
	switch {
	case w&masks[4] == lit4("true"):
		r.i += 4
		return true
	case w&masks[5] == lit4("fals")|uint64('e')<<32:
		r.i += 5
	case !r.null():
		r.fail("expected a boolean")
	}
	return false
}

// int reads an integer; null reads as 0. Fractions and exponents are
// refused, as encoding/json refuses them for integer fields.
func (r *reader) int() int64 {
	if r.null() {
		return 0
	}
	start := r.i
	neg := r.pad[r.i] == '-'
	if neg {
		r.i++
	}
	digits := r.i
	var v uint64
	for c := r.pad[r.i]; '0' <= c && c <= '9'; c = r.pad[r.i] {
		v = v*10 + uint64(c-'0')
		r.i++
	}
	n := r.i - digits
	switch c := r.pad[r.i]; {
	case n == 0 || n > 1 && r.pad[digits] == '0':
		r.fail("bad integer")
	case c == '.' || c == 'e' || c == 'E':
		r.fail("number is not an integer")
	case n > 19 || v > 1<<63 || v == 1<<63 && !neg:
		if _, err := strconv.ParseInt(string(r.b[start:r.i]), 10, 64); err != nil {
			r.fail("integer out of range")
		}
	}
	if neg {
		return -int64(v)
	}
	return int64(v)
}

// end checks that nothing but space follows the document.
func (r *reader) end() error {
	r.ws()
	if r.err == nil && r.i < len(r.b) {
		r.fail("data after the document")
	}
	return r.err
}
