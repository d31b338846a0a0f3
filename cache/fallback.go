package cache

import (
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// The fallback tier's contract (Options.Fallback = FallbackMemory), in one
// place:
//
//   - It answers only while the breaker refuses Redis (open or half-open),
//     and only for commands Redis did not execute: a command that may have
//     reached Redis (ErrNoReply) or that Redis refused (ErrRejected) is
//     reported as such, never answered from memory.
//   - Every write it acknowledges stays readable, with its TTL, until Redis
//     is confirmed back by a probe; the store is not emptied when the
//     breaker opens, and it never evicts an acknowledged write to make
//     room: when it is full, a write is refused (ErrUnavailable) instead.
//   - When Redis is confirmed back, the store is emptied before requests go
//     to Redis again. Its values are not copied to Redis (another instance
//     may have written newer ones), and are never served in a later outage.
//   - A write or delete that Redis confirms removes that key from the store,
//     so no read returns a fallback value older than a write Redis confirmed
//     (a request sent just before the breaker opened may be confirmed just
//     after).
//   - It is off in cluster mode: one node down leaves the other nodes'
//     slots working, and a per-process store cannot tell which keys belong
//     to the node that is down; reads and writes for that node report
//     ErrUnavailable instead, and Health says the fallback is off and why.
//   - Its values live in this process only: other instances do not see
//     them.

// FallbackMode says what serves the cache while Redis is unavailable.
type FallbackMode string

const (
	// FallbackNone: reads miss and writes report ErrUnavailable.
	FallbackNone FallbackMode = "none"
	// FallbackMemory: a bounded in-process store answers instead (see the
	// contract above).
	FallbackMemory FallbackMode = "memory"
)

// FallbackHealth describes the fallback tier.
type FallbackHealth struct {
	Mode FallbackMode
	// Active is true while the fallback tier is answering for Redis.
	Active bool
	// Off says why a configured fallback tier does not answer (cluster
	// mode); empty otherwise.
	Off string
	// Entries and Bytes are what it holds now.
	Entries int
	Bytes   uint64
}

// entryOverhead approximates what an entry costs beyond its key and value,
// so that many tiny entries cannot exceed the byte bound by much.
const entryOverhead = 64

// errFallbackFull means a write did not fit in the fallback tier.
var errFallbackFull = errors.New("the fallback tier is full")

// memoryTier is the bounded in-process store behind FallbackMemory. A map
// under a mutex: it is used only while Redis is down, and a cache library
// would evict acknowledged writes to make room, which the contract forbids.
type memoryTier struct {
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]memoryEntry
	bytes   int
}

type memoryEntry struct {
	value   json.RawMessage
	expires time.Time // zero: no expiry
	weight  int
}

func newMemoryTier(maxBytes int) *memoryTier {
	return &memoryTier{maxBytes: maxBytes, now: time.Now, entries: map[string]memoryEntry{}}
}

func weight(key string, value json.RawMessage) int {
	return len(key) + len(value) + entryOverhead
}

func (m *memoryTier) get(key string) (json.RawMessage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return nil, false
	}
	if m.expired(e) {
		m.removeLocked(key, e)
		return nil, false
	}
	return e.value, true
}

func (m *memoryTier) expired(e memoryEntry) bool {
	return !e.expires.IsZero() && !m.now().Before(e.expires)
}

// set stores value, or reports errFallbackFull when it does not fit beside
// what the store holds (expired entries are dropped first). A refused
// write removes the key's older value: it must not stand in for this one.
func (m *memoryTier) set(key string, value json.RawMessage, ttl time.Duration) error {
	w := weight(key, value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[key]; ok {
		m.removeLocked(key, old)
	}
	if m.bytes+w > m.maxBytes {
		m.purgeExpiredLocked()
		if m.bytes+w > m.maxBytes {
			return errFallbackFull
		}
	}
	e := memoryEntry{value: append(json.RawMessage(nil), value...), weight: w} // the caller may reuse its slice
	if ttl > 0 {
		e.expires = m.now().Add(ttl)
	}
	m.entries[key] = e
	m.bytes += w
	return nil
}

func (m *memoryTier) delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return false
	}
	m.removeLocked(key, e)
	return !m.expired(e)
}

func (m *memoryTier) removeLocked(key string, e memoryEntry) {
	delete(m.entries, key)
	m.bytes -= e.weight
}

func (m *memoryTier) purgeExpiredLocked() {
	for k, e := range m.entries {
		if m.expired(e) {
			m.removeLocked(k, e)
		}
	}
}

func (m *memoryTier) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.entries)
	m.bytes = 0
}

// size reports the live entries and their bytes.
func (m *memoryTier) size() (int, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purgeExpiredLocked()
	return len(m.entries), uint64(m.bytes)
}
