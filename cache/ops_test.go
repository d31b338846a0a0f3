package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

func TestGetEntry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	if e, err := c.GetEntry(ctx, "missing"); e != nil || err != nil {
		t.Errorf("GetEntry(missing) = %+v, %v; want nil, nil", e, err)
	}
	if _, err := c.SetWith(ctx, "k", json.RawMessage(`{"a":1}`), cache.SetOptions{TTL: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e, err := c.GetEntry(ctx, "k")
	if err != nil || e == nil || string(e.Value) != `{"a":1}` || e.Backend != cache.BackendRedis {
		t.Fatalf("GetEntry(k) = %+v, %v", e, err)
	}
	if e.TTL <= 29*time.Second || e.TTL > 30*time.Second {
		t.Errorf("GetEntry(k).TTL = %s; want just under 30s", e.TTL)
	}
	// Redis computes the same ETag over the stored bytes.
	sum, err := srv.Do(t, "EVAL", "return redis.sha1hex(redis.call('GET', KEYS[1]))", "1", "school-erp:k")
	if err != nil || e.ETag != sum {
		t.Errorf("GetEntry(k).ETag = %s; Redis's sha1hex = %s (%v)", e.ETag, sum, err)
	}
	if _, err := c.SetWith(ctx, "forever", json.RawMessage(`1`), cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.GetEntry(ctx, "forever"); e == nil || e.TTL != 0 {
		t.Errorf("GetEntry(forever) = %+v; want TTL 0 for a key that does not expire", e)
	}
}

func TestConditionalWrites(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	v1, v2 := json.RawMessage(`"one"`), json.RawMessage(`"two"`)
	if r, err := c.SetWith(ctx, "nx", v1, cache.SetOptions{Condition: cache.Condition{IfAbsent: true}}); err != nil || r.Backend != cache.BackendRedis {
		t.Fatalf("SetWith(nx, IfAbsent) on an absent key = %+v, %v; want stored", r, err)
	}
	r, err := c.SetWith(ctx, "nx", v2, cache.SetOptions{Condition: cache.Condition{IfAbsent: true}, TTL: time.Minute})
	if !errors.Is(err, cache.ErrConditionNotMet) || r.CurrentETag != cache.ETag(v1) {
		t.Errorf("SetWith(nx, IfAbsent) on a present key = %+v, %v; want ErrConditionNotMet with the current etag", r, err)
	}
	if v, _, _ := get(ctx, c, "nx"); string(v) != string(v1) {
		t.Errorf("Get(nx) = %s after a refused write; want %s", v, v1)
	}

	if _, err := c.SetWith(ctx, "cas", v1, cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.SetWith(ctx, "cas", v2, cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag(v1)}, TTL: time.Minute}); err != nil || r.Backend != cache.BackendRedis {
		t.Errorf("SetWith(cas, IfETag current) = %+v, %v; want stored", r, err)
	}
	if e, _ := c.GetEntry(ctx, "cas"); e == nil || string(e.Value) != string(v2) || e.TTL == 0 {
		t.Errorf("GetEntry(cas) = %+v; want two with its TTL", e)
	}
	r, err = c.SetWith(ctx, "cas", v1, cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag(v1)}})
	if !errors.Is(err, cache.ErrConditionNotMet) || r.CurrentETag != cache.ETag(v2) {
		t.Errorf("SetWith(cas, stale etag) = %+v, %v; want ErrConditionNotMet with two's etag", r, err)
	}
	r, err = c.SetWith(ctx, "absent", v1, cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag(v1)}})
	if !errors.Is(err, cache.ErrConditionNotMet) || r.CurrentETag != "" {
		t.Errorf("SetWith(absent, IfETag) = %+v, %v; want ErrConditionNotMet, no etag", r, err)
	}
	for name, cond := range map[string]cache.Condition{
		"both conditions":  {IfAbsent: true, IfETag: cache.ETag(v1)},
		"a malformed etag": {IfETag: "not-an-etag"},
	} {
		if _, err := c.SetWith(ctx, "k", v1, cache.SetOptions{Condition: cond}); !errors.Is(err, cache.ErrInvalidInput) {
			t.Errorf("SetWith with %s = %v; want ErrInvalidInput", name, err)
		}
	}
	// A server that has never seen the script gets it in full (NOSCRIPT).
	if _, err := srv.Do(t, "SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWith(ctx, "cas", v1, cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag(v2)}}); err != nil {
		t.Errorf("SetWith(cas) after SCRIPT FLUSH = %v; want stored", err)
	}
}

