package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

func TestFallbackMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "before", json.RawMessage(`"in redis"`), 0); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.Fallback.Mode != cache.FallbackMemory || h.Fallback.Active {
		t.Errorf("Health().Fallback = %+v while Redis is up; want memory, inactive", h.Fallback)
	}

	srv.Kill()
	for range 3 { // trip the breaker
		_, _, _ = c.Get(ctx, "before")
	}
	waitStatus(t, c, cache.StatusDisconnected, 2*time.Second)

	// What Redis held is not in memory: a miss, answered by memory.
	if v, b, err := c.Get(ctx, "before"); v != nil || b != cache.BackendMemory || err != nil {
		t.Errorf("Get(before) during outage = %s, %s, %v; want a miss from memory", v, b, err)
	}
	if b, err := c.Set(ctx, "during", json.RawMessage(`{"n":1}`), 0); b != cache.BackendMemory || err != nil {
		t.Fatalf("Set(during) = %s, %v; want stored in memory", b, err)
	}
	if v, b, err := c.Get(ctx, "during"); string(v) != `{"n":1}` || b != cache.BackendMemory || err != nil {
		t.Errorf("Get(during) = %s, %s, %v; want the value from memory", v, b, err)
	}
	if ok, b, err := c.Exists(ctx, "during"); !ok || b != cache.BackendMemory || err != nil {
		t.Errorf("Exists(during) = %v, %s, %v; want true from memory", ok, b, err)
	}
	if _, err := c.Set(ctx, "short", json.RawMessage(`1`), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := c.Get(ctx, "short"); string(v) != "1" {
		t.Errorf("Get(short) within its TTL = %s; want 1", v)
	}
	time.Sleep(400 * time.Millisecond)
	if v, _, _ := c.Get(ctx, "short"); v != nil {
		t.Errorf("Get(short) after its TTL = %s; want a miss (TTLs honoured in memory)", v)
	}
	if ok, b, err := c.Delete(ctx, "during"); !ok || b != cache.BackendMemory || err != nil {
		t.Errorf("Delete(during) = %v, %s, %v; want deleted from memory", ok, b, err)
	}
	if _, err := c.Set(ctx, "kept", json.RawMessage(`2`), 0); err != nil {
		t.Fatal(err)
	}
	// otter updates its counts during maintenance, a moment after writes;
	// expired entries may be counted until then.
	eventually(t, 2*time.Second, "fallback counts what was written", func() bool {
		h := c.Health()
		return h.Fallback.Active && h.Fallback.Entries >= 1 && h.Fallback.Bytes > 0
	})

	srv.Start()
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	// Dropped, not merged back.
	if v, b, err := c.Get(ctx, "kept"); v != nil || b != cache.BackendRedis || err != nil {
		t.Errorf("Get(kept) after recovery = %s, %s, %v; want a miss from Redis", v, b, err)
	}
	if h := c.Health(); h.Fallback.Active || h.Fallback.Entries != 0 {
		t.Errorf("Health().Fallback = %+v after recovery; want inactive and empty", h.Fallback)
	}
}

func TestFallbackMemoryIsBoundedAndKeepsWhatItAcknowledged(t *testing.T) {
	opts := fastOptions("127.0.0.1:1", &logBuffer{}) // nothing listens there
	opts.Fallback = cache.FallbackMemory
	opts.FallbackMaxBytes = 8 << 10
	c := newClient(t, opts)
	ctx := context.Background()
	value := json.RawMessage(`"` + strings.Repeat("x", 200) + `"`)
	var stored []string
	refused := 0
	for i := range 500 {
		key := fmt.Sprintf("k%d", i)
		b, err := c.Set(ctx, key, value, 0)
		switch {
		case err == nil && b == cache.BackendMemory:
			stored = append(stored, key)
		case errors.Is(err, cache.ErrUnavailable) && strings.Contains(err.Error(), "full"):
			refused++
		default:
			t.Fatalf("Set(%s) = %s, %v; want stored in memory, or refused as full", key, b, err)
		}
	}
	if len(stored) == 0 || refused == 0 {
		t.Fatalf("%d stored, %d refused after 500 writes of ~270 bytes into 8 KiB; want some of each", len(stored), refused)
	}
	// Nothing acknowledged was evicted to make room.
	for _, key := range stored {
		if v, b, err := c.Get(ctx, key); string(v) != string(value) || b != cache.BackendMemory || err != nil {
			t.Fatalf("Get(%s) = %.20s, %s, %v; want the acknowledged value from memory", key, v, b, err)
		}
	}
	if h := c.Health(); h.Fallback.Bytes > 8<<10 || h.Fallback.Entries != len(stored) {
		t.Errorf("Health().Fallback = %+v; want %d entries within 8 KiB", h.Fallback, len(stored))
	}
}

