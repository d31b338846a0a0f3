package graph

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CodeInvalidUTF8: a string in the request is not valid UTF-8, or holds a
// \u escape of a lone UTF-16 surrogate (\ud800 with no trailing \udc00 to
// \udfff after it, or a trailing one alone). The request is refused whole,
// with HTTP 400, before anything in it is decoded.
const CodeInvalidUTF8 = "INVALID_UTF8"

// Both decoders a request goes through, encoding/json for the body and
// gqlparser's lexer for the document, replace invalid UTF-8 and lone
// surrogate escapes with U+FFFD without a word. Different byte sequences
// from clients would then become the same key, and a value would not be
// stored as it was sent. So the text is checked before it is decoded.

// checkJSONText checks JSON text (a request body, or the variables and
// extensions of a GET request) before it is decoded. In valid JSON a
// backslash appears only in a string, where it starts an escape; text
// that is not valid JSON is the decoder's to refuse.
func checkJSONText(b, where string) error {
	if !utf8.ValidString(b) {
		return invalidUTF8(b, where)
	}
	return checkEscapes(b, where, 0)
}

// checkDocumentText checks a GraphQL document before it is parsed: valid
// UTF-8, and no lone surrogate escape in its strings. Backslashes in
// comments and block strings are not escapes, so the document is scanned
// as gqlparser's lexer reads it (FuzzLoneSurrogateEscapes holds the two
// together): a comment runs from # to the end of the line; a block string
// from """ to the last three quotes of the next run of three or more not
// preceded by a backslash; a string from " to the next unescaped " or the
// end of the line.
func checkDocumentText(q string) error {
	const where = "the query"
	if !utf8.ValidString(q) {
		return invalidUTF8(q, where)
	}
	if !strings.Contains(q, `\u`) {
		return nil // the hot path: no escape that could name a surrogate
	}
	for i := 0; i < len(q); {
		switch {
		case q[i] == '#':
			i += lineEnd(q[i:])
		case strings.HasPrefix(q[i:], `"""`):
			i += 3
			for i < len(q) {
				if strings.HasPrefix(q[i:], `\"""`) {
					i += 4
					continue
				}
				if q[i] != '"' {
					i++
					continue
				}
				run := len(q[i:]) - len(strings.TrimLeft(q[i:], `"`))
				i += run
				if run >= 3 {
					break
				}
			}
		case q[i] == '"':
			end := i + 1
			for end < len(q) && q[end] != '"' && q[end] != '\n' && q[end] != '\r' {
				if q[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end, len(q))
			if err := checkEscapes(q[i:end], where, i); err != nil {
				return err
			}
			i = end + 1
		default:
			i++
		}
	}
	return nil
}

func lineEnd(s string) int {
	if n := strings.IndexAny(s, "\r\n"); n >= 0 {
		return n
	}
	return len(s)
}

// checkEscapes finds a \u escape of a lone surrogate in s, in which every
// backslash starts an escape (the inside of a JSON or GraphQL string); s is
// at byte at of where, for the message.
func checkEscapes(s, where string, at int) error {
	for i := 0; ; {
		n := strings.IndexByte(s[i:], '\\')
		if n < 0 || i+n+1 >= len(s) {
			return nil
		}
		i += n
		if s[i+1] != 'u' {
			i += 2 // \\, \", \n ...
			continue
		}
		r, ok := hex4(s[i+2:])
		if !ok {
			i += 2 // \u{...}, or malformed: the decoder's to judge
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if rest := s[i+6:]; strings.HasPrefix(rest, `\u`) {
				if trail, ok := hex4(rest[2:]); ok && trail >= 0xDC00 && trail <= 0xDFFF {
					i += 12 // a pair: one character
					continue
				}
			}
			return loneSurrogate(where, r, at+i)
		case r >= 0xDC00 && r <= 0xDFFF:
			return loneSurrogate(where, r, at+i)
		}
		i += 6
	}
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func invalidUTF8(s, where string) error {
	at := 0
	for at < len(s) {
		r, w := utf8.DecodeRuneInString(s[at:])
		if r == utf8.RuneError && w == 1 {
			break
		}
		at += w
	}
	return coded(CodeInvalidUTF8, "%s is not valid UTF-8 (byte %d): every string must be valid UTF-8 as sent", where, at)
}

func loneSurrogate(where string, r rune, at int) error {
	return coded(CodeInvalidUTF8, "%s has a lone surrogate escape (%s at byte %d): a \\u escape of U+D800 to U+DFFF must be a leading surrogate followed by a trailing one", where, fmt.Sprintf(`\u%04x`, r), at)
}
