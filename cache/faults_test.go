package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The tests here are regressions for the ways the service once broke its
// promise under faults: each was seen on real redis-server processes.

// Redis killed, quick writes of different keys with the memory fallback:
// every write answered stored must read back while Redis stays down. They
// used to vanish when the breaker opened, which emptied the store.
func TestFallbackKeepsEveryAcknowledgedWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()

	srv.Kill()
	acked := map[string]string{}
	for i := range 7 {
		key, value := fmt.Sprintf("quick:%d", i), fmt.Sprintf(`"v%d"`, i)
		if b, err := c.Set(ctx, key, json.RawMessage(value), 0); err == nil {
			acked[key] = value
			if b != cache.BackendMemory {
				t.Errorf("Set(%s) with Redis killed = stored in %s; want memory", key, b)
			}
		} else if !errors.Is(err, cache.ErrUnavailable) && !errors.Is(err, cache.ErrNoReply) {
			t.Errorf("Set(%s) with Redis killed = %v; want stored, or an outage error", key, err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged by the fallback with Redis down")
	}
	waitStatus(t, c, cache.StatusDisconnected, 2*time.Second)
	time.Sleep(300 * time.Millisecond) // several failed probes
	for key, want := range acked {
		if v, b, err := c.Get(ctx, key); string(v) != want || b != cache.BackendMemory || err != nil {
			t.Errorf("Get(%s) a while after it was acknowledged = %s, %s, %v; want %s from memory", key, v, b, err, want)
		}
	}
}

// Concurrent writers while Redis is killed: every write answered stored is
// readable, with its value or a newer acknowledged one, until Redis
// returns.
func TestFallbackUnderConcurrentWritersWhileRedisDies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()

	const writers, perWriter = 8, 150
	var mu sync.Mutex
	acked := map[string]cache.Backend{} // every write answered stored, by key
	var wg sync.WaitGroup
	var killed atomic.Bool
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if i == perWriter/3 && w == 0 {
					srv.Kill()
					killed.Store(true)
				}
				key := fmt.Sprintf("w%d:%d", w, i)
				b, err := c.Set(ctx, key, json.RawMessage(fmt.Sprint(i)), 0)
				if err != nil {
					continue
				}
				mu.Lock()
				acked[key] = b
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if !killed.Load() {
		t.Fatal("Redis was never killed")
	}
	waitStatus(t, c, cache.StatusDisconnected, 2*time.Second)
	time.Sleep(200 * time.Millisecond) // more failed probes
	memoryAcks, lost := 0, 0
	for key, b := range acked {
		if b != cache.BackendMemory {
			continue // acknowledged by Redis before it died: not the fallback's to keep
		}
		memoryAcks++
		_, i, _ := strings.Cut(key, ":")
		if v, vb, err := c.Get(ctx, key); err != nil || vb != cache.BackendMemory || string(v) != i {
			lost++
			if lost <= 5 {
				t.Errorf("Get(%s) = %s, %s, %v; want %s, acknowledged by the fallback", key, v, vb, err, i)
			}
		}
	}
	if memoryAcks == 0 {
		t.Fatal("no write was acknowledged by the fallback; the test did not exercise it")
	}
	if lost > 0 {
		t.Errorf("%d of %d writes acknowledged by the fallback were lost while Redis stayed down", lost, memoryAcks)
	}
}

