package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// getCalls reads how many GETs the server has executed.
func getCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	v, _ := strconv.Atoi(statField(t, srv, "cmdstat_get", "calls"))
	return v
}

func statField(t *testing.T, srv *redistest.Server, stat, field string) string {
	t.Helper()
	text, err := srv.Do(t, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), stat+":"); ok {
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, field+"="); ok {
					return v
				}
			}
		}
	}
	return "0"
}

// readUntil reads key on c until it returns want, and says how long that took.
func readUntil(t *testing.T, c *cache.Client, key, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		v, _, err := c.Get(context.Background(), key)
		if err == nil && string(v) == want || want == "" && err == nil && v == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("Get(%q) = %s, %v; want %q within %s", key, v, err, want, within)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClientSideCachingIsCoherent(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	b := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, a)
	ready(t, b)
	ctx := context.Background()
	if h := a.Health(); h.ClientCache != cache.ClientCacheOn {
		t.Fatalf("Health().ClientCache = %s; want on", h.ClientCache)
	}

	if err := set(ctx, a, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	readUntil(t, a, "k", "1", time.Second)
	before := getCalls(t, srv)
	for range 50 {
		if v, _, _ := a.Get(ctx, "k"); string(v) != "1" {
			t.Fatalf("Get(k) = %s; want 1", v)
		}
	}
	if after := getCalls(t, srv); after != before {
		t.Errorf("50 repeated reads sent %d GETs to Redis; want 0 (served from the local cache)", after-before)
	}

	// Writes by another instance, and directly in Redis, reach a's cache
	// through invalidation messages (one hop), not a timer.
	if err := set(ctx, b, "k", json.RawMessage(`2`), 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("write by another instance visible after %s", readUntil(t, a, "k", "2", 100*time.Millisecond))
	if _, err := srv.Do(t, "SET", "school-erp:k", "3"); err != nil {
		t.Fatal(err)
	}
	t.Logf("write in Redis visible after %s", readUntil(t, a, "k", "3", 100*time.Millisecond))
	if _, err := del(ctx, b, "k"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, a, "k", "", 100*time.Millisecond)

	// A client's own writes are visible to its very next read.
	for i := range 1000 {
		want := strconv.Itoa(i)
		if err := set(ctx, a, "own", json.RawMessage(want), 0); err != nil {
			t.Fatal(err)
		}
		if v, _, err := a.Get(ctx, "own"); err != nil || string(v) != want {
			t.Fatalf("Get right after Set(own, %s) = %s, %v", want, v, err)
		}
		if ok, _, err := a.Exists(ctx, "own"); err != nil || !ok {
			t.Fatalf("Exists right after Set = %v, %v", ok, err)
		}
		if i%2 == 0 {
			if _, err := del(ctx, a, "own"); err != nil {
				t.Fatal(err)
			}
			if v, _, _ := a.Get(ctx, "own"); v != nil {
				t.Fatalf("Get right after Delete = %s; want a miss", v)
			}
			if ok, _, _ := a.Exists(ctx, "own"); ok {
				t.Fatal("Exists right after Delete = true")
			}
		}
	}
}

func TestClientCacheDroppedWithTheConnection(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "k", json.RawMessage(`"cached"`), 0); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "k", `"cached"`, time.Second)
	srv.Kill()
	srv.Start() // empty: nothing is persisted
	eventually(t, 5*time.Second, "reads reach the restarted Redis", func() bool {
		v, b, err := c.Get(ctx, "k")
		return err == nil && v == nil && b == cache.BackendRedis
	})
}

func TestClientCacheOffWhenDisabled(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.DisableClientCache = true
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	before := getCalls(t, srv)
	for range 10 {
		_, _, _ = c.Get(ctx, "k")
	}
	if n := getCalls(t, srv) - before; n != 10 {
		t.Errorf("10 reads with client-side caching off sent %d GETs; want 10", n)
	}
	if h := c.Health(); h.ClientCache != cache.ClientCacheOff {
		t.Errorf("Health().ClientCache = %s; want off", h.ClientCache)
	}
}

func TestGetMany(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	for _, k := range []string{"a", "c"} {
		if err := set(ctx, c, k, json.RawMessage(`"`+k+`"`), 0); err != nil {
			t.Fatal(err)
		}
	}
	reads, err := c.GetMany(ctx, []string{"a", "b", "c", "a"})
	var got []string
	for _, r := range reads {
		got = append(got, string(r.Value))
		if r.Err != nil || r.Backend != cache.BackendRedis {
			t.Errorf("GetMany read %+v; want an answer from Redis", r)
		}
	}
	if err != nil || strings.Join(got, ",") != `"a",,"c","a"` {
		t.Errorf("GetMany(a,b,c,a) = %q, %v; want values in key order, empty for the miss", got, err)
	}
	// A second read is served locally, and a write elsewhere is seen.
	before := getCalls(t, srv)
	if _, err := c.GetMany(ctx, []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	if n := getCalls(t, srv) - before; n != 0 {
		t.Errorf("repeated GetMany sent %d GETs; want 0 (client-side cache)", n)
	}
	if _, err := srv.Do(t, "SET", "school-erp:c", `"changed"`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 100*time.Millisecond, "GetMany sees a write in Redis", func() bool {
		r, _ := c.GetMany(ctx, []string{"c"})
		return string(r[0].Value) == `"changed"`
	})

	tooMany := make([]string, cache.MaxGetManyKeys+1)
	for i := range tooMany {
		tooMany[i] = strconv.Itoa(i)
	}
	if _, err := c.GetMany(ctx, tooMany); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("GetMany with too many keys: error = %v; want ErrInvalidInput", err)
	}
	// A bad key is refused at its index; the others are still read.
	if r, err := c.GetMany(ctx, []string{"a", ""}); err != nil || string(r[0].Value) != `"a"` || !errors.Is(r[1].Err, cache.ErrInvalidInput) {
		t.Errorf("GetMany(a, \"\") = %+v, %v; want a's value and ErrInvalidInput at index 1", r, err)
	}
	if v, err := c.GetMany(ctx, nil); err != nil || len(v) != 0 {
		t.Errorf("GetMany(nil) = %v, %v; want an empty result", v, err)
	}
}

// TestClientCacheStateIsKnownOnlyWhileConnected: before Redis was ever
// reached, and while it is gone, no connection says whether the server
// allows tracking (and nothing is cached): Health says unknown, not on.
func TestClientCacheStateIsKnownOnlyWhileConnected(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	h := waitStatus(t, c, cache.StatusDisconnected, time.Second)
	if h.ClientCache != cache.ClientCacheUnknown {
		t.Errorf("before Redis was reached: Health().ClientCache = %s; want unknown", h.ClientCache)
	}
	srv.Start()
	if h := waitStatus(t, c, cache.StatusConnected, 5*time.Second); h.ClientCache != cache.ClientCacheOn {
		t.Errorf("connected: Health().ClientCache = %s; want on", h.ClientCache)
	}
	srv.Kill()
	if h := waitStatus(t, c, cache.StatusDisconnected, 5*time.Second); h.ClientCache != cache.ClientCacheUnknown {
		t.Errorf("Redis gone: Health().ClientCache = %s; want unknown", h.ClientCache)
	}
}
