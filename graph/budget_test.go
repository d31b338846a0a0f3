package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
)

// sizedCache answers every key with a JSON string of size bytes, and
// records what was read: how often each key, how many keys at once, and
// the most bytes that reads in flight held together.
type sizedCache struct {
	stubCache
	size int

	mu       sync.Mutex
	reads    map[string]int
	batches  []int
	inFlight int
	peak     int
}

func newSizedCache(size int) *sizedCache { return &sizedCache{size: size, reads: map[string]int{}} }

func (c *sizedCache) value() json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("v", c.size-2) + `"`)
}

func (c *sizedCache) read(keys []string) func() {
	c.mu.Lock()
	for _, k := range keys {
		c.reads[k]++
	}
	c.batches = append(c.batches, len(keys))
	c.inFlight += len(keys) * c.size
	c.peak = max(c.peak, c.inFlight)
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // long enough for fields to overlap
	return func() {
		c.mu.Lock()
		c.inFlight -= len(keys) * c.size
		c.mu.Unlock()
	}
}

func (c *sizedCache) Get(_ context.Context, key string) (json.RawMessage, cache.Backend, error) {
	defer c.read([]string{key})()
	return c.value(), cache.BackendRedis, nil
}

func (c *sizedCache) GetMany(_ context.Context, keys []string) ([]cache.Read, error) {
	defer c.read(keys)()
	reads := make([]cache.Read, len(keys))
	for i := range reads {
		reads[i] = cache.Read{Value: c.value(), Backend: cache.BackendRedis}
	}
	return reads, nil
}

type budgetResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// postQuery POSTs query to h; it may be called from any goroutine.
func postQuery(t *testing.T, h http.Handler, query string) budgetResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r budgetResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Errorf("%s: %v", rec.Body, err) // not Fatal: tests call this from goroutines
	}
	return r
}

func manyKeys(n int, key func(i int) string) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = key(i)
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

func TestResponseBudget(t *testing.T) {
	const (
		valueBytes = 1000
		limit      = 16 * valueBytes
	)
	same := func(int) string { return "k" }
	distinct := func(i int) string { return fmt.Sprintf("k%d", i) }
	var gets strings.Builder
	var getNames []string
	for i := range 17 {
		fmt.Fprintf(&gets, " g%02d: cacheGet(key: \"k%d\")", i, i)
		getNames = append(getNames, fmt.Sprintf("g%02d", i))
	}
	tests := []struct {
		name    string
		query   string
		refused []string // the fields named in the refusal; nil: answered
	}{
		{"one value", `{ cacheGet(key: "k") }`, nil},
		{"values up to the limit", `{ a: cacheGetMany(keys: ` + manyKeys(10, distinct) + `) b: cacheGetMany(keys: ` + manyKeys(6, same) + `) }`, nil},
		{"one key named past the limit", `{ cacheGetMany(keys: ` + manyKeys(17, same) + `) }`, []string{"cacheGetMany"}},
		{"two fields of the same key past the limit", `{ a: cacheGetMany(keys: ` + manyKeys(100, same) + `) b: cacheGetMany(keys: ` + manyKeys(100, same) + `) }`, []string{"a", "b"}},
		{"distinct keys past the limit", `{ a: cacheGetMany(keys: ` + manyKeys(100, distinct) + `) }`, []string{"a"}},
		{"cacheGet fields past the limit", "{" + gets.String() + " }", getNames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSizedCache(valueBytes)
			h := NewHandler(&Resolver{Cache: c}, HandlerOptions{Auth: auth.OpenAccess(), MaxResponseBytes: limit, MaxValueBytes: valueBytes})
			r := postQuery(t, h, tt.query)
			switch {
			case tt.refused == nil && (len(r.Errors) > 0 || string(r.Data) == "null"):
				t.Errorf("errors %+v, data %.100s; want the values", r.Errors, r.Data)
			case tt.refused != nil:
				if string(r.Data) != "null" || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != CodeResponseTooLarge {
					t.Fatalf("data %.100s, errors %+v; want data null and one RESPONSE_TOO_LARGE", r.Data, r.Errors)
				}
				if got, want := fmt.Sprint(r.Errors[0].Extensions["fields"]), fmt.Sprint(tt.refused); got != want {
					t.Errorf("fields %s; want %s (%s)", got, want, r.Errors[0].Message)
				}
			}
			// Each field reads a key once, however often it names it.
			fields := strings.Count(tt.query, "cacheGet")
			for k, n := range c.reads {
				if n > fields {
					t.Errorf("key %q read %d times by %d fields; want at most once each", k, n, fields)
				}
			}
			if c.peak > limit+valueBytes {
				t.Errorf("reads in flight held %d bytes at once; want at most the limit and one value, %d", c.peak, limit+valueBytes)
			}
		})
	}
}