// 16 clients doing read-modify-write with IfETag on one key: no update is
// lost, so the final count equals the writes answered stored.
func TestCompareAndSetLosesNoUpdate(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.CommandTimeout = 3 * time.Second // atomicity is tested, not latency: a NO_REPLY write makes the count unknowable
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "count", json.RawMessage(`0`), 0); err != nil {
		t.Fatal(err)
	}
	var stored, refused atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for range 16 {
		wg.Go(func() {
			for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
				e, err := c.GetEntry(ctx, "count")
				if err != nil || e == nil {
					t.Errorf("GetEntry = %+v, %v", e, err)
					return
				}
				n, _ := strconv.Atoi(string(e.Value))
				_, err = c.SetWith(ctx, "count", json.RawMessage(strconv.Itoa(n+1)), cache.SetOptions{Condition: cache.Condition{IfETag: e.ETag}})
				switch {
				case err == nil:
					stored.Add(1)
				case errors.Is(err, cache.ErrConditionNotMet):
					refused.Add(1)
				default:
					t.Errorf("SetWith = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	v, _, _ := get(ctx, c, "count")
	if got := string(v); got != strconv.FormatInt(stored.Load(), 10) || refused.Load() == 0 {
		t.Errorf("final count %s after %d stored and %d refused; want the stored count, and some refusals (the test must race)", got, stored.Load(), refused.Load())
	}
}

func TestIncrement(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.CommandTimeout = 3 * time.Second // atomicity is tested, not latency: a NO_REPLY write makes the count unknowable
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()

	// 16 clients x 500: exactly 8000, and the TTL from the first increment
	// is never extended.
	const window = 20 * time.Second
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 500 {
				if _, _, err := c.Increment(ctx, "hits", 1, window); err != nil {
					t.Errorf("Increment = %v", err)
					return
				}
			}
		})
	}
	first, _ := srv.Do(t, "PTTL", "school-erp:hits")
	wg.Wait()
	if v, _, _ := get(ctx, c, "hits"); string(v) != "8000" {
		t.Errorf("counter after 16 x 500 increments = %s; want 8000 (a number, as Get returns it)", v)
	}
	last, _ := srv.Do(t, "PTTL", "school-erp:hits")
	f, _ := strconv.Atoi(first)
	l, _ := strconv.Atoi(last)
	if f <= 0 || l <= 0 || l > f {
		t.Errorf("PTTL went from %s to %s; want the creation TTL, never extended", first, last)
	}

	if n, _, err := c.Increment(ctx, "plain", -5, 0); err != nil || n != -5 {
		t.Errorf("Increment(plain, -5) = %d, %v; want -5", n, err)
	}
	if ttl, _ := srv.Do(t, "PTTL", "school-erp:plain"); ttl != "-1" {
		t.Errorf("PTTL(plain) = %s; want -1 (no TTL given)", ttl)
	}
	// 64 bits without loss; past them, refused.
	if err := set(ctx, c, "big", json.RawMessage("9223372036854775806"), 0); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Increment(ctx, "big", 1, 0); err != nil || n != 9223372036854775807 {
		t.Errorf("Increment(big) = %d, %v; want 9223372036854775807", n, err)
	}
	for name, key := range map[string]string{"overflow": "big", "not an integer": "text"} {
		_ = set(ctx, c, "text", json.RawMessage(`"abc"`), 0)
		if _, _, err := c.Increment(ctx, key, 1, time.Minute); !errors.Is(err, cache.ErrRejected) || !strings.Contains(err.Error(), "not a 64-bit integer") {
			t.Errorf("Increment with %s = %v; want ErrRejected saying why", name, err)
		}
	}
}

func TestExpire(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.Expire(ctx, "k", 10*time.Second); !ok || err != nil {
		t.Errorf("Expire(k, 10s) = %v, %v; want true", ok, err)
	}
	if e, _ := c.GetEntry(ctx, "k"); e == nil || e.TTL <= 9*time.Second {
		t.Errorf("GetEntry(k) = %+v; want a TTL of about 10s", e)
	}
	if ok, _, err := c.Expire(ctx, "k", 0); !ok || err != nil {
		t.Errorf("Expire(k, none) = %v, %v; want true", ok, err)
	}
	if e, _ := c.GetEntry(ctx, "k"); e == nil || e.TTL != 0 {
		t.Errorf("GetEntry(k) after removing its TTL = %+v; want no TTL", e)
	}
	for _, ttl := range []time.Duration{time.Second, 0} {
		if ok, _, err := c.Expire(ctx, "missing", ttl); ok || err != nil {
			t.Errorf("Expire(missing, %s) = %v, %v; want false", ttl, ok, err)
		}
	}
	if _, _, err := c.Expire(ctx, "k", -time.Second); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("Expire(k, -1s) = %v; want ErrInvalidInput", err)
	}
}

