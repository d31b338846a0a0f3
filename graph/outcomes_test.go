package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
)

// recordingCache answers as configured and keeps what writes were given.
type recordingCache struct {
	stubCache
	backend cache.Backend // what reads answer from
	entry   *cache.Entry
	health  cache.Health
	setErr  error
	setRes  cache.SetResult
	delErr  error

	mu     sync.Mutex
	values []string
	opts   []cache.SetOptions
}

func (c *recordingCache) Get(context.Context, string) (json.RawMessage, cache.Backend, error) {
	return json.RawMessage(`1`), c.backend, nil
}

// GetRead is Get as a Read (the compiled read path asks for a Read).
func (c *recordingCache) GetRead(ctx context.Context, key string) cache.Read {
	v, backend, err := c.Get(ctx, key)
	return cache.Read{Value: v, Backend: backend, Err: err}
}

func (c *recordingCache) SetWith(_ context.Context, _ string, value json.RawMessage, opts cache.SetOptions) (cache.SetResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values = append(c.values, string(value))
	c.opts = append(c.opts, opts)
	if c.setErr != nil {
		return c.setRes, c.setErr
	}
	return cache.SetResult{Backend: cache.BackendRedis}, nil
}

func (c *recordingCache) SetMany(_ context.Context, entries []cache.SetEntry) ([]cache.WriteResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]cache.WriteResult, len(entries))
	for i, e := range entries {
		c.values = append(c.values, string(e.Value))
		out[i] = cache.WriteResult{Backend: cache.BackendRedis}
	}
	return out, nil
}

func (c *recordingCache) Delete(context.Context, string) (bool, cache.Backend, error) {
	if c.delErr != nil {
		return false, "", c.delErr
	}
	return true, cache.BackendRedis, nil
}

func (c *recordingCache) GetEntry(context.Context, string) (*cache.Entry, error) { return c.entry, nil }

func (c *recordingCache) Health() cache.Health { return c.health }

// post sends query with vars through a handler on c and returns the body.
func post(t *testing.T, c Cache, query string, vars map[string]any) string {
	t.Helper()
	h := NewHandler(&Resolver{Cache: c}, HandlerOptions{Auth: auth.OpenAccess()})
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return send(h, string(body), nil).body
}

// What a payload and a health report say, field by field, for what the
// cache answered.
func TestOutcomesAsTheClientSeesThem(t *testing.T) {
	t.Run("ttlSeconds becomes the write's TTL", func(t *testing.T) {
		c := &recordingCache{}
		post(t, c, `mutation { cacheSet(key: "k", value: 1, ttlSeconds: 30) { stored } }`, nil)
		if len(c.opts) != 1 || c.opts[0].TTL != 30*time.Second {
			t.Errorf("SetWith options %+v; want TTL 30s", c.opts)
		}
	})
	t.Run("a read from memory warns, one from Redis does not", func(t *testing.T) {
		for backend, want := range map[cache.Backend]bool{cache.BackendMemory: true, cache.BackendRedis: false} {
			got := post(t, &recordingCache{backend: backend}, `{ cacheGet(key: "k") }`, nil)
			if strings.Contains(got, WarningServedFromMemory) != want {
				t.Errorf("cacheGet answered by %s: %s; want a %s warning: %v", backend, got, WarningServedFromMemory, want)
			}
		}
	})
	t.Run("health fields present only when known", func(t *testing.T) {
		q := `{ redisHealth { latencyMs respVersion fallback { mode } } }`
		known := post(t, &recordingCache{health: cache.Health{Status: cache.StatusConnected, Latency: 1500 * time.Microsecond, RESP: 3, Fallback: cache.FallbackHealth{Mode: cache.FallbackMemory}}}, q, nil)
		if !strings.Contains(known, `"latencyMs":1.5,`) || !strings.Contains(known, `"respVersion":3,`) || !strings.Contains(known, `"mode":"MEMORY"`) {
			t.Errorf("redisHealth = %s; want latencyMs 1.5, respVersion 3, fallback mode MEMORY", known)
		}
		unknown := post(t, &recordingCache{health: cache.Health{Status: cache.StatusDisconnected, Fallback: cache.FallbackHealth{Mode: cache.FallbackNone}}}, q, nil)
		if !strings.Contains(unknown, `"latencyMs":null`) || !strings.Contains(unknown, `"respVersion":null`) || !strings.Contains(unknown, `"mode":"NONE"`) {
			t.Errorf("redisHealth = %s; want latencyMs and respVersion null, fallback mode NONE", unknown)
		}
	})
	t.Run("a remaining TTL in whole seconds, rounded up; none is null", func(t *testing.T) {
		for ttl, want := range map[time.Duration]string{300 * time.Millisecond: `"ttlSeconds":1}`, 2 * time.Second: `"ttlSeconds":2}`, 0: `"ttlSeconds":null}`} {
			c := &recordingCache{entry: &cache.Entry{Value: json.RawMessage(`1`), TTL: ttl, ETag: "e", Backend: cache.BackendRedis}}
			if got := post(t, c, `{ cacheEntry(key: "k") { ttlSeconds } }`, nil); !strings.Contains(got, want) {
				t.Errorf("cacheEntry with %s left = %s; want %s", ttl, got, want)
			}
		}
	})
	t.Run("currentEtag only when the condition refused the write", func(t *testing.T) {
		q := `mutation { cacheSet(key: "k", value: 1, ifAbsent: true) { stored failure currentEtag } }`
		refused := post(t, &recordingCache{setErr: cache.ErrConditionNotMet, setRes: cache.SetResult{CurrentETag: "abc"}}, q, nil)
		if !strings.Contains(refused, `"failure":"CONDITION_NOT_MET","currentEtag":"abc"`) {
			t.Errorf("a write its condition refused = %s; want CONDITION_NOT_MET with currentEtag abc", refused)
		}
		rejected := post(t, &recordingCache{setErr: fmt.Errorf("%w: OOM", cache.ErrRejected), setRes: cache.SetResult{CurrentETag: "abc"}}, q, nil)
		if !strings.Contains(rejected, `"failure":"REJECTED","currentEtag":null`) {
			t.Errorf("a write Redis rejected = %s; want REJECTED with no currentEtag", rejected)
		}
	})
	t.Run("a delete says whether it was confirmed", func(t *testing.T) {
		q := `mutation { cacheDelete(key: "k") { deleted backend failure } }`
		if got := post(t, &recordingCache{}, q, nil); !strings.Contains(got, `"deleted":true,"backend":"REDIS","failure":null`) {
			t.Errorf("a confirmed delete = %s; want deleted true from REDIS", got)
		}
		if got := post(t, &recordingCache{delErr: fmt.Errorf("%w: down", cache.ErrUnavailable)}, q, nil); !strings.Contains(got, `"deleted":false,"backend":null,"failure":"REDIS_UNAVAILABLE"`) {
			t.Errorf("a delete Redis did not get = %s; want REDIS_UNAVAILABLE, not deleted", got)
		}
	})
}

