package graph

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"

	"github.com/school-erp/cache-service/internal/jsontext"
)

// A minimal reader of the JSON a GraphQL request carries, for the compiled
// paths (compiled.go, compiledwrites.go): it finds the top-level members of
// the body and the variables as byte ranges, without building maps or
// copying values. Anything it does not fully understand makes it give up
// (ok == false), and the request goes through gqlgen, which decodes it with
// encoding/json and reports errors as it always does. It never accepts
// what encoding/json would refuse: scanRequest validates the whole body
// once, as json.Valid would (validJSON), and everything else here reads parts of a body it
// accepted, so walking over a value (a large one, to be stored) is a scan
// for its end, not a second validation.

// requestParts are the members of a GraphQL-over-HTTP request body, as raw
// JSON values (nil when absent).
type requestParts struct {
	query, operationName, variables, extensions []byte
}

// scanRequest splits a request body into its members. It gives up on
// duplicate or unknown members (gqlgen decodes those its own way).
func scanRequest(body []byte) (requestParts, bool) {
	var p requestParts
	if !validJSON(body) {
		return p, false
	}
	ok := scanObject(body, func(key, value []byte) bool {
		var slot *[]byte
		switch string(key) {
		case "query":
			slot = &p.query
		case "operationName":
			slot = &p.operationName
		case "variables":
			slot = &p.variables
		case "extensions":
			slot = &p.extensions
		default:
			return false
		}
		if *slot != nil {
			return false
		}
		*slot = value
		return true
	})
	return p, ok
}

// scanObject calls member for each member of the JSON object in b (keys
// without their quotes, and only keys without escapes), in order; it stops
// and reports false if b is not exactly one object, or member says so. b
// is part of a body scanRequest validated.
func scanObject(b []byte, member func(key, value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, plain := stringEnd(b, i)
		if end < 0 || !plain {
			return false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend < 0 || !member(key, b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// scanArray calls element for each element of the JSON array in b.
func scanArray(b []byte, element func(value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		vend := valueEnd(b, i)
		if vend < 0 || !element(b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i],
// and whether it is plain: no escapes, nothing but printable ASCII or valid
// UTF-8. -1 when it is not a valid string.
func stringEnd(b []byte, i int) (int, bool) {
	plain := true
	for j := i + 1; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			if j+1 >= len(b) {
				return -1, false
			}
			j += 2
		case c < 0x20:
			return -1, false
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size <= 1 {
				return -1, false
			}
			j += size
		}
	}
	return -1, false
}

// valueEnd returns the index just past the JSON value starting at b[i], or
// -1, in validated JSON text (scanRequest's body): strings are skipped to
// their closing quote, and containers to their closing bracket.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		if q := closingQuote(b, i+1); q >= 0 {
			return q + 1
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				q := closingQuote(b, j+1)
				if q < 0 {
					return -1
				}
				j = q + 1
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i || !json.Valid(b[i:j]) {
		return -1
	}
	return j
}

// jsonString returns the string a JSON string value holds: in the
// escape-free common case, the bytes of raw themselves, not a copy (the
// request's body lives as long as the request, and nothing keeps a key
// longer: the cache builds its Redis key anew); through encoding/json when
// it has escapes.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if end, plain := stringEnd(raw, 0); end == len(raw) && plain {
		s := raw[1 : len(raw)-1]
		return unsafe.String(unsafe.SliceData(s), len(s)), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// persistedHash returns the sha256Hash of an Automatic Persisted Query
// extension exactly of the form {"persistedQuery":{"version":1,
// "sha256Hash":"..."}} (members in any order, the hash 64 lowercase hex
// digits), without its quotes. Anything else is for gqlgen to judge.
func persistedHash(extensions []byte) ([]byte, bool) {
	var pq []byte
	if extensions == nil || !scanObject(extensions, func(key, value []byte) bool {
		if string(key) != "persistedQuery" || pq != nil {
			return false
		}
		pq = value
		return true
	}) || pq == nil {
		return nil, false
	}
	var version, hash []byte
	if !scanObject(pq, func(key, value []byte) bool {
		switch {
		case string(key) == "version" && version == nil:
			version = value
		case string(key) == "sha256Hash" && hash == nil:
			hash = value
		default:
			return false
		}
		return true
	}) || string(version) != "1" || len(hash) != 66 || hash[0] != '"' || hash[65] != '"' {
		return nil, false
	}
	hash = hash[1:65]
	for _, c := range hash {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	return hash, true
}

// validJSON reports whether b is one JSON value with nothing but space
// around it, as json.Valid would answer, faster (jsontext.Valid).
func validJSON(b []byte) bool { return jsontext.Valid(b) }
