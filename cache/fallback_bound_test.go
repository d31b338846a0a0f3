package cache

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The fallback's byte bound counts each entry's key, value, tags and a
// per-entry overhead, so that many tiny entries cannot hold much more than
// the bound: a thousand one-byte values do not fit in 1 KiB, nor does a
// value beside tags that take the rest.
func TestFallbackBoundCountsEveryEntrysCost(t *testing.T) {
	const bound = 1024
	m := newMemoryTier(bound)
	stored := 0
	for i := range 1000 {
		if m.set(fmt.Sprintf("k%03d", i), json.RawMessage(`1`), 0) == nil {
			stored++
		}
	}
	// Each entry costs its 4-byte key, its 1-byte value and entryOverhead.
	if want := bound / (4 + 1 + entryOverhead); stored != want {
		t.Errorf("%d one-byte entries fit in %d bytes; want %d", stored, bound, want)
	}
	if _, bytes := m.size(); bytes > bound {
		t.Errorf("the fallback holds %d bytes; want at most %d", bytes, bound)
	}

	m = newMemoryTier(bound)
	tag := strings.Repeat("t", 100)
	tags := []string{tag + "1", tag + "2", tag + "3", tag + "4", tag + "5", tag + "6", tag + "7", tag + "8"}
	// 8 tags of 101 bytes, each counted with 16 bytes of its own: 936, and
	// the entry's 1 + 1 + entryOverhead: 1002 of 1024.
	if err := m.setTagged("k", json.RawMessage(`1`), 0, tags); err != nil {
		t.Fatalf("an entry of 1002 bytes into %d: %v", bound, err)
	}
	if _, bytes := m.size(); bytes != 1002 {
		t.Errorf("a tagged entry counts %d bytes; want 1002", bytes)
	}
	if err := m.setTagged("k2", json.RawMessage(`"`+strings.Repeat("v", 20)+`"`), 0, nil); err == nil {
		t.Errorf("an entry of 88 bytes beside 1002 in %d was stored; want it refused", bound)
	}
}
