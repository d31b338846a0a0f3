package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// Truth under faults, through the service as it ships: each test is a
// defect once seen with real redis-server processes.

// With the development default (CACHE_FALLBACK=memory), writes answered
// stored while Redis is being killed read back while it stays down: the
// fallback is no longer emptied when the breaker opens.
func TestQuickWritesDuringAnOutageReadBack(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	delete(env, "CACHE_FALLBACK") // the development default: memory
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	srv.Kill()
	acked := map[string]string{}
	for i := range 7 {
		key := fmt.Sprintf("quick-%d", i)
		r := svc.graphql(t, setQuery, map[string]any{"k": key, "v": i})
		if p := field[setPayload](t, r, "cacheSet"); p.Stored {
			acked[key] = fmt.Sprint(i)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no write was answered stored with Redis killed; the fallback never took one")
	}
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	time.Sleep(time.Second) // several failed probes
	for key, want := range acked {
		r := svc.graphql(t, getQuery, map[string]any{"k": key})
		if got := string(r.Data["cacheGet"]); got != want {
			t.Errorf("cacheGet(%s) a second after it was stored = %s; want %s (warnings %+v)", key, got, want, r.Extensions.Warnings)
		}
	}
}

// The service's own keys are out of every client's reach: a client cannot
// name them, and its values at the names the service once used survive
// another instance's start and --check-config.
func TestServiceKeysAreOutOfClientsReach(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	for _, key := range []string{"cache-service internal:check-config", "cache-service internal:tracking-check"} {
		r := svc.graphql(t, setQuery, map[string]any{"k": key, "v": "mine"})
		if r.code() != "BAD_USER_INPUT" {
			t.Errorf("cacheSet(%q) = %+v; want BAD_USER_INPUT: the service's own key", key, r)
		}
	}
	old := []string{"cache-service:check-config", "cache-service:tracking-check"}
	for _, key := range old {
		if p := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": key, "v": "mine"}), "cacheSet"); !p.Stored {
			t.Fatalf("cacheSet(%s) not stored: %+v", key, p)
		}
	}
	startService(t, env).waitRedisStatus(t, "connected", 5*time.Second) // its start-up check writes a key of its own
	getenv := func(k string) string { return env[k] }
	if err := run(t.Context(), []string{"-env-file", "", "--check-config"}, getenv, io.Discard, io.Discard); err != nil {
		t.Fatalf("--check-config = %v", err)
	}
	for _, key := range old {
		if got := string(svc.graphql(t, getQuery, map[string]any{"k": key}).Data["cacheGet"]); got != `"mine"` {
			t.Errorf("cacheGet(%s) = %s after another start and --check-config; want the client's value", key, got)
		}
	}
}

// Fields of one mutation run one after another under the request's
// deadline. A field whose turn comes after the deadline was never sent:
// REDIS_UNAVAILABLE (not applied), not NO_REPLY, and Redis does not hold it.
func TestFieldsAfterTheDeadlineAreNotSent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_COMMAND_TIMEOUT"] = "200ms"
	env["GRAPHQL_REQUEST_TIMEOUT"] = "300ms"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	frozen := make(chan struct{})
	go func() {
		defer close(frozen)
		_, _ = srv.Do(t, "DEBUG", "SLEEP", "1")
	}()
	time.Sleep(50 * time.Millisecond)
	var q strings.Builder
	q.WriteString("mutation {")
	for i := range 4 {
		fmt.Fprintf(&q, ` f%d: cacheSet(key: "late-%d", value: %d) { stored failure }`, i, i, i)
	}
	q.WriteString(" }")
	r := svc.graphql(t, q.String(), nil)
	<-frozen
	failures := make([]string, 4)
	for i := range 4 {
		var p struct {
			Stored  bool    `json:"stored"`
			Failure *string `json:"failure"`
		}
		if err := json.Unmarshal(r.Data[fmt.Sprint("f", i)], &p); err != nil || p.Failure == nil {
			t.Fatalf("f%d = %s (%v); want a failure while Redis is frozen", i, r.Data[fmt.Sprint("f", i)], err)
		}
		failures[i] = *p.Failure
	}
	if failures[0] != "NO_REPLY" || failures[3] != "REDIS_UNAVAILABLE" {
		t.Errorf("failures = %v; want NO_REPLY for the first (sent, no reply) and REDIS_UNAVAILABLE for the last (its turn came after the deadline)", failures)
	}
	for i, f := range failures {
		if f != "REDIS_UNAVAILABLE" {
			continue
		}
		if _, err := srv.Do(t, "GET", fmt.Sprintf("school-erp:late-%d", i)); err != redistest.ErrNil {
			t.Errorf("Redis holds late-%d, reported REDIS_UNAVAILABLE (not sent); GET = %v", i, err)
		}
	}
}

