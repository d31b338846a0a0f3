package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

func TestFallbackMemoryThroughGraphQL(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{}) // absent at start
	env := testEnv(srv.Addr)
	delete(env, "CACHE_FALLBACK") // development's default: memory
	svc := startService(t, env)
	if svc.logs.count(t, "fallback tier on (CACHE_FALLBACK=memory): while Redis is unavailable this instance serves the cache from its own memory; those values are not shared with other instances and are dropped when Redis returns") != 1 {
		t.Error("no start-up line saying the memory fallback is on")
	}

	r := svc.graphql(t, `mutation { cacheSet(key: "k", value: {from: "memory"}) { stored backend failure } }`, nil)
	if got := string(r.Data["cacheSet"]); got != `{"stored":true,"backend":"MEMORY","failure":null}` {
		t.Errorf("cacheSet with Redis absent = %s; want stored in MEMORY", got)
	}
	r = svc.graphql(t, getQuery, map[string]any{"k": "k"})
	if string(r.Data["cacheGet"]) != `{"from":"memory"}` || len(r.Extensions.Warnings) != 1 || r.Extensions.Warnings[0].Code != "SERVED_FROM_MEMORY" {
		t.Errorf("cacheGet with Redis absent = %+v; want the value with a SERVED_FROM_MEMORY warning", r)
	}
	r = svc.graphql(t, `{ redisHealth { status fallback { mode active entries } } }`, nil)
	if got := string(r.Data["redisHealth"]); got != `{"status":"DISCONNECTED","fallback":{"mode":"MEMORY","active":true,"entries":1}}` {
		t.Errorf("redisHealth = %s; want the fallback active", got)
	}

	srv.Start()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	r = svc.graphql(t, getQuery, map[string]any{"k": "k"})
	if string(r.Data["cacheGet"]) != "null" || len(r.Extensions.Warnings) != 0 {
		t.Errorf("cacheGet after Redis returned = %+v; want a plain miss (the fallback is dropped, not merged)", r)
	}
	r = svc.graphql(t, `mutation { cacheSet(key: "k", value: 2) { stored backend } }`, nil)
	if got := string(r.Data["cacheSet"]); got != `{"stored":true,"backend":"REDIS"}` {
		t.Errorf("cacheSet after Redis returned = %s; want stored in REDIS", got)
	}
}