// CLIENT KILL with Redis up is a dropped connection, not an outage: no
// fallback answer, no ErrUnavailable, the breaker stays closed, Health
// counts the resets and the status does not move.
func TestConnectionResetIsNotAnOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	since := waitStatus(t, c, cache.StatusConnected, 5*time.Second).Since

	stop := make(chan struct{})
	var kills atomic.Int64
	killer := make(chan struct{})
	go func() {
		defer close(killer)
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if _, err := srv.Do(t, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); err == nil {
				kills.Add(1)
			}
		}
	}()
	var unavailable, memory, noReply, ok atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	deadline := time.Now().Add(5 * time.Second)
	for w := range 6 {
		wg.Go(func() {
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				select {
				case <-done:
					return
				default:
				}
				key := fmt.Sprintf("r%d", i%3)
				var b cache.Backend
				var err error
				switch (w + i) % 3 {
				case 0:
					b, err = c.Set(ctx, key, json.RawMessage(fmt.Sprint(i)), 0)
				case 1:
					_, b, err = c.Get(ctx, key)
				default:
					_, b, err = c.Delete(ctx, key)
				}
				switch {
				case b == cache.BackendMemory:
					memory.Add(1)
				case errors.Is(err, cache.ErrUnavailable):
					unavailable.Add(1)
				case errors.Is(err, cache.ErrNoReply):
					noReply.Add(1)
				case err == nil:
					ok.Add(1)
				}
			}
		})
	}
	for kills.Load() < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	close(stop)
	<-killer
	if kills.Load() < 3 {
		t.Fatalf("only %d CLIENT KILLs ran", kills.Load())
	}
	t.Logf("%d kills: %d answered, %d no reply (writes in flight), %d unavailable, %d from memory", kills.Load(), ok.Load(), noReply.Load(), unavailable.Load(), memory.Load())
	if memory.Load() != 0 || unavailable.Load() != 0 {
		t.Errorf("%d answers from memory and %d ErrUnavailable while Redis stayed up; want 0 and 0", memory.Load(), unavailable.Load())
	}
	h := c.Health()
	if h.Status != cache.StatusConnected || !h.Since.Equal(since) || h.Breaker != cache.BreakerClosed {
		t.Errorf("Health() = %s since %s, breaker %s; want connected since %s, closed", h.Status, h.Since, h.Breaker, since)
	}
	if h.ConnectionResets == 0 || h.LastConnectionResetAt.IsZero() {
		t.Errorf("Health().ConnectionResets = %d (last %s); want the resets counted", h.ConnectionResets, h.LastConnectionResetAt)
	}
}

// A request whose deadline has passed before anything was sent reports
// ErrUnavailable (not applied), not ErrNoReply (may have been applied).
func TestNothingSentIsUnavailableNotNoReply(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	b, err := c.Set(ctx, "late", json.RawMessage(`1`), 0)
	if !errors.Is(err, cache.ErrUnavailable) || errors.Is(err, cache.ErrNoReply) || b != "" {
		t.Errorf("Set() after its deadline = %s, %v; want ErrUnavailable and no fallback answer", b, err)
	}
	if _, err := srv.Do(t, "GET", "school-erp:late"); !errors.Is(err, redistest.ErrNil) {
		t.Errorf("Redis holds the late write (GET = %v); want nothing sent", err)
	}
	if h := c.Health(); h.Status != cache.StatusConnected {
		t.Errorf("Health().Status = %s after a caller's expired deadline; want connected", h.Status)
	}
}

// With client-side caching on and Redis at maxmemory (noeviction), reads
// keep working: valkey-go wraps a tracked read in MULTI/EXEC, which Redis
// refuses while out of memory, and such reads are sent again plainly.
func TestReadsWorkWhileRedisIsOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy noeviction"}})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	for i := range 20 {
		if err := set(ctx, c, fmt.Sprintf("k%d", i), json.RawMessage(fmt.Sprintf(`"%d%s"`, i, strings.Repeat("x", 1000))), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Do(t, "CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatal(err)
	}
	if err := set(ctx, c, "more", json.RawMessage(`1`), 0); !errors.Is(err, cache.ErrRejected) || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Set() at maxmemory = %v; want ErrRejected (OOM): the test needs Redis out of memory", err)
	}
	reads := []string{"k1", "k2"}
	for _, k := range reads {
		// Not cached locally yet: each goes to Redis.
		if v, ok, err := get(ctx, c, k); err != nil || !ok || !strings.HasPrefix(string(v), `"`+k[1:]) {
			t.Errorf("Get(%s) at maxmemory = %.10s, %v, %v; want the value", k, v, ok, err)
		}
	}
	if ok, err := exists(ctx, c, "k3"); err != nil || !ok {
		t.Errorf("Exists(k3) at maxmemory = %v, %v; want true", ok, err)
	}
	rs, err := c.GetMany(ctx, []string{"k4", "k5", "absent"})
	if err != nil || rs[0].Err != nil || rs[1].Err != nil || rs[2].Err != nil || rs[0].Value == nil || rs[2].Value != nil {
		t.Errorf("GetMany at maxmemory = %+v, %v; want two values and a miss", rs, err)
	}
	if h := c.Health(); h.Status == cache.StatusDisconnected {
		t.Errorf("Health().Status = %s while only writes are refused", h.Status)
	}
}

