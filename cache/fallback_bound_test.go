package cache

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
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
	// The bound is inclusive: a value of 23 bytes in place of 1 fills
	// what is left exactly.
	if err := m.setTagged("k", json.RawMessage(`"`+strings.Repeat("v", 21)+`"`), 0, tags); err != nil {
		t.Errorf("rewriting k to fill the %d bytes exactly: %v; want it stored", bound, err)
	}
	if _, bytes := m.size(); bytes != bound {
		t.Errorf("the fallback holds %d bytes; want exactly %d", bytes, bound)
	}
}

// Expire in the fallback sets a TTL that runs from now, or removes it with
// zero, as EXPIRE and PERSIST do in Redis; a missing key reports false.
func TestFallbackExpire(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	m := newMemoryTier(1 << 20)
	m.now = func() time.Time { return now }
	if err := m.set("k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	if !m.expire("k", time.Minute) {
		t.Fatal("expire(k) = false; want true: it exists")
	}
	if _, ttl, ok := m.getEntry("k"); !ok || ttl != time.Minute {
		t.Errorf("after expire(k, 1m): TTL %v, present %v; want 1m", ttl, ok)
	}
	if !m.expire("k", 0) {
		t.Fatal("expire(k, 0) = false; want true")
	}
	now = now.Add(time.Hour)
	if _, ttl, ok := m.getEntry("k"); !ok || ttl != 0 {
		t.Errorf("an hour after expire(k, 0): TTL %v, present %v; want present with no TTL", ttl, ok)
	}
	m.expire("k", time.Second)
	now = now.Add(time.Second)
	if _, _, ok := m.getEntry("k"); ok {
		t.Error("k is present once its TTL ran out; want it gone")
	}
	if m.expire("k", time.Minute) || m.expire("never", time.Minute) {
		t.Error("expire of a key that is gone or never was = true; want false")
	}
}

// Expired entries make room: a write that fits the bound exactly once they
// are dropped is stored.
func TestFallbackExpiredEntriesMakeRoom(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	m := newMemoryTier(1024)
	m.now = func() time.Time { return now }
	if err := m.set("old", json.RawMessage(`"`+strings.Repeat("o", 500)+`"`), time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	// 1 + 957 + 2 quotes + entryOverhead = 1024: the whole bound.
	full := json.RawMessage(`"` + strings.Repeat("n", 1024-1-2-entryOverhead) + `"`)
	if err := m.set("n", full, 0); err != nil {
		t.Errorf("a write filling the bound exactly, beside only an expired entry: %v; want it stored", err)
	}
	if n, bytes := m.size(); n != 1 || bytes != 1024 {
		t.Errorf("the fallback holds %d entries, %d bytes; want 1 of 1024", n, bytes)
	}
}
