package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// 50 callers across two clients fetch a missing key at once: exactly one
// gets the lease; it writes after 300ms; every other caller returns the
// value within 500ms of the write, and none got a lease.
func TestFetchGivesOneLeaseAndWakesTheHerd(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.CommandTimeout = 2 * time.Second // a loaded machine must not turn a wait into NO_REPLY
	clients := []*cache.Client{newClient(t, opts), newClient(t, opts)}
	for _, c := range clients {
		ready(t, c)
	}
	herd(t, clients, "hot")
}

// herd runs the stampede on clients and checks its outcome.
func herd(t *testing.T, clients []*cache.Client, key string) {
	t.Helper()
	ctx := context.Background()
	type answer struct {
		r    cache.FetchResult
		err  error
		done time.Time
	}
	answers := make([]answer, 50)
	var wg sync.WaitGroup
	var written time.Time
	var writeMu sync.Mutex
	start := make(chan struct{})
	for i := range answers {
		c := clients[i%len(clients)]
		wg.Go(func() {
			<-start
			r, err := c.Fetch(ctx, key, 5*time.Second, 2*time.Second)
			answers[i] = answer{r, err, time.Now()}
			if r.Lease != "" {
				time.Sleep(300 * time.Millisecond) // computing
				writeMu.Lock()
				defer writeMu.Unlock()
				if _, err := c.SetWith(ctx, key, json.RawMessage(`"computed"`), cache.SetOptions{Lease: r.Lease, TTL: time.Minute}); err != nil {
					t.Errorf("SetWith(lease) = %v", err)
				}
				written = time.Now()
			}
		})
	}
	close(start)
	wg.Wait()
	leases, pending := 0, 0
	var lags []time.Duration
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("Fetch = %v", a.err)
		case a.r.Lease != "":
			leases++
		case a.r.Pending:
			pending++
		case a.r.Entry == nil || string(a.r.Entry.Value) != `"computed"`:
			t.Errorf("Fetch = %+v; want the computed value", a.r)
		default:
			lags = append(lags, a.done.Sub(written))
		}
	}
	if leases != 1 || pending != 0 {
		t.Fatalf("%d leases and %d pending of 50 fetches; want exactly one lease and nobody left pending", leases, pending)
	}
	slices.Sort(lags)
	p := func(q float64) time.Duration { return lags[int(q*float64(len(lags)-1))] }
	t.Logf("%d waiters got the value after the write: p50 %s, p99 %s, max %s", len(lags), p(.5), p(.99), lags[len(lags)-1])
	if max := lags[len(lags)-1]; max > 500*time.Millisecond {
		t.Errorf("the slowest waiter returned %s after the write; want within 500ms", max)
	}
}