// With client-side caching on (the default) and Redis at maxmemory with
// noeviction, reads of keys not yet cached locally still answer; writes are
// refused truthfully.
func TestReadsWhileRedisIsOutOfMemory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy noeviction"}})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	for i := range 3 {
		if _, err := srv.Do(t, "SET", fmt.Sprint("school-erp:oom-", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Do(t, "CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatal(err)
	}
	if p := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "more", "v": 1}), "cacheSet"); p.Stored || p.Failure == nil || *p.Failure != "REJECTED" {
		t.Fatalf("cacheSet at maxmemory = %+v; want not stored, REJECTED (the test needs Redis out of memory)", p)
	}
	if got := string(svc.graphql(t, getQuery, map[string]any{"k": "oom-1"}).Data["cacheGet"]); got != "1" {
		t.Errorf("cacheGet(oom-1) at maxmemory = %s; want 1", got)
	}
	r := svc.graphql(t, `{ cacheGetMany(keys: ["oom-0", "oom-2"]) cacheExists(key: "oom-2") }`, nil)
	if got := string(r.Data["cacheGetMany"]) + string(r.Data["cacheExists"]); got != "[0,2]true" || len(r.Errors) > 0 {
		t.Errorf("cacheGetMany and cacheExists at maxmemory = %s, errors %+v; want [0,2] and true", got, r.Errors)
	}
}

// While Redis is frozen, health says degraded even though hot reads keep
// being answered from the local cache; once it wakes, connected again
// within a backoff and a probe, not a health interval later.
func TestHealthTellsTheTruthAboutAFrozenRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_HEALTH_INTERVAL"] = "5s" // the default: the freeze is shorter than one interval
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	svc.graphql(t, setQuery, map[string]any{"k": "hot", "v": "x"})
	for range 3 {
		svc.graphql(t, getQuery, map[string]any{"k": "hot"})
	}
	frozen := make(chan struct{})
	go func() {
		defer close(frozen)
		_, _ = srv.Do(t, "DEBUG", "SLEEP", "1.5")
	}()
	time.Sleep(50 * time.Millisecond)
	for range 10 {
		if got := string(svc.graphql(t, getQuery, map[string]any{"k": "hot"}).Data["cacheGet"]); got != `"x"` {
			t.Fatalf("cacheGet(hot) while frozen = %s; want the locally cached value", got)
		}
	}
	svc.graphql(t, setQuery, map[string]any{"k": "cold", "v": 1}) // times out
	if _, hb := svc.health(t, "/health/redis"); hb.Data.Status != "degraded" {
		t.Errorf("/health/redis while Redis is frozen and a write timed out = %s; want degraded", hb.Data.Status)
	}
	<-frozen
	woke := time.Now()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	// REDIS_RECONNECT_MAX_BACKOFF is 100ms here; a second leaves room for
	// this machine, and is far below the 5s health interval.
	if d := time.Since(woke); d > time.Second {
		t.Errorf("connected %s after Redis woke; want within the backoff plus a probe", d)
	}
}

// A write Redis refuses is reported as refused on the request path, and
// nothing is in Redis: out of memory, and an ACL user without SET.
func TestRefusedWritesAreReportedNotStored(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Config: []string{
		"maxmemory-policy noeviction",
		"user reader on >reader-pw-123 ~school-erp:* +get +exists +ping +hello +client|setname +client|info +info",
	}})
	tests := []struct {
		name  string
		env   func(map[string]string)
		setup func(t *testing.T)
	}{
		{"out of memory", func(map[string]string) {}, func(t *testing.T) {
			if _, err := srv.Do(t, "CONFIG", "SET", "maxmemory", "1"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = srv.Do(t, "CONFIG", "SET", "maxmemory", "0") })
		}},
		{"ACL user without +set", func(env map[string]string) {
			env["REDIS_USERNAME"], env["REDIS_PASSWORD"] = "reader", "reader-pw-123"
		}, func(*testing.T) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(srv.Addr)
			delete(env, "CACHE_FALLBACK") // the development default; it must not take a refused write
			tt.env(env)
			svc := startService(t, env)
			svc.waitRedisStatus(t, "connected", 5*time.Second)
			tt.setup(t)
			key := strings.ReplaceAll(tt.name, " ", "-")
			p := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": key, "v": 1}), "cacheSet")
			if p.Stored || p.Failure == nil || *p.Failure != "REJECTED" || p.Backend != nil {
				t.Errorf("cacheSet = %+v; want stored false, failure REJECTED, no backend", p)
			}
			if _, err := srv.Do(t, "GET", "school-erp:"+key); err != redistest.ErrNil {
				t.Errorf("Redis GET after a refused write = %v; want nothing stored", err)
			}
		})
	}
}