func TestFallbackDefaultsByEnvironment(t *testing.T) {
	t.Parallel()
	for appEnv, want := range map[string]string{"development": "MEMORY", "staging": "NONE"} {
		env := testEnv("127.0.0.1:1")
		delete(env, "CACHE_FALLBACK")
		env["APP_ENV"] = appEnv
		env["API_TOKENS"] = testToken
		svc := startService(t, env)
		r := svc.graphql(t, `{ redisHealth { fallback { mode } } }`, nil)
		if got := string(r.Data["redisHealth"]); got != `{"fallback":{"mode":"`+want+`"}}` {
			t.Errorf("APP_ENV=%s: %s; want fallback %s", appEnv, got, want)
		}
		if err := svc.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// scrape reads /metrics into sample name+labels -> value.
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if err := json.Unmarshal([]byte(line[i+1:]), &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func TestMetricsMoveWithOperations(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	before := scrape(t, svc.url+"/metrics")
	// Connecting at start is not a reconnect, and no series shows an
	// outcome its op cannot have.
	if n := before["cache_redis_reconnect_attempts_total"]; n != 0 {
		t.Errorf("cache_redis_reconnect_attempts_total = %v after a clean start; want 0", n)
	}
	for _, impossible := range []string{
		`cache_operations_total{backend="redis",op="set",outcome="hit"}`,
		`cache_operations_total{backend="none",op="get",outcome="hit"}`,
		`cache_operations_total{backend="memory",op="get",outcome="invalid"}`,
	} {
		if _, ok := before[impossible]; ok {
			t.Errorf("/metrics has %s, which cannot happen", impossible)
		}
	}
	if _, ok := before[`cache_operations_total{backend="redis",op="get",outcome="hit"}`]; !ok {
		t.Error(`/metrics lacks get/hit/redis at zero: the possible series must exist before their first event`)
	}

	for range 3 {
		svc.graphql(t, setQuery, map[string]any{"k": "m", "v": 1})
	}
	svc.graphql(t, getQuery, map[string]any{"k": "m"})
	svc.graphql(t, getQuery, map[string]any{"k": "m"})
	svc.graphql(t, getQuery, map[string]any{"k": "absent"})
	svc.graphql(t, setQuery, map[string]any{"k": "", "v": 1})
	after := scrape(t, svc.url+"/metrics")

	deltas := []struct {
		sample string
		want   float64
	}{
		{`cache_operations_total{backend="redis",op="set",outcome="stored"}`, 3},
		{`cache_operations_total{backend="redis",op="get",outcome="hit"}`, 2},
		{`cache_operations_total{backend="redis",op="get",outcome="miss"}`, 1},
		{`cache_operations_total{backend="none",op="set",outcome="invalid"}`, 1},
		{`cache_operation_duration_seconds_count{op="set"}`, 4},
		{`cache_operation_duration_seconds_count{op="get"}`, 3},
	}
	for _, d := range deltas {
		if got := after[d.sample] - before[d.sample]; got != d.want {
			t.Errorf("%s moved by %v; want %v", d.sample, got, d.want)
		}
	}
	if after[`cache_redis_status{status="connected"}`] != 1 || after[`cache_breaker_state{state="closed"}`] != 1 {
		t.Errorf("status/breaker gauges = %v, %v; want connected and closed", after[`cache_redis_status{status="connected"}`], after[`cache_breaker_state{state="closed"}`])
	}
	if after["cache_redis_probe_duration_seconds_count"] < 1 {
		t.Error("no probe observed")
	}

	srv.Kill()
	for range 3 {
		svc.graphql(t, getQuery, map[string]any{"k": "m"})
	}
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	time.Sleep(100 * time.Millisecond) // a reconnect attempt or two
	down := scrape(t, svc.url+"/metrics")
	if down[`cache_redis_transitions_total{from="connected",to="disconnected"}`] != 1 {
		t.Errorf("transitions connected->disconnected = %v; want 1", down[`cache_redis_transitions_total{from="connected",to="disconnected"}`])
	}
	if down["cache_redis_reconnect_attempts_total"] < 1 || down[`cache_redis_status{status="disconnected"}`] != 1 {
		t.Errorf("reconnect attempts %v, disconnected gauge %v; want them to show the outage", down["cache_redis_reconnect_attempts_total"], down[`cache_redis_status{status="disconnected"}`])
	}
	if down[`cache_breaker_state{state="closed"}`] != 0 {
		t.Error("breaker still closed while Redis is down")
	}
	svc.graphql(t, getQuery, map[string]any{"k": "m"})
	again := scrape(t, svc.url+"/metrics")
	if got := again[`cache_operations_total{backend="none",op="get",outcome="unavailable"}`] - down[`cache_operations_total{backend="none",op="get",outcome="unavailable"}`]; got != 1 {
		t.Errorf("unavailable gets moved by %v during the outage; want 1", got)
	}
}

func TestMetricsPortAndSwitch(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	t.Run("separate port", func(t *testing.T) {
		t.Parallel()
		env := testEnv(srv.Addr)
		port := redistest.FreePort(t)
		env["METRICS_PORT"] = itoa(port)
		svc := startService(t, env)
		if resp, err := http.Get(svc.url + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("/metrics on the main port = %v, %v; want 404 when METRICS_PORT is set", resp.StatusCode, err)
		}
		if m := scrape(t, "http://127.0.0.1:"+itoa(port)+"/metrics"); len(m) == 0 {
			t.Error("no samples on METRICS_PORT")
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		env := testEnv(srv.Addr)
		env["METRICS_ENABLED"] = "false"
		svc := startService(t, env)
		if resp, err := http.Get(svc.url + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("/metrics with METRICS_ENABLED=false = %v, %v; want 404", resp.StatusCode, err)
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["CACHE_MAX_VALUE_BYTES"] = "100"
	svc := startService(t, env)
	tests := []struct {
		name     string
		body     io.Reader
		length   int64 // -1: chunked
		wantCode int
		wantExt  string
	}{
		{"not JSON", strings.NewReader(`{bad "password": "hunter2-secret"`), 0, http.StatusBadRequest, "BAD_REQUEST"},
		{"empty", strings.NewReader(``), 0, http.StatusBadRequest, "BAD_REQUEST"},
		{"chunked and too large", strings.NewReader(`{"query":"` + strings.Repeat("x", 200<<10) + `"}`), -1, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/graphql", tt.body)
			req.Header.Set("Content-Type", "application/json")
			if tt.length < 0 {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(raw), tt.wantExt) {
				t.Errorf("status %d, body %s; want %d with %s", resp.StatusCode, raw, tt.wantCode, tt.wantExt)
			}
			if strings.Contains(string(raw), "hunter2-secret") {
				t.Errorf("response echoes the body: %s", raw)
			}
		})
	}
	if logs := svc.logs.String(); strings.Contains(logs, "hunter2-secret") || strings.Contains(logs, "internal error") {
		t.Errorf("malformed requests reached the log:\n%s", logs)
	}
}

func TestTTLOverflowIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	for _, ttl := range []int64{18446744074, 9223372037, 2147483648, 2592001} {
		r := svc.graphql(t, `mutation($ttl: Int) { cacheSet(key: "k", value: 1, ttlSeconds: $ttl) { stored } }`, map[string]any{"ttl": ttl})
		if r.code() != "BAD_USER_INPUT" && r.code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("ttlSeconds %d: %+v; want it refused", ttl, r)
		}
	}
	if n, _ := srv.Do(t, "DBSIZE"); n != "0" {
		t.Errorf("DBSIZE = %s after refused TTLs; want 0", n)
	}
}

func TestDrainAnswers503ThenStops(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["SHUTDOWN_DRAIN_DELAY"] = "600ms"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	stopped := make(chan error, 1)
	go func() { stopped <- svc.stop() }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, hb := svc.health(t, "/health")
		if code == http.StatusServiceUnavailable && hb.Data.Status == "shutting_down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never answered 503 shutting_down during the drain (last %d)", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Still serving while draining.
	if r := svc.graphql(t, getQuery, map[string]any{"k": "x"}); string(r.Data["cacheGet"]) != "null" {
		t.Errorf("cacheGet during drain = %+v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestRedisRequiredFailsHealthWhileDegraded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_REQUIRED"] = "true"
	env["REDIS_DEGRADED_LATENCY"] = "1ns" // every probe is "slow"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "degraded", 5*time.Second)
	if code, _ := svc.health(t, "/health"); code != http.StatusServiceUnavailable {
		t.Errorf("/health with REDIS_REQUIRED and Redis degraded = %d; want 503", code)
	}
	if code, _ := svc.health(t, "/health/redis"); code != http.StatusOK {
		t.Errorf("/health/redis while degraded = %d; want 200 (reachable)", code)
	}
}

func TestGETMutationIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:g", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(svc.url + `/graphql?query=mutation%7BcacheDelete(key:%22g%22)%7Bdeleted%7D%7D`)
	if err != nil {
		t.Fatal(err)
	}
	var r gqlResponse
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	// GraphQL over HTTP: 405 Method Not Allowed.
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || r.code() != "METHOD_NOT_ALLOWED" {
		t.Errorf("mutation over GET = %d (Allow: %q) %+v; want 405, Allow: POST, METHOD_NOT_ALLOWED", resp.StatusCode, resp.Header.Get("Allow"), r)
	}
	if v, _ := srv.Do(t, "EXISTS", "school-erp:g"); v != "1" {
		t.Error("a mutation over GET deleted the key")
	}
}

func TestCacheGetManyThroughGraphQL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:x", `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	r := svc.graphql(t, `query($k: [String!]!) { cacheGetMany(keys: $k) }`, map[string]any{"k": []string{"x", "nope", "x"}})
	if got := string(r.Data["cacheGetMany"]); got != `[{"n":1},null,{"n":1}]` {
		t.Errorf("cacheGetMany = %s; want values in key order with null for the miss", got)
	}
	keys := make([]string, 101)
	for i := range keys {
		keys[i] = "k"
	}
	if r := svc.graphql(t, `query($k: [String!]!) { cacheGetMany(keys: $k) }`, map[string]any{"k": keys}); r.code() != "BAD_USER_INPUT" {
		t.Errorf("cacheGetMany with 101 keys = %+v; want BAD_USER_INPUT", r)
	}
	r = svc.graphql(t, `{ redisHealth { clientCache } }`, nil)
	if got := string(r.Data["redisHealth"]); got != `{"clientCache":"ON"}` {
		t.Errorf("redisHealth.clientCache = %s; want ON", got)
	}
	// With Redis gone no connection says whether it tracks: UNKNOWN, a
	// value of the enum (an unmapped state would be "" for a non-null
	// enum).
	srv.Kill()
	svc.waitRedisStatus(t, "disconnected", 10*time.Second)
	r = svc.graphql(t, `{ redisHealth { clientCache } }`, nil)
	if got := string(r.Data["redisHealth"]); got != `{"clientCache":"UNKNOWN"}` || len(r.Errors) > 0 {
		t.Errorf("redisHealth.clientCache with Redis down = %s %+v; want UNKNOWN", got, r.Errors)
	}
}

func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	const query = `query($k: String!) { cacheExists(key: $k) }`
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	post := func(withQuery bool) gqlResponse {
		body := map[string]any{"variables": map[string]any{"k": "apq"}, "extensions": ext}
		if withQuery {
			body["query"] = query
		}
		b, _ := json.Marshal(body)
		resp, err := http.Post(svc.url+"/graphql", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r gqlResponse
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r
	}
	if r := post(false); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "PersistedQueryNotFound") {
		t.Errorf("hash of an unknown query = %+v; want PersistedQueryNotFound", r)
	}
	if r := post(true); string(r.Data["cacheExists"]) != "false" {
		t.Errorf("query with its hash = %+v", r)
	}
	if r := post(false); string(r.Data["cacheExists"]) != "false" || len(r.Errors) > 0 {
		t.Errorf("hash alone after registration = %+v; want the query run", r)
	}
}