func TestFallbackRefusesWhatItCannotHold(t *testing.T) {
	opts := fastOptions("127.0.0.1:1", &logBuffer{}) // nothing listens there
	opts.Fallback = cache.FallbackMemory
	opts.FallbackMaxBytes = 1024
	c := newClient(t, opts)
	ctx := context.Background()
	if _, err := c.Set(ctx, "big", json.RawMessage(`"small first"`), 0); err != nil {
		t.Fatal(err)
	}
	big := json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)
	if b, err := c.Set(ctx, "big", big, 0); err == nil || !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Set(2 KB) into a 1 KB fallback = %s, %v; want not stored (ErrUnavailable)", b, err)
	}
	if v, _, _ := c.Get(ctx, "big"); v != nil {
		t.Errorf("Get(big) = %s; want a miss: the older value must not stand in for the refused write", v)
	}
}

func TestFallbackNoneReportsUnavailable(t *testing.T) {
	opts := fastOptions("127.0.0.1:1", &logBuffer{})
	opts.Fallback = cache.FallbackNone
	c := newClient(t, opts)
	if _, err := c.Set(context.Background(), "k", json.RawMessage(`1`), 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Set() with no fallback = %v; want ErrUnavailable", err)
	}
	if h := c.Health(); h.Fallback.Mode != cache.FallbackNone || h.Fallback.Active {
		t.Errorf("Health().Fallback = %+v; want none, inactive", h.Fallback)
	}
}

// recorder is an Observer that keeps the outcomes it saw.
type recorder struct {
	mu       sync.Mutex
	outcomes []cache.Outcome
}

func (r *recorder) ObserveOperation(_ cache.Op, o cache.Outcome, _ cache.Backend, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, o)
}
func (r *recorder) ObserveTransition(cache.Status, cache.Status) {}
func (r *recorder) ObserveReconnectAttempt()                     {}
func (r *recorder) ObserveProbe(time.Duration, error)            {}
func (r *recorder) ObserveConnectionReset()                      {}