// A value another program wrote that is larger than CACHE_MAX_VALUE_BYTES
// is refused for its field (VALUE_TOO_LARGE); other fields and keys answer.
func TestOversizedStoredValueIsRefusedForItsFieldOnly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["CACHE_MAX_VALUE_BYTES"] = "1024"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:huge", `"`+strings.Repeat("x", 2000)+`"`); err != nil {
		t.Fatal(err)
	}
	svc.graphql(t, setQuery, map[string]any{"k": "fine", "v": 1})
	r := svc.graphql(t, `{ a: cacheGet(key: "huge") b: cacheGet(key: "fine") c: cacheGetMany(keys: ["fine", "huge"]) }`, nil)
	codes := map[string]string{}
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		codes[fmt.Sprint(e.Path)] = c
	}
	if codes["[a]"] != "VALUE_TOO_LARGE" || codes["[c 1]"] != "VALUE_TOO_LARGE" || len(codes) != 2 {
		t.Errorf("errors = %v; want VALUE_TOO_LARGE at a and at c[1] only", codes)
	}
	if got := string(r.Data["a"]) + " " + string(r.Data["b"]) + " " + string(r.Data["c"]); got != "null 1 [1,null]" {
		t.Errorf("data = %s; want null 1 [1,null]", got)
	}
}

// A Redis that fills up through the service's own writes (1 MiB of room
// under maxmemory, noeviction) refuses the write that no longer fits: the payload says
// stored false, failure REJECTED, no backend, and Redis holds nothing for
// it, while every write reported stored before it is there. A batch is
// refused entry by entry the same way. The memory fallback (the
// development default) is on: Redis answered, so it must not take them.
func TestWritesRefusedOnceRedisIsFull(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy noeviction"}})
	env := testEnv(srv.Addr)
	env["CACHE_FALLBACK"] = "memory"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	// An empty Redis already uses about 1 MB: the limit is 1 MiB above what
	// it uses once the service is connected.
	info, err := srv.Do(t, "INFO", "memory")
	if err != nil {
		t.Fatal(err)
	}
	var used int
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			used, _ = strconv.Atoi(rest)
		}
	}
	if used == 0 {
		t.Fatalf("INFO memory has no used_memory: %s", info)
	}
	if _, err := srv.Do(t, "CONFIG", "SET", "maxmemory", fmt.Sprint(used+1<<20)); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 32<<10)
	var stored []string
	var refused string
	for i := range 100 { // 3.2 MB: far past 1mb
		key := fmt.Sprint("fill-", i)
		p := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": key, "v": value}), "cacheSet")
		if p.Stored {
			stored = append(stored, key)
			continue
		}
		if p.Failure == nil || *p.Failure != "REJECTED" || p.Backend != nil || p.Message == nil {
			t.Fatalf("cacheSet(%s) into a full Redis = %+v; want stored false, failure REJECTED with a message, no backend", key, p)
		}
		refused = key
		break
	}
	if refused == "" || len(stored) == 0 {
		t.Fatalf("%d of 100 writes of 32 KiB into 1 MiB of room were stored; want some stored, then one refused", len(stored))
	}
	t.Logf("%d writes of 32 KiB stored before Redis refused one", len(stored))
	if _, err := srv.Do(t, "GET", "school-erp:"+refused); err != redistest.ErrNil {
		t.Errorf("Redis GET of the refused write %s = %v; want nothing stored", refused, err)
	}
	for _, key := range stored {
		if got, err := srv.Do(t, "STRLEN", "school-erp:"+key); err != nil || got != fmt.Sprint(len(value)+2) {
			t.Errorf("Redis STRLEN of %s, reported stored = %s, %v; want the value", key, got, err)
		}
	}

	r := svc.graphql(t, `mutation($v: JSON!) { cacheSetMany(entries: [{key: "many-0", value: $v}, {key: "many-1", value: $v}]) { key stored failure backend } }`, map[string]any{"v": value})
	var many []setPayload
	if err := json.Unmarshal(r.Data["cacheSetMany"], &many); err != nil || len(many) != 2 || len(r.Errors) > 0 {
		t.Fatalf("cacheSetMany into a full Redis = %s, errors %+v", r.Data["cacheSetMany"], r.Errors)
	}
	for i, p := range many {
		if p.Stored || p.Failure == nil || *p.Failure != "REJECTED" || p.Backend != nil {
			t.Errorf("cacheSetMany entry %d into a full Redis = %+v; want stored false, failure REJECTED, no backend", i, p)
		}
		if _, err := srv.Do(t, "GET", fmt.Sprint("school-erp:many-", i)); err != redistest.ErrNil {
			t.Errorf("Redis GET of many-%d after a refused batch = %v; want nothing stored", i, err)
		}
	}
	if got := string(svc.graphql(t, getQuery, map[string]any{"k": refused}).Data["cacheGet"]); got != "null" {
		t.Errorf("cacheGet(%s) after it was refused = %.40s; want a miss (the fallback must not have taken it)", refused, got)
	}
}