func TestSetManyAndDeleteMany(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	rs, err := c.SetMany(ctx, []cache.SetEntry{
		{Key: "a", Value: json.RawMessage(`1`)},
		{Key: "", Value: json.RawMessage(`2`)},
		{Key: "c", Value: json.RawMessage(`not json`)},
		{Key: "d", Value: json.RawMessage(`4`), TTL: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Err != nil || !errors.Is(rs[1].Err, cache.ErrInvalidInput) || !errors.Is(rs[2].Err, cache.ErrInvalidInput) || rs[3].Err != nil || rs[3].Backend != cache.BackendRedis {
		t.Errorf("SetMany results = %+v; want a and d stored, the bad entries refused at their index", rs)
	}
	if ttl, _ := srv.Do(t, "PTTL", "school-erp:d"); ttl == "-1" {
		t.Error("SetMany ignored d's TTL")
	}
	ds, err := c.DeleteMany(ctx, []string{"a", "missing", "", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if !ds[0].Deleted || ds[1].Deleted || ds[1].Err != nil || !errors.Is(ds[2].Err, cache.ErrInvalidInput) || !ds[3].Deleted {
		t.Errorf("DeleteMany results = %+v; want a and d deleted, missing not, the empty key refused", ds)
	}
	if n, _ := srv.Do(t, "DBSIZE"); n != "0" {
		t.Errorf("DBSIZE = %s after deleting everything; want 0", n)
	}
	too := make([]cache.SetEntry, cache.MaxBatch+1)
	if _, err := c.SetMany(ctx, too); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("SetMany of %d entries = %v; want ErrInvalidInput", len(too), err)
	}
	if _, err := c.DeleteMany(ctx, make([]string, cache.MaxBatch+1)); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("DeleteMany of %d keys = %v; want ErrInvalidInput", cache.MaxBatch+1, err)
	}
}

// Keys written with a tag through one client, read (and cached locally)
// through another, invalidated through the first: the second reads a miss
// for every one of them once the call returns.
func TestInvalidateTags(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	b := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, a)
	ready(t, b)
	ctx := context.Background()
	var keys []string
	for i := range 30 {
		key := fmt.Sprint("page:", i)
		keys = append(keys, key)
		tags := []string{"school:7"}
		if i%3 == 0 {
			tags = append(tags, "term:2026")
		}
		if _, err := a.SetWith(ctx, key, json.RawMessage(strconv.Itoa(i)), cache.SetOptions{Tags: tags, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	rs, _ := a.SetMany(ctx, []cache.SetEntry{{Key: "batch:1", Value: json.RawMessage(`1`), Tags: []string{"school:7"}}})
	if rs[0].Err != nil {
		t.Fatal(rs[0].Err)
	}
	keys = append(keys, "batch:1")
	if err := set(ctx, a, "untagged", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		for range 2 { // cached locally in b
			if v, _, _ := get(ctx, b, k); v == nil {
				t.Fatalf("Get(%s) through b = miss before invalidation", k)
			}
		}
	}
	r, err := a.InvalidateTags(ctx, []string{"school:7", "term:2026"})
	if err != nil || r.Deleted != len(keys) || r.Backend != cache.BackendRedis {
		t.Fatalf("InvalidateTags = %+v, %v; want %d deleted in Redis", r, err, len(keys))
	}
	for _, k := range keys {
		if v, _, err := get(ctx, b, k); v != nil || err != nil {
			t.Errorf("Get(%s) through b right after the invalidation = %s, %v; want a miss", k, v, err)
		}
	}
	if v, _, _ := get(ctx, b, "untagged"); v == nil {
		t.Error("an untagged key was invalidated")
	}
	if r, err := a.InvalidateTags(ctx, []string{"school:7"}); err != nil || r.Deleted != 0 {
		t.Errorf("second InvalidateTags = %+v, %v; want nothing left to delete", r, err)
	}
	for name, tags := range map[string][]string{"no tags": nil, "a tag with a space": {"a b"}} {
		if _, err := a.InvalidateTags(ctx, tags); !errors.Is(err, cache.ErrInvalidInput) {
			t.Errorf("InvalidateTags with %s = %v; want ErrInvalidInput", name, err)
		}
	}
	if _, err := a.SetWith(ctx, "k", json.RawMessage(`1`), cache.SetOptions{Tags: []string{""}}); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("SetWith with an empty tag = %v; want ErrInvalidInput", err)
	}
}

func TestInvalidateTagsInACluster(t *testing.T) {
	_, addrs := startCluster(t)
	opts := fastOptions("", &logBuffer{})
	opts.Addr = ""
	opts.ClusterAddrs = addrs[:1]
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	var entries []cache.SetEntry
	for i := range 40 { // spread over every node's slots
		entries = append(entries, cache.SetEntry{Key: fmt.Sprint("k", i), Value: json.RawMessage(`1`), Tags: []string{"all"}})
	}
	rs, err := c.SetMany(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("SetMany[%d] in a cluster = %v", i, r.Err)
		}
	}
	if r, err := c.InvalidateTags(ctx, []string{"all"}); err != nil || r.Deleted != len(entries) {
		t.Errorf("InvalidateTags in a cluster = %+v, %v; want %d deleted", r, err, len(entries))
	}
	for _, e := range entries {
		if v, _, _ := get(ctx, c, e.Key); v != nil {
			t.Errorf("Get(%s) after the invalidation = %s; want a miss", e.Key, v)
		}
	}
	exerciseOperations(t, c, "cluster:")
}

// Every new operation during an outage, with the memory fallback: truthful
// answers from memory, and an invalidation that says Redis was not reached.
func TestOperationsDuringAnOutage(t *testing.T) {
	opts := fastOptions("127.0.0.1:1", &logBuffer{}) // nothing listens there
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ctx := context.Background()
	v := json.RawMessage(`"v"`)
	if r, err := c.SetWith(ctx, "k", v, cache.SetOptions{TTL: time.Minute, Tags: []string{"t"}}); err != nil || r.Backend != cache.BackendMemory {
		t.Fatalf("SetWith during an outage = %+v, %v; want stored in memory", r, err)
	}
	e, err := c.GetEntry(ctx, "k")
	if err != nil || e == nil || e.Backend != cache.BackendMemory || e.ETag != cache.ETag(v) || e.TTL == 0 {
		t.Errorf("GetEntry during an outage = %+v, %v; want the entry from memory", e, err)
	}
	if _, err := c.SetWith(ctx, "k", v, cache.SetOptions{Condition: cache.Condition{IfAbsent: true}}); !errors.Is(err, cache.ErrConditionNotMet) {
		t.Errorf("SetWith(IfAbsent) on a key memory holds = %v; want ErrConditionNotMet", err)
	}
	if _, err := c.SetWith(ctx, "k", json.RawMessage(`2`), cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag(v)}}); err != nil {
		t.Errorf("SetWith(IfETag) matching memory's value = %v; want stored", err)
	}
	if n, b, err := c.Increment(ctx, "n", 3, time.Minute); n != 3 || b != cache.BackendMemory || err != nil {
		t.Errorf("Increment during an outage = %d, %s, %v; want 3 from memory", n, b, err)
	}
	if ok, b, err := c.Expire(ctx, "n", 0); !ok || b != cache.BackendMemory || err != nil {
		t.Errorf("Expire during an outage = %v, %s, %v; want true from memory", ok, b, err)
	}
	rs, _ := c.SetMany(ctx, []cache.SetEntry{{Key: "m1", Value: v, Tags: []string{"t"}}, {Key: "m2", Value: v}})
	if rs[0].Backend != cache.BackendMemory || rs[1].Backend != cache.BackendMemory {
		t.Errorf("SetMany during an outage = %+v; want both in memory", rs)
	}
	r, err := c.InvalidateTags(ctx, []string{"t"})
	if !errors.Is(err, cache.ErrUnavailable) || r.Deleted != 2 || r.Backend != cache.BackendMemory {
		t.Errorf("InvalidateTags during an outage = %+v, %v; want 2 removed from memory and ErrUnavailable (Redis not reached)", r, err)
	}
	if v, _, _ := get(ctx, c, "k"); v != nil {
		t.Errorf("Get(k) after the invalidation = %s; want gone from memory", v)
	}
	ds, _ := c.DeleteMany(ctx, []string{"m2", "gone"})
	if !ds[0].Deleted || ds[1].Deleted || ds[0].Backend != cache.BackendMemory {
		t.Errorf("DeleteMany during an outage = %+v; want m2 deleted from memory", ds)
	}

	none := fastOptions("127.0.0.1:1", &logBuffer{})
	n := newClient(t, none)
	if _, err := n.SetWith(ctx, "k", v, cache.SetOptions{}); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("SetWith without a fallback = %v; want ErrUnavailable", err)
	}
	if _, _, err := n.Increment(ctx, "k", 1, 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Increment without a fallback = %v; want ErrUnavailable", err)
	}
}