func TestStaleWriteAfterAnInvalidationIsRefused(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	revokers := map[string]func(key string) error{
		"delete": func(k string) error { _, _, err := c.Delete(ctx, k); return err },
		"set":    func(k string) error { return set(ctx, c, k, json.RawMessage(`"fresh"`), 0) },
		"delete many": func(k string) error {
			_, err := c.DeleteMany(ctx, []string{k})
			return err
		},
		"increment": func(k string) error { _, _, err := c.Increment(ctx, k, 1, 0); return err },
		"tag invalidation": func(k string) error {
			_, err := c.InvalidateTags(ctx, []string{"t-" + k})
			return err
		},
	}
	for name, revoke := range revokers {
		t.Run(name, func(t *testing.T) {
			key := "stale:" + strings.ReplaceAll(name, " ", "-")
			r, err := c.Fetch(ctx, key, 5*time.Second, 0)
			if err != nil || r.Lease == "" {
				t.Fatalf("Fetch(%s) = %+v, %v; want a lease", key, r, err)
			}
			if name == "tag invalidation" {
				// The key was written with the tag before; the holder's
				// lease is for a later value.
				if _, err := srv.Do(t, "ZADD", "school-erp:cache-service internal:tag:t-"+key, "1", "school-erp:"+key); err != nil {
					t.Fatal(err)
				}
			}
			if err := revoke(key); err != nil {
				t.Fatal(err)
			}
			before, _ := srv.Do(t, "GET", "school-erp:"+key)
			_, err = c.SetWith(ctx, key, json.RawMessage(`"stale"`), cache.SetOptions{Lease: r.Lease})
			if !errors.Is(err, cache.ErrLeaseInvalid) {
				t.Errorf("SetWith(lease) after a %s = %v; want ErrLeaseInvalid", name, err)
			}
			if after, _ := srv.Do(t, "GET", "school-erp:"+key); after != before {
				t.Errorf("Redis holds %q after the refused write; want %q, unchanged", after, before)
			}
		})
	}
	// A compare-and-set revokes too. (Here the value appears behind the
	// service's back, so that one is there to compare against while the
	// lease is out.)
	r, err := c.Fetch(ctx, "cas", 5*time.Second, 0)
	if err != nil || r.Lease == "" {
		t.Fatalf("Fetch(cas) = %+v, %v; want a lease", r, err)
	}
	if _, err := srv.Do(t, "SET", "school-erp:cas", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWith(ctx, "cas", json.RawMessage(`2`), cache.SetOptions{Condition: cache.Condition{IfETag: cache.ETag([]byte("1"))}}); err != nil {
		t.Fatalf("SetWith(IfETag) = %v", err)
	}
	if _, err := c.SetWith(ctx, "cas", json.RawMessage(`"stale"`), cache.SetOptions{Lease: r.Lease}); !errors.Is(err, cache.ErrLeaseInvalid) {
		t.Errorf("SetWith(lease) after a compare-and-set = %v; want ErrLeaseInvalid", err)
	}
}

func TestLeaseExpiresAndTheNextCallerGetsOne(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	first, err := c.Fetch(ctx, "k", 200*time.Millisecond, 0)
	if err != nil || first.Lease == "" {
		t.Fatalf("Fetch = %+v, %v; want a lease", first, err)
	}
	if r, _ := c.Fetch(ctx, "k", time.Second, 0); r.Lease != "" || !r.Pending {
		t.Errorf("second Fetch while the lease is out = %+v; want pending, no lease", r)
	}
	time.Sleep(300 * time.Millisecond) // the holder never writes
	second, err := c.Fetch(ctx, "k", time.Second, 0)
	if err != nil || second.Lease == "" || second.Lease == first.Lease {
		t.Errorf("Fetch after the lease expired = %+v, %v; want a new lease", second, err)
	}
	if _, err := c.SetWith(ctx, "k", json.RawMessage(`1`), cache.SetOptions{Lease: first.Lease}); !errors.Is(err, cache.ErrLeaseInvalid) {
		t.Errorf("SetWith with the expired lease = %v; want ErrLeaseInvalid", err)
	}
	if _, err := c.SetWith(ctx, "k", json.RawMessage(`1`), cache.SetOptions{Lease: second.Lease}); err != nil {
		t.Errorf("SetWith with the live lease = %v; want stored", err)
	}
	if r, _ := c.Fetch(ctx, "k", time.Second, 0); r.Entry == nil || string(r.Entry.Value) != "1" {
		t.Errorf("Fetch after the holder wrote = %+v; want the value", r)
	}
	for name, opts := range map[string]cache.SetOptions{
		"a malformed lease":       {Lease: "abc"},
		"a lease and a condition": {Lease: second.Lease, Condition: cache.Condition{IfAbsent: true}},
	} {
		if _, err := c.SetWith(ctx, "k", json.RawMessage(`1`), opts); !errors.Is(err, cache.ErrInvalidInput) {
			t.Errorf("SetWith with %s = %v; want ErrInvalidInput", name, err)
		}
	}
}

// While Redis is down, Fetch grants no lease and does not wait.
func TestFetchDuringAnOutage(t *testing.T) {
	for _, fallback := range []cache.FallbackMode{cache.FallbackNone, cache.FallbackMemory} {
		opts := fastOptions("127.0.0.1:1", &logBuffer{}) // nothing listens there
		opts.Fallback = fallback
		c := newClient(t, opts)
		start := time.Now()
		r, err := c.Fetch(context.Background(), "k", time.Second, 2*time.Second)
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("%s: Fetch during an outage took %s; want an answer at once", fallback, d)
		}
		if !errors.Is(err, cache.ErrUnavailable) || r.Lease != "" || r.Pending {
			t.Errorf("%s: Fetch during an outage = %+v, %v; want ErrUnavailable, no lease, not pending", fallback, r, err)
		}
	}
}

func TestGetOrCompute(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.CommandTimeout = 2 * time.Second
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	var mu sync.Mutex
	computed := 0
	compute := func(context.Context) (json.RawMessage, error) {
		mu.Lock()
		computed++
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		return json.RawMessage(`{"report":true}`), nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, err := c.GetOrCompute(ctx, "report", time.Minute, compute)
			if err != nil || string(v) != `{"report":true}` {
				t.Errorf("GetOrCompute = %s, %v", v, err)
			}
		})
	}
	wg.Wait()
	if computed != 1 {
		t.Errorf("20 concurrent GetOrCompute computed %d times; want once", computed)
	}
}

func TestFetchHerdInACluster(t *testing.T) {
	_, addrs := startCluster(t)
	opts := fastOptions("", &logBuffer{})
	opts.Addr, opts.ClusterAddrs = "", addrs[:1]
	opts.CommandTimeout = 2 * time.Second
	clients := []*cache.Client{newClient(t, opts), newClient(t, opts)}
	for _, c := range clients {
		ready(t, c)
	}
	for _, key := range []string{"hot", "a}b{c", "{x}y"} { // keys whose lease needs a slot tag
		herd(t, clients, key)
	}
}
