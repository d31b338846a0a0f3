package cache

import (
	"encoding/json"
	"time"

	"github.com/maypok86/otter/v2"
)

// FallbackMode says what serves the cache while Redis is unavailable.
type FallbackMode string

const (
	// FallbackNone: reads miss and writes report ErrUnavailable.
	FallbackNone FallbackMode = "none"
	// FallbackMemory: a bounded in-process store answers instead. It is
	// emptied when Redis becomes unavailable and again when it returns:
	// values written during an outage live only in this process, and are
	// not copied to Redis.
	FallbackMemory FallbackMode = "memory"
)

// FallbackHealth describes the fallback tier.
type FallbackHealth struct {
	Mode FallbackMode
	// Active is true while the fallback tier is answering for Redis.
	Active bool
	// Entries and Bytes are what it holds now.
	Entries int
	Bytes   uint64
}

// entryOverhead approximates what an entry costs beyond its key and value,
// so that many tiny entries cannot exceed the byte bound by much.
const entryOverhead = 64

// memoryTier is the bounded in-process store behind FallbackMemory: otter
// evicts by weight (bytes) and expires each entry after its own TTL.
type memoryTier struct {
	cache     *otter.Cache[string, memoryEntry]
	maxWeight int
}

type memoryEntry struct {
	value json.RawMessage
	ttl   time.Duration // zero: no expiry
}

// noExpiry is "never" for otter, which wants a duration.
const noExpiry = 100 * 365 * 24 * time.Hour

func newMemoryTier(maxBytes int) (*memoryTier, error) {
	c, err := otter.New(&otter.Options[string, memoryEntry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(key string, e memoryEntry) uint32 {
			return uint32(min(weight(key, e.value), 1<<32-1))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memoryEntry]) time.Duration {
			if e.Value.ttl == 0 {
				return noExpiry
			}
			return e.Value.ttl
		}),
	})
	if err != nil {
		return nil, err
	}
	return &memoryTier{cache: c, maxWeight: maxBytes}, nil
}

func weight(key string, value json.RawMessage) int {
	return len(key) + len(value) + entryOverhead
}

func (m *memoryTier) get(key string) (json.RawMessage, bool) {
	e, ok := m.cache.GetIfPresent(key)
	return e.value, ok
}

// set stores value unless it alone outweighs the whole tier (otter would
// evict it at once, and the write would be reported stored for nothing).
func (m *memoryTier) set(key string, value json.RawMessage, ttl time.Duration) bool {
	if weight(key, value) > m.maxWeight {
		m.cache.Invalidate(key) // an older value must not stand in for this write
		return false
	}
	// Copy: the caller's slice may be reused after Set returns.
	m.cache.Set(key, memoryEntry{value: append(json.RawMessage(nil), value...), ttl: ttl})
	return true
}

func (m *memoryTier) delete(key string) bool {
	_, ok := m.cache.Invalidate(key)
	return ok
}

func (m *memoryTier) clear() { m.cache.InvalidateAll() }

func (m *memoryTier) size() (int, uint64) {
	return m.cache.EstimatedSize(), m.cache.WeightedSize()
}

func (m *memoryTier) close() { m.cache.StopAllGoroutines() }
