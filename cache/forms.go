package cache

import (
	"encoding/json"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/school-erp/cache-service/internal/jsontext"
)

// asJSON returns b, or b as a JSON string when it is not JSON text (a
// value written by something other than this service).
func asJSON(b []byte) json.RawMessage {
	v, _ := scanJSON(b)
	return v
}

// scanJSON is asJSON, also saying whether what it returns is compact
// (jsontext.Compact): one pass over the bytes.
func scanJSON(b []byte) (json.RawMessage, bool) {
	switch jsontext.Scan(b) {
	case jsontext.Compact:
		return b, true
	case jsontext.Spaced:
		return b, false
	}
	s, _ := json.Marshal(string(b)) // invalid UTF-8 becomes U+FFFD
	return s, true
}

// formMemo remembers what asJSON found for values the local cache holds,
// so that a hit, which returns the very bytes the last read returned (the
// local cache keeps the reply's string), does not scan them again.
//
// An entry is found by the value's address, and trusted only while it
// holds a weak pointer to those very bytes: weak.Pointer follows an object,
// not an address, so once the string is collected the entry's pointer
// yields nil and never matches the next string allocated at that address.
// Strings are immutable, so the same live object with the same length is
// the same bytes. The memo keeps no value alive, and holds a fixed number
// of small entries; a collision only costs a scan.
type formMemo struct {
	slots [formMemoSlots]atomic.Pointer[formEntry]
}

// formMemoSlots entries, for values of at least formMemoMin bytes (a
// shorter one scans in less time than a memo lookup saves).
const (
	formMemoSlots = 256
	formMemoMin   = 512
)

type formEntry struct {
	value   weak.Pointer[byte]
	n       int
	compact bool // valid JSON (the memo holds only that) and compact
}

func (m *formMemo) slot(p *byte) *atomic.Pointer[formEntry] {
	h := uint64(uintptr(unsafe.Pointer(p))) * 0x9E3779B97F4A7C15 // a hash, never turned back into a pointer
	return &m.slots[h>>(64-8)]
}

// scanJSON is scanJSON, from the memo when it holds b. remember says b will be
// read again as it is (it came through the local cache), and is worth an
// entry. b must be a reply's bytes as valkey-go allocated them (it reads
// each bulk string into a slice of its own): weak.Make is a fatal error on
// memory outside the Go heap, such as a string constant's. The
// differential test in graph reads large values through a real client,
// which would find out if valkey-go ever changed that.
func (m *formMemo) scanJSON(b []byte, remember bool) (json.RawMessage, bool) {
	if len(b) < formMemoMin {
		return scanJSON(b)
	}
	p := unsafe.SliceData(b)
	slot := m.slot(p)
	if e := slot.Load(); e != nil && e.n == len(b) && e.value.Value() == p {
		return b, e.compact
	}
	v, compact := scanJSON(b)
	if remember && unsafe.SliceData(v) == p { // JSON text as stored: not re-encoded
		slot.Store(&formEntry{value: weak.Make(p), n: len(b), compact: compact})
	}
	return v, compact
}