// A conditional write its condition refused does not tag the key: a later
// invalidation of that tag leaves the key alone.
func TestRefusedConditionalWriteDoesNotTag(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	for name, cond := range map[string]cache.Condition{"IfAbsent": {IfAbsent: true}, "IfETag": {IfETag: cache.ETag([]byte("2"))}} {
		if _, err := c.SetWith(ctx, "k", json.RawMessage(`3`), cache.SetOptions{Condition: cond, Tags: []string{"t"}}); !errors.Is(err, cache.ErrConditionNotMet) {
			t.Fatalf("SetWith(%s) = %v; want ErrConditionNotMet", name, err)
		}
	}
	if r, err := c.InvalidateTags(ctx, []string{"t"}); err != nil || r.Deleted != 0 {
		t.Errorf("InvalidateTags = %+v, %v; want nothing deleted: the key was never written with the tag", r, err)
	}
	if v, _, _ := get(ctx, c, "k"); string(v) != "1" {
		t.Errorf("Get(k) = %s; want 1", v)
	}
}

// exerciseOperations runs every operation beyond get and set once and
// checks what it answered, for the topology tests (Sentinel, Cluster).
func exerciseOperations(t *testing.T, c *cache.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	k := func(s string) string { return prefix + s }
	if _, err := c.SetWith(ctx, k("doc"), json.RawMessage(`1`), cache.SetOptions{Tags: []string{prefix + "tag"}, TTL: time.Minute}); err != nil {
		t.Fatalf("SetWith = %v", err)
	}
	e, err := c.GetEntry(ctx, k("doc"))
	if err != nil || e == nil || e.TTL == 0 {
		t.Fatalf("GetEntry = %+v, %v", e, err)
	}
	if _, err := c.SetWith(ctx, k("doc"), json.RawMessage(`2`), cache.SetOptions{Condition: cache.Condition{IfETag: e.ETag}}); err != nil {
		t.Errorf("SetWith(IfETag) = %v", err)
	}
	if n, _, err := c.Increment(ctx, k("n"), 2, time.Minute); n != 2 || err != nil {
		t.Errorf("Increment = %d, %v", n, err)
	}
	if ok, _, err := c.Expire(ctx, k("n"), 0); !ok || err != nil {
		t.Errorf("Expire = %v, %v", ok, err)
	}
	var entries []cache.SetEntry
	var keys []string
	for i := range 20 {
		entries = append(entries, cache.SetEntry{Key: k(fmt.Sprint("m", i)), Value: json.RawMessage(`1`), Tags: []string{prefix + "tag"}})
		keys = append(keys, k(fmt.Sprint("m", i)))
	}
	rs, err := c.SetMany(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Err != nil {
			t.Errorf("SetMany[%d] = %v", i, r.Err)
		}
	}
	if r, err := c.InvalidateTags(ctx, []string{prefix + "tag"}); err != nil || r.Deleted != 21 {
		t.Errorf("InvalidateTags = %+v, %v; want 21 deleted", r, err)
	}
	ds, err := c.DeleteMany(ctx, append(keys, k("n")))
	if err != nil {
		t.Fatal(err)
	}
	if !ds[len(ds)-1].Deleted || ds[0].Deleted {
		t.Errorf("DeleteMany = %+v; want only the counter deleted (the rest were invalidated)", ds)
	}
}
