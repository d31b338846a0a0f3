package jsontext

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxNesting is encoding/json's limit on nested objects and arrays: text
// nested deeper is not valid for it.
const maxNesting = 10000

// Valid reports whether b is one JSON value with nothing but space around
// it: json.Valid's answer (FuzzValid holds the two together), found
// faster, because strings, the bulk of a large value, are checked eight
// bytes at a time rather than by a state machine's call per byte. Like
// json.Valid it does not check that b is UTF-8 (Scan does).
func Valid(b []byte) bool {
	s := scanner{b: b}
	return s.text()
}

// Form is what Scan finds JSON text to be.
type Form uint8

const (
	// Invalid is not JSON text: bad syntax, or bytes that are not UTF-8.
	Invalid Form = iota
	// Spaced is JSON text with space between (or around) its tokens.
	Spaced
	// Compact is JSON text with no space outside its strings: what a
	// compacting encoder (json.Compact, json.Marshal of a RawMessage)
	// writes for it, byte for byte, when it escapes nothing.
	Compact
)

// Scan reports in one pass over b whether it is JSON text made of UTF-8
// (json.Valid's answer, and UTF-8 inside strings, which json.Valid does
// not check) and whether it is already compact.
func Scan(b []byte) Form {
	s := scanner{b: b, utf8: true}
	switch {
	case !s.text():
		return Invalid
	case s.spaced:
		return Spaced
	}
	return Compact
}

// scanner checks one text; spaced records whether any space was skipped.
type scanner struct {
	b      []byte
	utf8   bool // check that strings are UTF-8 (nothing else may be outside ASCII)
	spaced bool
}

func (s *scanner) text() bool {
	i, ok := s.value(s.skipSpace(0), 0)
	return ok && s.skipSpace(i) == len(s.b)
}

// value checks the value starting at b[i], inside depth containers, and
// returns the index just past it.
func (s *scanner) value(i, depth int) (int, bool) {
	b := s.b
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return s.str(i)
	case c == '{' || c == '[':
		if depth+1 > maxNesting {
			return i, false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i = s.skipSpace(i + 1)
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, ok = s.str(i); !ok {
					return i, false
				}
				i = s.skipSpace(i)
				if i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = s.skipSpace(i + 1)
			}
			if i, ok = s.value(i, depth+1); !ok {
				return i, false
			}
			i = s.skipSpace(i)
			switch {
			case i >= len(b):
				return i, false
			case b[i] == end:
				return i + 1, true
			case b[i] != ',':
				return i, false
			}
			i = s.skipSpace(i + 1)
		}
	case c == 't':
		return i + 4, hasPrefix(b[i:], "true")
	case c == 'f':
		return i + 5, hasPrefix(b[i:], "false")
	case c == 'n':
		return i + 4, hasPrefix(b[i:], "null")
	case c == '-' || '0' <= c && c <= '9':
		return validNumber(b, i)
	}
	return i, false
}

// Spaceless reports whether JSON text b has no space outside its strings:
// whether it is already in the compact form json.Compact would give it.
// It does not check that b is JSON (Scan does both in one pass; this is
// for text known to be JSON, such as a response built from values read).
func Spaceless(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// Eight bytes at once: lanes holds a byte in every lane.
const (
	lanes = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes in x ends a run of plain
// string bytes: a quote, a backslash, a control character, or (for the
// UTF-8 check) a byte outside ASCII. The tests are exact for "none" (each
// lane's borrow can only flag a lane that really matches or one beside
// it), which is all a skip needs.
func plain8(x uint64) bool {
	quote := x ^ (lanes * '"')
	backslash := x ^ (lanes * '\\')
	m := (quote - lanes) &^ quote
	m |= (backslash - lanes) &^ backslash
	m |= x - lanes*0x20 // a byte below 0x20 borrows into its high bit
	m |= x              // a byte at 0x80 or above (and catches borrow noise)
	return m&highs == 0
}

// str checks the string starting at b[i] (its quote): no control
// characters, only JSON's escapes, and UTF-8 when s.utf8 says so.
func (s *scanner) str(i int) (int, bool) {
	b := s.b
	for j := i + 1; j < len(b); j++ {
		if j-i > 16 { // a long string: eight bytes at a time (a short one is over sooner byte by byte)
			for j+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[j:])) {
				j += 8
			}
			if j >= len(b) {
				break
			}
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\':
			j++
			if j >= len(b) {
				return j, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return j, false
				}
				if !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
					return j, false
				}
				j += 4
			default:
				return j, false
			}
		case c < 0x20:
			return j, false
		case c >= utf8.RuneSelf && s.utf8:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return j, false
			}
			j += size - 1
		}
	}
	return len(b), false
}

// validNumber checks the number starting at b[i]: -?(0|[1-9][0-9]*)
// (.[0-9]+)?([eE][+-]?[0-9]+)?; what may follow it is its container's to
// judge.
func validNumber(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if b[j] == '-' {
		j++
	}
	switch {
	case j >= len(b):
		return j, false
	case b[j] == '0':
		j++
	case '1' <= b[j] && b[j] <= '9':
		j = digits(j)
	default:
		return j, false
	}
	if j < len(b) && b[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return k, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return k, false
		}
		j = k
	}
	return j, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) skipSpace(i int) int {
	b := s.b
	j := i
	for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
		j++
	}
	if j > i {
		s.spaced = true
	}
	return j
}