// TestResponseBudgetBatchesReads: keys are read in batches of as many as
// fit in the budget at their largest, and the batches of one field, and of
// fields that run together, never bring more than the budget and one value.
func TestResponseBudgetBatchesReads(t *testing.T) {
	const valueBytes = 1000
	for _, limit := range []int{valueBytes, 16 * valueBytes, 100 * valueBytes} {
		t.Run(fmt.Sprintf("limit of %d values", limit/valueBytes), func(t *testing.T) {
			const small = 4 // 200 of them fit in the smallest limit
			c := newSizedCache(small)
			h := NewHandler(&Resolver{Cache: c}, HandlerOptions{Auth: auth.OpenAccess(), MaxResponseBytes: limit, MaxValueBytes: valueBytes})
			var q strings.Builder
			q.WriteString("{")
			for f := range 5 {
				fmt.Fprintf(&q, " f%d: cacheGetMany(keys: %s)", f, manyKeys(40, func(i int) string { return fmt.Sprintf("k%d-%d", f, i) }))
			}
			q.WriteString(" }")
			if r := postQuery(t, h, q.String()); len(r.Errors) > 0 {
				t.Fatalf("errors %+v", r.Errors)
			}
			if len(c.reads) != 200 {
				t.Errorf("%d keys read; want all 200", len(c.reads))
			}
			for _, n := range c.batches {
				if n > max(1, limit/valueBytes) {
					t.Errorf("a batch of %d keys; want at most %d", n, max(1, limit/valueBytes))
				}
			}
			if c.peak > (limit+valueBytes)/valueBytes*small {
				t.Errorf("reads in flight held %d keys at once; want at most %d", c.peak/small, (limit+valueBytes)/valueBytes)
			}
			if limit == 100*valueBytes && len(c.batches) > 5*2 {
				t.Errorf("%d batches for 5 fields of 40 keys with room for 100 keys; want few", len(c.batches))
			}
		})
	}
}

// TestResponseBudgetIsPerRequest: requests do not share a budget, and a
// refused request leaves none behind.
func TestResponseBudgetIsPerRequest(t *testing.T) {
	const valueBytes = 1000
	c := newSizedCache(valueBytes)
	h := NewHandler(&Resolver{Cache: c}, HandlerOptions{Auth: auth.OpenAccess(), MaxResponseBytes: 16 * valueBytes, MaxValueBytes: valueBytes})
	var refused, answered atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			n := 10
			if i%2 == 0 {
				n = 30
			}
			r := postQuery(t, h, `{ cacheGetMany(keys: `+manyKeys(n, func(j int) string { return fmt.Sprintf("k%d-%d", i, j) })+`) }`)
			switch {
			case n == 30 && len(r.Errors) == 1 && r.Errors[0].Extensions["code"] == CodeResponseTooLarge:
				refused.Add(1)
			case n == 10 && len(r.Errors) == 0:
				answered.Add(1)
			default:
				t.Errorf("%d keys of %d bytes: %+v", n, valueBytes, r.Errors)
			}
		})
	}
	wg.Wait()
	if refused.Load() != 10 || answered.Load() != 10 {
		t.Errorf("%d refused, %d answered; want 10 and 10", refused.Load(), answered.Load())
	}
}

// panickyCache panics on a read of "boom", after the other fields had time
// to wait for the room its read holds.
type panickyCache struct{ *sizedCache }

func (c panickyCache) GetMany(ctx context.Context, keys []string) ([]cache.Read, error) {
	if keys[0] == "boom" {
		time.Sleep(20 * time.Millisecond)
		panic("boom")
	}
	return c.sizedCache.GetMany(ctx, keys)
}

// TestResponseBudgetSurvivesAPanic: a read that panics gives its room back,
// so the fields waiting for it go on.
func TestResponseBudgetSurvivesAPanic(t *testing.T) {
	const valueBytes = 1000
	h := NewHandler(&Resolver{Cache: panickyCache{newSizedCache(valueBytes)}}, HandlerOptions{Auth: auth.OpenAccess(), MaxResponseBytes: 2 * valueBytes, MaxValueBytes: valueBytes})
	done := make(chan budgetResponse, 1)
	go func() {
		done <- postQuery(t, h, `{ a: cacheGetMany(keys: ["boom", "x"]) b: cacheGetMany(keys: ["y"]) }`)
	}()
	select {
	case r := <-done:
		if string(r.Data) != `{"a":null,"b":["`+strings.Repeat("v", valueBytes-2)+`"]}` || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != CodeInternal {
			t.Errorf("data %.80s, errors %+v; want a null with an internal error, b read", r.Data, r.Errors)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer 5s after a read panicked: its reservation was never returned")
	}
}

// GetRead is Get as a Read.
func (c *sizedCache) GetRead(ctx context.Context, key string) cache.Read {
	v, backend, err := c.Get(ctx, key)
	return cache.Read{Value: v, Backend: backend, Err: err}
}
