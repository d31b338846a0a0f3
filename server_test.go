package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/internal/redistest"
	"github.com/school-erp/cache-service/internal/testcert"
)

// syncBuffer is the service's stdout in tests: written by the logger from
// many goroutines, read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLine is one JSON log record.
type logLine map[string]any

func (b *syncBuffer) lines(t testing.TB) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, l)
	}
	return out
}

func (b *syncBuffer) count(t *testing.T, msg string) int {
	n := 0
	for _, l := range b.lines(t) {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// service is one in-process instance started through run.
type service struct {
	url  string
	logs *syncBuffer
	stop func() error
	// bearer is sent with GraphQL requests when the service has tokens.
	bearer string
}

// testToken is a write token for tests that run in staging or production,
// which refuse to start without one.
const (
	testToken      = "tests:write:" + testTokenValue
	testTokenValue = "0123456789abcdef0123"
)

// testEnv is the base environment: fast timings, JSON logs, a free port.
func testEnv(redisAddr string) map[string]string {
	host, port, _ := strings.Cut(redisAddr, ":")
	return map[string]string{
		"PORT":                        "0",
		"LOG_FORMAT":                  "json",
		"REDIS_HOST":                  host,
		"REDIS_PORT":                  port,
		"REDIS_DIAL_TIMEOUT":          "500ms",
		"REDIS_COMMAND_TIMEOUT":       "300ms",
		"REDIS_RECONNECT_MIN_BACKOFF": "10ms",
		"REDIS_RECONNECT_MAX_BACKOFF": "100ms",
		"REDIS_HEALTH_INTERVAL":       "100ms",
		// Development defaults to the memory fallback; most tests are
		// about what clients see without it.
		"CACHE_FALLBACK": "none",
		// Staging and production default to a 5s drain.
		"SHUTDOWN_DRAIN_DELAY": "0s",
		// Without tokens (development) calls are anonymous, and the load
		// tests send thousands a second from one address; rate limiting
		// has tests of its own.
		"RATE_LIMIT_ANONYMOUS": "0",
	}
}

// startService runs the service in-process with env as its whole
// environment and returns once it listens. Nothing else the process has
// set reaches it, so tests that start services run in parallel.
func startService(t *testing.T, env map[string]string) *service {
	t.Helper()
	env = maps.Clone(env) // the caller may change its map while the service runs
	getenv := func(name string) string { return env[name] }
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-env-file", ""}, getenv, logs, io.Discard) }()

	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("run() returned early: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("service did not log its address\n%s", logs)
		}
		for _, l := range logs.lines(t) {
			if l["msg"] == "listening" {
				addr, _ = l["addr"].(string)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listening addr %q: %v", addr, err)
	}
	var once sync.Once
	var runErr error
	s := &service{url: "http://127.0.0.1:" + port, logs: logs}
	if env["API_TOKENS"] == testToken {
		s.bearer = testTokenValue
	}
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = errors.New("run() did not return 15s after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("run() = %v; want nil after shutdown", err)
		}
	})
	return s
}

type gqlResponse struct {
	Data       map[string]json.RawMessage `json:"data"`
	Errors     []gqlError                 `json:"errors"`
	Extensions struct {
		Warnings []struct {
			Code string `json:"code"`
			Path []any  `json:"path"`
		} `json:"warnings"`
	} `json:"extensions"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// graphql POSTs a query and decodes the response; any status but 200 fails.
func (s *service) graphql(t *testing.T, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if s.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /graphql %s = HTTP %d: %s", query, resp.StatusCode, raw)
	}
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return out
}

type healthBody struct {
	Success bool `json:"success"`
	Data    struct {
		Status        string   `json:"status"`
		LatencyMs     *float64 `json:"latencyMs"`
		MemoryUsage   *string  `json:"memoryUsage"`
		Uptime        *int64   `json:"uptime"`
		UptimeSeconds *int64   `json:"uptimeSeconds"`
		ServerVersion *string  `json:"serverVersion"`
		Reason        *string  `json:"reason"`
		Redis         *struct {
			Status string  `json:"status"`
			Reason *string `json:"reason"`
		} `json:"redis"`
	} `json:"data"`
}

func (s *service) health(t *testing.T, path string) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var hb healthBody
	if err := json.NewDecoder(resp.Body).Decode(&hb); err != nil {
		t.Fatalf("decode GET %s: %v", path, err)
	}
	return resp.StatusCode, hb
}

// waitRedisStatus polls /health/redis until Redis has status want.
func (s *service) waitRedisStatus(t *testing.T, want string, within time.Duration) healthBody {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, hb := s.health(t, "/health/redis")
		if hb.Data.Status == want {
			return hb
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health/redis status = %q; want %q within %s", hb.Data.Status, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const (
	setQuery    = `mutation($k: String!, $v: JSON!, $ttl: Int) { cacheSet(key: $k, value: $v, ttlSeconds: $ttl) { key stored backend ttlSeconds failure message } }`
	getQuery    = `query($k: String!) { cacheGet(key: $k) }`
	existsQuery = `query($k: String!) { cacheExists(key: $k) }`
	deleteQuery = `mutation($k: String!) { cacheDelete(key: $k) { key deleted failure } }`
)

type setPayload struct {
	Key        string  `json:"key"`
	Stored     bool    `json:"stored"`
	Backend    *string `json:"backend"`
	TTLSeconds *int    `json:"ttlSeconds"`
	Failure    *string `json:"failure"`
	Message    *string `json:"message"`
}

func field[T any](t *testing.T, r gqlResponse, name string) T {
	t.Helper()
	var v T
	if len(r.Errors) > 0 {
		t.Fatalf("GraphQL errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data[name], &v); err != nil {
		t.Fatalf("decode %s = %s: %v", name, r.Data[name], err)
	}
	return v
}

func TestAC1ConnectsWithPasswordAndReportsHealth(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Password: "ac1-Secret-pw"})
	env := testEnv(srv.Addr)
	env["REDIS_PASSWORD"] = "ac1-Secret-pw"
	svc := startService(t, env)

	hb := svc.waitRedisStatus(t, "connected", 5*time.Second)
	if !hb.Success || hb.Data.LatencyMs == nil || *hb.Data.LatencyMs <= 0 || hb.Data.MemoryUsage == nil || hb.Data.Uptime == nil {
		t.Errorf("/health/redis = %+v; want success with latency, memory and uptime", hb)
	} else if hb.Data.UptimeSeconds == nil || *hb.Data.UptimeSeconds != *hb.Data.Uptime {
		t.Errorf("/health/redis uptimeSeconds = %v; want uptime's %d under GraphQL's name too", hb.Data.UptimeSeconds, *hb.Data.Uptime)
	}
	code, hb := svc.health(t, "/health")
	if code != http.StatusOK || hb.Data.Status != "ok" || hb.Data.Redis == nil || hb.Data.Redis.Status != "connected" {
		t.Errorf("/health = %d %+v; want 200 ok with redis connected", code, hb)
	}
	type redisHealth struct {
		Status        string   `json:"status"`
		LatencyMs     *float64 `json:"latencyMs"`
		MemoryUsage   *string  `json:"memoryUsage"`
		UptimeSeconds *int     `json:"uptimeSeconds"`
		ServerVersion *string  `json:"serverVersion"`
	}
	r := svc.graphql(t, `{ redisHealth { status latencyMs memoryUsage uptimeSeconds serverVersion } }`, nil)
	h := field[redisHealth](t, r, "redisHealth")
	if h.Status != "CONNECTED" || h.LatencyMs == nil || h.MemoryUsage == nil || h.UptimeSeconds == nil || h.ServerVersion == nil {
		t.Errorf("redisHealth = %+v; want CONNECTED with latency, memory, uptime and version", h)
	}
	if strings.Contains(svc.logs.String(), "ac1-Secret-pw") {
		t.Error("the log reveals REDIS_PASSWORD")
	}
}

func TestAC2RedisAbsentAtStartThenAppears(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))

	code, hb := svc.health(t, "/health")
	if code != http.StatusOK || hb.Data.Status != "degraded" || hb.Data.Redis.Status != "disconnected" {
		t.Errorf("/health with Redis absent = %d %+v; want 200 degraded, redis disconnected", code, hb)
	}
	if code, _ := svc.health(t, "/health/redis"); code != http.StatusServiceUnavailable {
		t.Errorf("/health/redis with Redis absent = %d; want 503", code)
	}
	r := svc.graphql(t, getQuery, map[string]any{"k": "greeting"})
	if string(r.Data["cacheGet"]) != "null" || len(r.Errors) != 0 || len(r.Extensions.Warnings) != 1 || r.Extensions.Warnings[0].Code != "REDIS_UNAVAILABLE" {
		t.Errorf("cacheGet with Redis absent = %+v; want null with a REDIS_UNAVAILABLE warning", r)
	}
	set := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "greeting", "v": "hi"}), "cacheSet")
	if set.Stored || set.Failure == nil || *set.Failure != "REDIS_UNAVAILABLE" || set.Message == nil {
		t.Errorf("cacheSet with Redis absent = %+v; want stored false, failure REDIS_UNAVAILABLE", set)
	}

	srv.Start()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	set = field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "greeting", "v": "hi"}), "cacheSet")
	if !set.Stored || set.Failure != nil {
		t.Errorf("cacheSet after Redis appeared = %+v; want stored", set)
	}
	if got := svc.graphql(t, getQuery, map[string]any{"k": "greeting"}); string(got.Data["cacheGet"]) != `"hi"` {
		t.Errorf("cacheGet after Redis appeared = %s; want \"hi\"", got.Data["cacheGet"])
	}
	if code, hb := svc.health(t, "/health"); code != http.StatusOK || hb.Data.Status != "ok" {
		t.Errorf("/health after Redis appeared = %d %q; want 200 ok", code, hb.Data.Status)
	}
}

func TestAC2RedisKilledUnderLoadThenRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	before := len(svc.logs.lines(t))

	srv.Kill()
	// 8 clients × 25 requests each, mixing reads and writes: every response
	// is HTTP 200 and either a miss with a warning or "not stored".
	var wg sync.WaitGroup
	problems := make(chan string, 8*25)
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				key := fmt.Sprintf("k%d", i)
				if j%2 == 0 {
					r := svc.graphql(t, getQuery, map[string]any{"k": key})
					if string(r.Data["cacheGet"]) != "null" || len(r.Errors) > 0 || len(r.Extensions.Warnings) != 1 {
						problems <- fmt.Sprintf("cacheGet during outage = %+v", r)
					}
					continue
				}
				r := svc.graphql(t, setQuery, map[string]any{"k": key, "v": j})
				var p setPayload
				_ = json.Unmarshal(r.Data["cacheSet"], &p)
				if p.Stored || p.Failure == nil {
					problems <- fmt.Sprintf("cacheSet during outage = %s", r.Data["cacheSet"])
				}
			}
		})
	}
	wg.Wait()
	close(problems)
	for p := range problems {
		t.Error(p)
	}
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	if code, hb := svc.health(t, "/health"); code != http.StatusOK || hb.Data.Status != "degraded" {
		t.Errorf("/health during outage = %d %q; want 200 degraded", code, hb.Data.Status)
	}

	srv.Start()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	set := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "after", "v": map[string]any{"ok": true}}), "cacheSet")
	if !set.Stored {
		t.Errorf("cacheSet after recovery = %+v; want stored", set)
	}
	if got := svc.graphql(t, getQuery, map[string]any{"k": "after"}); string(got.Data["cacheGet"]) != `{"ok":true}` {
		t.Errorf("cacheGet after recovery = %s", got.Data["cacheGet"])
	}

	// 200 requests during the outage: one line when it went, one when it came back.
	lines := svc.logs.lines(t)[before:]
	if len(lines) > 3 {
		t.Errorf("%d log lines for one outage under load; want at most 3: %v", len(lines), lines)
	}
	if n := svc.logs.count(t, "redis unreachable; requests report REDIS_UNAVAILABLE until it returns"); n != 1 {
		t.Errorf("%d outage lines; want 1", n)
	}
}

func TestAC2WrongPasswordKeepsServing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Password: "the-right-one"})
	env := testEnv(srv.Addr)
	env["REDIS_PASSWORD"] = "a-wrong-one"
	svc := startService(t, env)

	hb := svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for (hb.Data.Reason == nil || !strings.Contains(*hb.Data.Reason, "authentication failed")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		_, hb = svc.health(t, "/health/redis")
	}
	if hb.Data.Reason == nil || !strings.Contains(*hb.Data.Reason, "authentication failed") {
		t.Errorf("/health/redis reason = %v; want an authentication failure", hb.Data.Reason)
	}
	if code, _ := svc.health(t, "/health"); code != http.StatusOK {
		t.Errorf("/health with a wrong password = %d; want 200 (the service still serves)", code)
	}
	found := 0
	for _, l := range svc.logs.lines(t) {
		if cause, _ := l["cause"].(string); l["level"] == "WARN" && strings.Contains(cause, "authentication failed") {
			found++
		}
	}
	if found != 1 {
		t.Errorf("%d WARN lines name the authentication failure; want 1\n%s", found, svc.logs)
	}
	if s := svc.logs.String(); strings.Contains(s, "a-wrong-one") || strings.Contains(s, "the-right-one") {
		t.Error("the log reveals a password")
	}
}

func TestAC4OperationsThroughGraphQL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	value := map[string]any{"student": "Ada", "grades": []any{95, 87.5}, "active": true, "note": nil}
	set := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "student:1", "v": value}), "cacheSet")
	if !set.Stored || set.Key != "student:1" || set.TTLSeconds != nil {
		t.Errorf("cacheSet = %+v; want stored with no TTL", set)
	}
	if got := svc.graphql(t, getQuery, map[string]any{"k": "student:1"}); string(got.Data["cacheGet"]) != `{"active":true,"grades":[95,87.5],"note":null,"student":"Ada"}` {
		t.Errorf("cacheGet = %s", got.Data["cacheGet"])
	}
	if raw, err := srv.Do(t, "GET", "school-erp:student:1"); err != nil || !strings.Contains(raw, `"Ada"`) {
		t.Errorf("raw GET school-erp:student:1 = %q, %v; want the JSON under the prefix", raw, err)
	}
	if got := svc.graphql(t, existsQuery, map[string]any{"k": "student:1"}); string(got.Data["cacheExists"]) != "true" {
		t.Errorf("cacheExists = %s; want true", got.Data["cacheExists"])
	}
	del := svc.graphql(t, deleteQuery, map[string]any{"k": "student:1"})
	if string(del.Data["cacheDelete"]) != `{"key":"student:1","deleted":true,"failure":null}` {
		t.Errorf("cacheDelete = %s", del.Data["cacheDelete"])
	}
	if got := svc.graphql(t, existsQuery, map[string]any{"k": "student:1"}); string(got.Data["cacheExists"]) != "false" {
		t.Errorf("cacheExists after delete = %s; want false", got.Data["cacheExists"])
	}
	if got := svc.graphql(t, getQuery, map[string]any{"k": "student:1"}); string(got.Data["cacheGet"]) != "null" || len(got.Extensions.Warnings) != 0 {
		t.Errorf("cacheGet after delete = %s, warnings %v; want a plain miss", got.Data["cacheGet"], got.Extensions.Warnings)
	}

	// TTL: present within it, null after it.
	set = field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "session", "v": "token-123", "ttl": 1}), "cacheSet")
	if !set.Stored || set.TTLSeconds == nil || *set.TTLSeconds != 1 {
		t.Fatalf("cacheSet with ttlSeconds 1 = %+v", set)
	}
	if got := svc.graphql(t, getQuery, map[string]any{"k": "session"}); string(got.Data["cacheGet"]) != `"token-123"` {
		t.Errorf("cacheGet within TTL = %s", got.Data["cacheGet"])
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := svc.graphql(t, getQuery, map[string]any{"k": "session"})
		if string(got.Data["cacheGet"]) == "null" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cacheGet still returns the value 3s after a 1s TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGetOverHTTPGet(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:g", `[1,2]`); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(svc.url + "/graphql?query=" + url.QueryEscape(`{ cacheGet(key: "g") }`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"data":{"cacheGet":[1,2]}}` {
		t.Errorf("GET cacheGet = %d %s", resp.StatusCode, body)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["CACHE_MAX_VALUE_BYTES"] = "100"
	env["CACHE_MAX_TTL"] = "1h"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	tests := []struct {
		name  string
		query string
		vars  map[string]any
		want  string
	}{
		{"empty key", setQuery, map[string]any{"k": "", "v": 1}, "empty"},
		{"key over 512 bytes", setQuery, map[string]any{"k": strings.Repeat("x", 513), "v": 1}, "512"},
		{"zero ttl", setQuery, map[string]any{"k": "k", "v": 1, "ttl": 0}, "positive"},
		{"negative ttl", setQuery, map[string]any{"k": "k", "v": 1, "ttl": -5}, "positive"},
		{"ttl above max", setQuery, map[string]any{"k": "k", "v": 1, "ttl": 3601}, "3600"},
		{"value over limit", setQuery, map[string]any{"k": "k", "v": strings.Repeat("v", 100)}, "limit is 100"},
		{"empty key on get", getQuery, map[string]any{"k": ""}, "empty"},
		{"empty key on exists", existsQuery, map[string]any{"k": ""}, "empty"},
		{"empty key on delete", deleteQuery, map[string]any{"k": ""}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := svc.graphql(t, tt.query, tt.vars)
			if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, tt.want) {
				t.Errorf("response = %+v; want BAD_USER_INPUT mentioning %q", r, tt.want)
			}
		})
	}
	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "0" {
		t.Errorf("DBSIZE = %s, %v; want 0 after rejected input", n, err)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["CACHE_MAX_VALUE_BYTES"] = "100"
	svc := startService(t, env)
	body := `{"query":"mutation { cacheSet(key: \"k\", value: \"` + strings.Repeat("x", 70<<10) + `\") { stored } }"}`
	resp, err := http.Post(svc.url+"/graphql", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of %d bytes = %d; want 413", len(body), resp.StatusCode)
	}
}

func TestRedisRequiredFailsHealthWhileDisconnected(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_REQUIRED"] = "true"
	svc := startService(t, env)
	if code, hb := svc.health(t, "/health"); code != http.StatusServiceUnavailable || hb.Data.Status != "degraded" {
		t.Errorf("/health with REDIS_REQUIRED and Redis absent = %d %q; want 503 degraded", code, hb.Data.Status)
	}
	srv.Start()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if code, _ := svc.health(t, "/health"); code != http.StatusOK {
		t.Errorf("/health with REDIS_REQUIRED and Redis up = %d; want 200", code)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_COMMAND_TIMEOUT"] = "3s"
	env["REDIS_DEGRADED_LATENCY"] = "10s"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:slow", `"done"`); err != nil {
		t.Fatal(err)
	}

	// Freeze Redis for a moment so that a request is in flight when the
	// shutdown starts.
	go func() { _, _ = srv.Do(t, "DEBUG", "SLEEP", "0.6") }()
	time.Sleep(100 * time.Millisecond)
	result := make(chan string, 1)
	go func() {
		body, _ := json.Marshal(map[string]any{"query": getQuery, "variables": map[string]any{"k": "slow"}})
		resp, err := http.Post(svc.url+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	if err := svc.stop(); err != nil {
		t.Fatalf("run() after shutdown = %v; want nil", err)
	}
	if got := <-result; got != `{"data":{"cacheGet":"done"}}` {
		t.Errorf("in-flight request during shutdown got %s; want its value", got)
	}
	if _, err := http.Get(svc.url + "/health"); err == nil {
		t.Error("service still accepts connections after shutdown")
	}
	if n := svc.logs.count(t, "stopped"); n != 1 {
		t.Errorf("%d 'stopped' lines; want 1", n)
	}
}

// commandsProcessed is how many commands Redis has run, all kinds counted.
func commandsProcessed(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	stats, err := srv.Do(t, "INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	t.Fatal("INFO stats has no total_commands_processed")
	return 0
}

// pingsProcessed is how many PINGs Redis has run (INFO commandstats).
func pingsProcessed(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	stats, err := srv.Do(t, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_ping:calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

func TestHealthPollingSendsNothingToRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_HEALTH_INTERVAL"] = "1h" // only the start-up probe
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	time.Sleep(100 * time.Millisecond) // the start-up probe's INFO and CLIENT INFO
	before, pingsBefore := commandsProcessed(t, srv), pingsProcessed(t, srv)
	start := time.Now()
	for range 100 {
		svc.health(t, "/health")
		svc.health(t, "/health/redis")
		svc.graphql(t, `{ redisHealth { status } }`, nil)
	}
	elapsed := time.Since(start)
	// Every command counts. Besides the test's own INFOs and its
	// connection's handshake, valkey-go PINGs a connection that has been
	// idle a while (about once a second, more often the longer a loaded
	// machine takes over the loop): PINGs are allowed at two a second of
	// the loop, other commands a few, where a command (or a PING) per
	// health request would be 300.
	after, pingsAfter := commandsProcessed(t, srv), pingsProcessed(t, srv)
	pings := pingsAfter - pingsBefore
	others := (after - before) - pings
	if allowed := 5 + 2*int(elapsed.Seconds()); pings > allowed || others > 20 {
		t.Errorf("Redis ran %d PINGs and %d other commands over 300 health requests in %v; want none of the service's (at most %d idle PINGs)", pings, others, elapsed.Round(time.Millisecond), allowed)
	}
}

func TestPlaygroundOnlyInDevelopment(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	for _, tt := range []struct {
		appEnv string
		want   int
	}{{"development", http.StatusOK}, {"production", http.StatusNotFound}} {
		env := testEnv(srv.Addr)
		env["APP_ENV"] = tt.appEnv
		env["API_TOKENS"] = testToken
		svc := startService(t, env)
		resp, err := http.Get(svc.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("APP_ENV=%s: GET / = %d; want %d", tt.appEnv, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusOK && !strings.Contains(string(body), "graphiql") {
			t.Errorf("APP_ENV=%s: GET / is not GraphiQL", tt.appEnv)
		}
		r := svc.graphql(t, `{ __schema { queryType { name } } }`, nil)
		if introspected := len(r.Errors) == 0; introspected != (tt.appEnv == "development") {
			t.Errorf("APP_ENV=%s: introspection allowed = %v", tt.appEnv, introspected)
		}
		if err := svc.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTLSThroughTheService(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "test")
	other := testcert.NewCA(t, "other")
	pair := ca.Server("redis", testcert.CertOptions{})
	srv := redistest.Start(t, redistest.Options{TLS: &redistest.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: ca.CertFile}})

	t.Run("trusted CA", func(t *testing.T) {
		t.Parallel()
		env := testEnv(srv.Addr)
		env["REDIS_TLS"], env["REDIS_TLS_CA_FILE"] = "true", ca.CertFile
		svc := startService(t, env)
		svc.waitRedisStatus(t, "connected", 5*time.Second)
		set := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "tls", "v": "secure"}), "cacheSet")
		if !set.Stored {
			t.Errorf("cacheSet over TLS = %+v; want stored", set)
		}
		resp, err := http.Get(svc.url + "/health/redis")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Data struct {
				TLS  bool   `json:"tls"`
				Mode string `json:"mode"`
			} `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if !body.Data.TLS || body.Data.Mode != "standalone" {
			t.Errorf("/health/redis tls %v mode %q; want true, standalone", body.Data.TLS, body.Data.Mode)
		}
	})

	t.Run("untrusted CA", func(t *testing.T) {
		t.Parallel()
		env := testEnv(srv.Addr)
		env["REDIS_TLS"], env["REDIS_TLS_CA_FILE"] = "true", other.CertFile
		svc := startService(t, env)
		hb := svc.waitRedisStatus(t, "disconnected", 2*time.Second)
		deadline := time.Now().Add(2 * time.Second)
		for (hb.Data.Reason == nil || !strings.Contains(*hb.Data.Reason, "unknown authority")) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			_, hb = svc.health(t, "/health/redis")
		}
		if hb.Data.Reason == nil || !strings.Contains(*hb.Data.Reason, "unknown authority") {
			t.Errorf("/health/redis reason = %v; want the certificate cause", hb.Data.Reason)
		}
		if code, _ := svc.health(t, "/health"); code != http.StatusOK {
			t.Errorf("/health = %d; want 200 (serving without the cache)", code)
		}
		if n := svc.logs.count(t, "redis unreachable; requests report REDIS_UNAVAILABLE until it returns"); n != 1 {
			t.Errorf("%d outage lines; want 1", n)
		}
	})

	t.Run("skip verify warns in development", func(t *testing.T) {
		t.Parallel()
		env := testEnv(srv.Addr)
		env["REDIS_TLS"], env["REDIS_TLS_INSECURE_SKIP_VERIFY"] = "true", "true"
		svc := startService(t, env)
		svc.waitRedisStatus(t, "connected", 5*time.Second)
		warned := false
		for _, l := range svc.logs.lines(t) {
			if msg, _ := l["msg"].(string); l["level"] == "WARN" && strings.Contains(msg, "REDIS_TLS_INSECURE_SKIP_VERIFY") {
				warned = true
			}
		}
		if !warned {
			t.Error("no WARN at start for REDIS_TLS_INSECURE_SKIP_VERIFY=true")
		}
	})
}

func TestCacheOptionsByMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, o cache.Options)
	}{
		{"standalone with TLS", map[string]string{"REDIS_HOST": "h", "REDIS_PORT": "7000", "REDIS_TLS": "true", "REDIS_TLS_SERVER_NAME": "n"}, func(t *testing.T, o cache.Options) {
			if o.Addr != "h:7000" || o.TLS == nil || o.TLS.ServerName != "n" || len(o.ClusterAddrs) != 0 {
				t.Errorf("options = addr %q tls %+v cluster %v", o.Addr, o.TLS, o.ClusterAddrs)
			}
		}},
		{"sentinel inherits TLS", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:1,s2:2", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_PASSWORD": "sp", "REDIS_TLS": "true"}, func(t *testing.T, o cache.Options) {
			s := o.Sentinel
			if o.Addr != "" || len(s.Addrs) != 2 || s.MasterSet != "m" || s.Password != "sp" || s.TLS == nil || o.TLS == nil {
				t.Errorf("options = addr %q sentinel %+v tls %+v", o.Addr, s, o.TLS)
			}
		}},
		{"sentinel plaintext, data TLS", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_TLS": "true", "REDIS_SENTINEL_TLS": "false"}, func(t *testing.T, o cache.Options) {
			if o.Sentinel.TLS != nil || o.TLS == nil {
				t.Errorf("sentinel TLS %+v data TLS %+v; want none and some", o.Sentinel.TLS, o.TLS)
			}
		}},
		{"cluster", map[string]string{"REDIS_CLUSTER_ADDRS": "a:1,b:2"}, func(t *testing.T, o cache.Options) {
			if o.Addr != "" || strings.Join(o.ClusterAddrs, ",") != "a:1,b:2" {
				t.Errorf("options = addr %q cluster %v", o.Addr, o.ClusterAddrs)
			}
		}},
		{"no retries", map[string]string{"REDIS_MAX_RETRIES": "0"}, func(t *testing.T, o cache.Options) {
			if o.MaxRetries >= 0 {
				t.Errorf("MaxRetries = %d; want negative (disabled) for REDIS_MAX_RETRIES=0", o.MaxRetries)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(func(name string) string { return tt.env[name] }, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cacheOptions(cfg, nil))
		})
	}
}