func TestCallerGoneIsNotARedisFailure(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rec := &recorder{}
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Observer = rec
	opts.DisableClientCache = true
	c := newClient(t, opts)
	ready(t, c)
	// Freeze Redis so reads are in flight when their callers give up.
	go func() { _, _ = srv.Do(t, "DEBUG", "SLEEP", "0.3") }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	var wg sync.WaitGroup
	canceled := 0
	var mu sync.Mutex
	for range 8 { // concurrent, so valkey-go queues them and honours ctx
		wg.Go(func() {
			if _, _, err := c.Get(ctx, "k"); errors.Is(err, context.Canceled) {
				mu.Lock()
				canceled++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	counts := map[cache.Outcome]int{}
	for _, o := range rec.outcomes {
		counts[o]++
	}
	if canceled == 0 || counts[cache.OutcomeCanceled] != canceled || counts[cache.OutcomeUnavailable] != 0 {
		t.Errorf("%d reads cancelled; outcomes %v; want each cancelled read counted as canceled, none as unavailable", canceled, counts)
	}
	if h := c.Health(); h.Status == cache.StatusDisconnected {
		t.Error("callers going away made Redis disconnected")
	}
}

// The fallback answers only for commands Redis did not execute: a read
// Redis refused on a healthy server, or one that got no reply, is reported
// as such, never answered from memory.
func TestFallbackNeverAnswersForAnswersRedisGave(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if _, err := srv.Do(t, "HSET", "school-erp:hash", "f", "v"); err != nil {
		t.Fatal(err)
	}
	if v, b, err := c.Get(ctx, "hash"); !errors.Is(err, cache.ErrRejected) || b == cache.BackendMemory || v != nil {
		t.Errorf("Get(hash) on a healthy Redis = %s, %s, %v; want ErrRejected, not a fallback answer", v, b, err)
	}
	rs, err := c.GetMany(ctx, []string{"hash"})
	if err != nil || !errors.Is(rs[0].Err, cache.ErrRejected) || rs[0].Backend == cache.BackendMemory {
		t.Errorf("GetMany(hash) on a healthy Redis = %+v, %v; want ErrRejected at its index", rs, err)
	}
	if b, err := c.Set(ctx, "k", json.RawMessage(`1`), 0); err != nil || b != cache.BackendRedis {
		t.Fatalf("Set(k) = %s, %v", b, err)
	}
	// Redis frozen by DEBUG SLEEP: the write goes out and no reply comes.
	// On a loaded machine the sleep may start after the write has been
	// answered; that attempt proves nothing, so it is tried again.
	for attempt := 1; ; attempt++ {
		frozen := make(chan struct{})
		go func() {
			defer close(frozen)
			_, _ = srv.Do(t, "DEBUG", "SLEEP", "0.5")
		}()
		time.Sleep(50 * time.Millisecond)
		b, err := c.Set(ctx, "k", json.RawMessage(`2`), 0)
		<-frozen
		if err == nil && b == cache.BackendRedis && attempt < 5 {
			continue // answered before the freeze began
		}
		if !errors.Is(err, cache.ErrNoReply) || b == cache.BackendMemory {
			t.Errorf("Set(k) while Redis is frozen = %s, %v (attempt %d); want ErrNoReply: it may have been applied, and memory must not claim it", b, err, attempt)
		}
		break
	}
	if h := c.Health(); h.Fallback.Entries != 0 {
		t.Errorf("fallback holds %d entries after answers Redis gave; want 0", h.Fallback.Entries)
	}
}

// A delete answered by the fallback removes the value: a later read misses.
func TestFallbackDeleteRemovesTheValue(t *testing.T) {
	opts := fastOptions("127.0.0.1:1", &logBuffer{}) // nothing listens there
	opts.Fallback = cache.FallbackMemory
	c := newClient(t, opts)
	ctx := context.Background()
	if b, err := c.Set(ctx, "gone", json.RawMessage(`"x"`), 0); err != nil || b != cache.BackendMemory {
		t.Fatalf("Set(gone) = %s, %v", b, err)
	}
	if ok, b, err := c.Delete(ctx, "gone"); !ok || b != cache.BackendMemory || err != nil {
		t.Fatalf("Delete(gone) = %v, %s, %v; want deleted from memory", ok, b, err)
	}
	if v, b, err := c.Get(ctx, "gone"); v != nil || b != cache.BackendMemory || err != nil {
		t.Errorf("Get(gone) after Delete = %s, %s, %v; want a miss from memory", v, b, err)
	}
	if ok, _, _ := c.Exists(ctx, "gone"); ok {
		t.Error("Exists(gone) after Delete = true; want false")
	}
	if ok, _, err := c.Delete(ctx, "gone"); ok || err != nil {
		t.Errorf("second Delete(gone) = %v, %v; want false: nothing left to delete", ok, err)
	}
}

// A write Redis refuses is reported as refused, and nothing is in Redis:
// out of memory, and an ACL user without SET.
func TestRefusedWritesAreNotStored(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{
		"maxmemory-policy noeviction",
		"user reader on >reader-pw ~school-erp:* +get +exists +ping +hello +client|setname +client|info +info",
	}})
	ctx := context.Background()
	t.Run("out of memory", func(t *testing.T) {
		opts := fastOptions(srv.Addr, &logBuffer{})
		opts.Fallback = cache.FallbackMemory
		c := newClient(t, opts)
		ready(t, c)
		if _, err := srv.Do(t, "CONFIG", "SET", "maxmemory", "1"); err != nil {
			t.Fatal(err)
		}
		defer srv.Do(t, "CONFIG", "SET", "maxmemory", "0")
		b, err := c.Set(ctx, "oom", json.RawMessage(`1`), 0)
		if !errors.Is(err, cache.ErrRejected) || b != "" {
			t.Errorf("Set() at maxmemory = %s, %v; want ErrRejected and no backend", b, err)
		}
		if _, err := srv.Do(t, "GET", "school-erp:oom"); !errors.Is(err, redistest.ErrNil) {
			t.Errorf("Redis GET after a refused write = %v; want nothing stored", err)
		}
	})
	t.Run("ACL user without SET", func(t *testing.T) {
		opts := fastOptions(srv.Addr, &logBuffer{})
		opts.Username, opts.Password = "reader", "reader-pw"
		c := newClient(t, opts)
		ready(t, c)
		b, err := c.Set(ctx, "noperm", json.RawMessage(`1`), 0)
		if !errors.Is(err, cache.ErrRejected) || b != "" {
			t.Errorf("Set() without +set = %s, %v; want ErrRejected", b, err)
		}
		if _, err := srv.Do(t, "GET", "school-erp:noperm"); !errors.Is(err, redistest.ErrNil) {
			t.Errorf("Redis GET after a refused write = %v; want nothing stored", err)
		}
		if h := c.Health(); h.Status == cache.StatusDisconnected {
			t.Errorf("Health().Status = %s: a refused command is not an outage", h.Status)
		}
	})
}