// Values are stored as the client sent them: a variable's JSON text, keys
// in its order, for cacheSet and for each entry of cacheSetMany; null when
// the client gave null, and refused when it gave nothing.
func TestValuesAreStoredAsSent(t *testing.T) {
	const text = `{"b":1,"a":[2,{"d":3,"c":4}]}`
	tests := []struct {
		name, query, vars string
		want              []string // values stored, in order
		wantCode          string
	}{
		{"a JSON variable", `mutation($v: JSON!) { cacheSet(key: "k", value: $v) { stored } }`, `{"v":` + text + `}`, []string{text}, ""},
		{"a JSON field of a list of inputs", `mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, `{"e":[{"key":"k","value":` + text + `},{"key":"j","value":[1]}]}`, []string{text, `[1]`}, ""},
		{"null given", `mutation { cacheSet(key: "k", value: null) { stored } }`, `{}`, []string{"null"}, ""},
		{"null given through a variable", `mutation($v: JSON) { cacheSet(key: "k", value: $v) { stored } }`, `{"v":null}`, []string{"null"}, ""},
		{"nothing given", `mutation($v: JSON) { cacheSet(key: "k", value: $v) { stored } }`, `{}`, nil, CodeBadUserInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &recordingCache{}
			h := NewHandler(&Resolver{Cache: c}, HandlerOptions{Auth: auth.OpenAccess()})
			q, _ := json.Marshal(tt.query)
			raw := send(h, `{"query":`+string(q)+`,"variables":`+tt.vars+`}`, nil).body
			if fmt.Sprint(c.values) != fmt.Sprint(tt.want) {
				t.Errorf("stored %q; want %q (%s)", c.values, tt.want, raw)
			}
			if tt.wantCode != "" && !strings.Contains(raw, tt.wantCode) {
				t.Errorf("answer %s; want %s", raw, tt.wantCode)
			}
		})
	}
}

// Number literals Redis or JSON cannot hold are refused wherever they are
// in the document, as BAD_USER_INPUT, before anything is written.
func TestNumberLiteralsAreCheckedEverywhere(t *testing.T) {
	tests := []struct {
		name, query string
		refused     bool
	}{
		{"in range", `mutation { cacheSet(key: "k", value: {a: [1, 2.5e10, -3]}) { stored } }`, false},
		{"an argument", `mutation { cacheSet(key: "k", value: 1e400) { stored } }`, true},
		{"an integer beyond int64", `mutation { cacheSet(key: "k", value: 123456789012345678901234567890) { stored } }`, true},
		{"inside an object in a list", `mutation { cacheSet(key: "k", value: {a: [1, 1e400]}) { stored } }`, true},
		{"in the second field", `mutation { a: cacheSet(key: "k", value: 1) { stored } b: cacheSet(key: "k", value: 1e400) { stored } }`, true},
		{"in a fragment", `mutation { ...F } fragment F on Mutation { cacheSet(key: "k", value: 1e400) { stored } }`, true},
		{"in an inline fragment", `mutation { ... on Mutation { cacheSet(key: "k", value: 1e400) { stored } } }`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &recordingCache{}
			raw := post(t, c, tt.query, nil)
			if refused := strings.Contains(raw, CodeBadUserInput) && strings.Contains(raw, "out of range"); refused != tt.refused {
				t.Errorf("%s answered %s; want refused as out of range: %v", tt.query, raw, tt.refused)
			}
			if tt.refused && len(c.values) > 0 {
				t.Errorf("%s stored %q; want nothing written", tt.query, c.values)
			}
		})
	}
}