// A Redis frozen by DEBUG SLEEP is degraded while it does not answer, even
// when reads are served from the local cache, and connected again within a
// backoff plus a probe once it answers.
func TestFrozenRedisIsDegradedThenConnectedSoon(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.ProbeInterval = 5 * time.Second // the default: a probe alone would not see the freeze in time
	opts.DialTimeout = 2 * time.Second
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "hot", json.RawMessage(`"cached"`), 0); err != nil {
		t.Fatal(err)
	}
	for range 3 { // cached locally now
		if _, _, err := get(ctx, c, "hot"); err != nil {
			t.Fatal(err)
		}
	}
	frozen := make(chan struct{})
	go func() {
		defer close(frozen)
		_, _ = srv.Do(t, "DEBUG", "SLEEP", "1.5")
	}()
	time.Sleep(100 * time.Millisecond)
	// Hot reads keep being answered locally; a write times out.
	for range 20 {
		if v, _, err := get(ctx, c, "hot"); err != nil || string(v) != `"cached"` {
			t.Fatalf("Get(hot) while frozen = %s, %v; want the locally cached value", v, err)
		}
	}
	if err := set(ctx, c, "cold", json.RawMessage(`1`), 0); !errors.Is(err, cache.ErrNoReply) {
		t.Errorf("Set() while frozen = %v; want ErrNoReply", err)
	}
	if h := c.Health(); h.Status != cache.StatusDegraded {
		t.Errorf("Health().Status = %s while Redis is frozen and commands time out; want degraded", h.Status)
	}
	<-frozen
	woke := time.Now()
	h := waitStatus(t, c, cache.StatusConnected, 3*time.Second)
	// ReconnectMaxBackoff (100ms) plus a probe, with room for this machine.
	if d := time.Since(woke); d > time.Second {
		t.Errorf("connected %s after Redis woke; want within the backoff plus a probe (Health %+v)", d, h)
	}
}

// After Redis flaps (restarts 300ms apart), the service says connected
// within a backoff plus a probe of it becoming stable: old failures do not
// keep it degraded.
func TestConnectedSoonAfterFlapping(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.ProbeInterval = 5 * time.Second
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// One writer: each restart fails a request or two, never enough in a
	// row to open the breaker, so Redis is degraded, not disconnected, and
	// the old failures must not keep it so.
	wg.Go(func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = set(ctx, c, "f", json.RawMessage(`1`), 0)
			time.Sleep(5 * time.Millisecond)
		}
	})
	for range 10 {
		srv.Kill()
		srv.Start()
		time.Sleep(300 * time.Millisecond)
	}
	stable := time.Now()
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	d := time.Since(stable)
	close(stop)
	wg.Wait()
	// ReconnectMaxBackoff is 100ms in these options.
	if d > time.Second {
		t.Errorf("connected %s after the last restart; want within the backoff plus a probe", d)
	}
}

