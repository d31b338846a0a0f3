package cache

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
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
	tags    []string // what InvalidateTags may remove it by
}

func newMemoryTier(maxBytes int) *memoryTier {
	return &memoryTier{maxBytes: maxBytes, now: time.Now, entries: map[string]memoryEntry{}}
}

func weight(key string, value json.RawMessage, tags []string) int {
	w := len(key) + len(value) + entryOverhead
	for _, t := range tags {
		w += len(t) + 16
	}
	return w
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
	return m.setTagged(key, value, ttl, nil)
}

func (m *memoryTier) setTagged(key string, value json.RawMessage, ttl time.Duration, tags []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setLocked(key, value, ttl, tags)
}

func (m *memoryTier) setLocked(key string, value json.RawMessage, ttl time.Duration, tags []string) error {
	if old, ok := m.entries[key]; ok {
		if !m.expired(old) {
			// As in Redis's tag index: a key written with a tag stays
			// invalidatable by it until it is deleted, whatever later
			// writes say.
			for _, t := range old.tags {
				if !slices.Contains(tags, t) {
					tags = append(slices.Clip(tags), t)
				}
			}
		}
		m.removeLocked(key, old)
	}
	w := weight(key, value, tags)
	if m.bytes+w > m.maxBytes {
		m.purgeExpiredLocked()
		if m.bytes+w > m.maxBytes {
			return errFallbackFull
		}
	}
	// The caller may reuse its slice, and its strings may be views of a
	// request's buffer (the GraphQL layer decodes without copying): what
	// is kept is copied.
	e := memoryEntry{value: append(json.RawMessage(nil), value...), weight: w, tags: ownedTags(tags)}
	if ttl > 0 {
		e.expires = m.now().Add(ttl)
	}
	m.entries[key] = e
	m.bytes += w
	return nil
}

// getEntry returns the value with its remaining TTL (zero: none).
func (m *memoryTier) getEntry(key string) (json.RawMessage, time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.liveLocked(key)
	if !ok {
		return nil, 0, false
	}
	var ttl time.Duration
	if !e.expires.IsZero() {
		ttl = e.expires.Sub(m.now())
	}
	return e.value, ttl, true
}

func (m *memoryTier) liveLocked(key string) (memoryEntry, bool) {
	e, ok := m.entries[key]
	if ok && m.expired(e) {
		m.removeLocked(key, e)
		return memoryEntry{}, false
	}
	return e, ok
}

// setIf stores value only if cond holds for the current entry, atomically;
// it reports whether it stored, and the current value's etag when it did
// not (empty when there is none).
func (m *memoryTier) setIf(key string, value json.RawMessage, ttl time.Duration, tags []string, cond Condition) (bool, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, exists := m.liveLocked(key)
	current := ""
	if exists {
		current = ETag(e.value)
	}
	if !cond.holds(exists, current) {
		return false, current, nil
	}
	return true, "", m.setLocked(key, value, ttl, tags)
}

// incr adds by to the integer stored at key (0 when absent), applying ttl
// only when it creates the key, as Increment does in Redis.
func (m *memoryTier) incr(key string, by int64, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, exists := m.liveLocked(key)
	var n int64
	if exists {
		var err error
		if n, err = parseCounter(e.value); err != nil {
			return 0, err
		}
	}
	sum, err := addCounter(n, by)
	if err != nil {
		return 0, err
	}
	remaining := ttl
	if exists {
		remaining = 0
		if !e.expires.IsZero() {
			remaining = e.expires.Sub(m.now())
		}
	}
	return sum, m.setLocked(key, json.RawMessage(strconv.FormatInt(sum, 10)), remaining, e.tags)
}

// expire sets a new TTL on key (zero: none) and reports whether it existed.
func (m *memoryTier) expire(key string, ttl time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.liveLocked(key)
	if !ok {
		return false
	}
	e.expires = time.Time{}
	if ttl > 0 {
		e.expires = m.now().Add(ttl)
	}
	m.entries[key] = e
	return true
}

// invalidateTags removes every entry written with any of tags, and says how
// many it removed.
func (m *memoryTier) invalidateTags(tags []string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, e := range m.entries {
		if !slices.ContainsFunc(e.tags, func(t string) bool { return slices.Contains(tags, t) }) {
			continue
		}
		if !m.expired(e) {
			n++
		}
		m.removeLocked(k, e)
	}
	return n
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

// ownedTags is a copy of tags the store may keep.
func ownedTags(tags []string) []string {
	_, owned := ownStrings("", tags)
	return owned
}

// ownStrings copies first and rest, and the bytes of their strings, the
// bytes in one allocation: for strings kept past the call that gave them
// (see memoryTier.setLocked and queued.own).
func ownStrings(first string, rest []string) (string, []string) {
	n := len(first)
	for _, t := range rest {
		n += len(t)
	}
	if n == 0 {
		return "", slices.Clone(rest)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(first)
	for _, t := range rest {
		b.WriteString(t)
	}
	all := b.String()
	first, all = all[:len(first)], all[len(first):]
	var out []string
	if len(rest) > 0 {
		out = make([]string, len(rest))
		for i, t := range rest {
			out[i], all = all[:len(t)], all[len(t):]
		}
	}
	return first, out
}