// In cluster mode the memory fallback is off: a node down must not make
// keys of that node answer from memory, where a value written there could
// later stand in for a newer one Redis confirmed.
func TestClusterNodeDownNeverAnswersFromMemory(t *testing.T) {
	nodes, addrs := startCluster(t)
	opts := fastOptions(addrs[0], &logBuffer{}) // a standalone address that turns out to be a cluster node
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	h := waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if h.Mode != cache.ModeCluster || h.Fallback.Off == "" || h.Fallback.Active {
		t.Fatalf("Health() mode %s, fallback %+v; want cluster with the fallback off and why", h.Mode, h.Fallback)
	}
	// A key on the node that will go down.
	const dead = 2
	var key string
	for i := 0; key == "" && i < 1000; i++ {
		k := fmt.Sprint("slot:", i)
		if err := set(ctx, c, k, json.RawMessage(`"v0"`), 0); err != nil {
			t.Fatal(err)
		}
		if v, _ := nodes[dead].Do(t, "EXISTS", "school-erp:"+k); v == "1" {
			key = k
		}
	}
	nodes[dead].Kill()
	eventually(t, 5*time.Second, "health sees the node down", func() bool {
		h := c.Health()
		return h.Cluster != nil && h.Cluster.Reachable == 2
	})
	for i := range 5 {
		b, err := c.Set(ctx, key, json.RawMessage(`"v1"`), 0)
		if b == cache.BackendMemory || err == nil {
			t.Fatalf("Set(%s) #%d on a dead node = %s, %v; want an outage error, not memory", key, i, b, err)
		}
	}
	nodes[dead].Start()
	eventually(t, 10*time.Second, "node back", func() bool { return set(ctx, c, key, json.RawMessage(`"v2"`), 0) == nil })
	nodes[dead].Kill()
	eventually(t, 5*time.Second, "health sees the node down again", func() bool {
		h := c.Health()
		return h.Cluster != nil && h.Cluster.Reachable == 2
	})
	if v, b, err := c.Get(ctx, key); string(v) == `"v1"` || b == cache.BackendMemory {
		t.Errorf("Get(%s) with its node down again = %s, %s, %v; want no value from memory (v1 was never stored)", key, v, b, err)
	}
	if h := c.Health(); h.Fallback.Active {
		t.Errorf("Health().Fallback.Active with a node down in cluster mode; want off")
	}
}

// The service's own keys are not callers' keys: a client's values at the
// names the service once used survive another instance starting (the
// client-cache check) and --check-config (cache.Check).
func TestServiceKeysLeaveClientKeysAlone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	names := []string{"cache-service:tracking-check", "cache-service:check-config"}
	for _, k := range names {
		if err := set(ctx, c, k, json.RawMessage(`"mine"`), 0); err != nil {
			t.Fatal(err)
		}
	}
	ready(t, newClient(t, fastOptions(srv.Addr, &logBuffer{}))) // runs the client-cache check
	if _, err := cache.Check(ctx, fastOptions(srv.Addr, &logBuffer{})); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	for _, k := range names {
		if v, _, err := get(ctx, c, k); string(v) != `"mine"` || err != nil {
			t.Errorf("Get(%s) = %s, %v after start-up checks; want the client's value kept", k, v, err)
		}
	}
	keys, err := srv.Do(t, "KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(keys, "internal") {
		t.Errorf("Redis keeps the service's own keys after the checks: %s", keys)
	}
}

// A write to a server that cannot take writes (a replica, as a demoted
// master is during a failover) was not executed: ErrUnavailable, never
// ErrNoReply, and sent again until the deadline in case the master moves.
func TestWriteRefusedByAReplicaIsNotApplied(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{Config: []string{"replicaof " + strings.Replace(master.Addr, ":", " ", 1)}})
	c := newClient(t, fastOptions(replica.Addr, &logBuffer{}))
	ready(t, c)
	start := time.Now()
	err := set(context.Background(), c, "k", json.RawMessage(`1`), 0)
	if !errors.Is(err, cache.ErrUnavailable) || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("Set() on a replica = %v; want ErrUnavailable (READONLY): not executed", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("Set() on a replica gave up after %s; want it sent again within the command timeout", d)
	}
	if h := c.Health(); h.Status == cache.StatusDisconnected {
		t.Errorf("Health().Status = %s: a replica refusing writes is not Redis down", h.Status)
	}
}
