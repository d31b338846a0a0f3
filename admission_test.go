package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// refusalBody is what a request refused before GraphQL gets: one error,
// no data.
type refusalBody struct {
	Data   *json.RawMessage `json:"data"`
	Errors []gqlError       `json:"errors"`
}

// refusedWith decodes body and reports whether it is one GraphQL error with
// code, and no data.
func refusedWith(body, code string) bool {
	var r refusalBody
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Data != nil || len(r.Errors) != 1 {
		return false
	}
	got, _ := r.Errors[0].Extensions["code"].(string)
	return got == code && r.Errors[0].Message != ""
}

func TestAdmissionBeforeParsing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	mutation, _ := json.Marshal(map[string]any{"query": setQuery, "variables": map[string]any{"k": "anon", "v": 1}})

	tests := []struct {
		name, method, path, bearer, body string
		challenge                        string
	}{
		{"no token", http.MethodPost, "/graphql", "", string(mutation), "Bearer"},
		{"unknown token", http.MethodPost, "/graphql", "not-a-known-token-value", string(mutation), `Bearer error="invalid_token"`},
		// Were the body read, this would be 400 BAD_REQUEST.
		{"no token, body not JSON", http.MethodPost, "/graphql", "", "{not json", "Bearer"},
		{"no token, GET", http.MethodGet, "/graphql?query=" + url.QueryEscape(`{ cacheGet(key: "k") }`), "", "", "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := send(t, tt.method, svc.url+tt.path, tt.bearer, tt.body)
			if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != tt.challenge || !refusedWith(body, "UNAUTHENTICATED") {
				t.Errorf("%s %s = %d (WWW-Authenticate %q) %s; want 401, %q, UNAUTHENTICATED", tt.method, tt.path, code, h.Get("WWW-Authenticate"), body, tt.challenge)
			}
		})
	}

	t.Run("the body is never asked for", func(t *testing.T) {
		// A client that sends Expect: 100-continue waits for the server to
		// ask for the body; a refusal must come without that.
		conn, err := net.Dial("tcp", strings.TrimPrefix(svc.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(mutation))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("first response to Expect: 100-continue without a token = %d; want 401 (not 100: the body must not be wanted)", resp.StatusCode)
		}
	})

	t.Run("scopes are still per field", func(t *testing.T) {
		code, r := request(t, svc, readToken, setQuery, map[string]any{"k": "anon", "v": 1})
		if code != http.StatusOK || r.code() != "FORBIDDEN" {
			t.Errorf("read token on a mutation = %d %+v; want 200 with FORBIDDEN on the field", code, r.Errors)
		}
	})

	t.Run("health is open", func(t *testing.T) {
		for _, path := range []string{"/health", "/health/redis", "/livez", "/readyz"} {
			if code, _, body := send(t, http.MethodGet, svc.url+path, "", ""); code != http.StatusOK {
				t.Errorf("anonymous GET %s = %d %s; want 200", path, code, body)
			}
		}
	})

	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "0" {
		t.Errorf("DBSIZE = %s, %v; want 0: nothing refused may be stored", n, err)
	}
}

// vmRSS is the resident set size of process pid, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}

// postRaw sends a POST of body on a connection of its own, whatever the
// server does with the body, and returns the response. The body is written
// beside the read, as an attacker would send it: the server may answer and
// close before taking it all.
func postRaw(t *testing.T, baseURL, bearer string, body []byte) (int, http.Header, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := ""
	if bearer != "" {
		auth = "Authorization: Bearer " + bearer + "\r\n"
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", auth, len(body))
		_, _ = conn.Write(body) // fails once the server closes: expected
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	<-written
	return resp.StatusCode, resp.Header, string(b)
}

// TestAnonymousBodiesCostNoMemory: the built binary, as staging runs it,
// refuses 60 anonymous 1 MiB documents without reading them. When they were
// parsed, validated and cached before being refused, RSS grew by about
// 110 MiB.
func TestAnonymousBodiesCostNoMemory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	p := startBinary(t, map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken, "REDIS_HOST": host, "REDIS_PORT": port})
	pid := p.cmd.Process.Pid
	// Warm up what every request needs (connections, buffers) first.
	for range 3 {
		postRaw(t, p.url, "", []byte(`{"query":"{ cacheGet(key: \"k\") }"}`))
	}
	before := vmRSS(t, pid)
	const documents, size = 60, 1 << 20
	answered := 0
	for i := range documents {
		// A distinct document each time, 1 MiB of it one string literal:
		// a query cache keyed by document keeps every one.
		prefix := fmt.Sprintf(`{"query":"{ cacheGet(key: \"%d-`, i)
		suffix := `\") }"}`
		body := []byte(prefix + strings.Repeat("x", size-len(prefix)-len(suffix)) + suffix)
		code, h, got := postRaw(t, p.url, "", body)
		if code == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "Bearer" && refusedWith(got, "UNAUTHENTICATED") {
			answered++
		} else if answered == i {
			t.Errorf("anonymous POST %d = %d %q %.200s; want 401 UNAUTHENTICATED", i, code, h.Get("WWW-Authenticate"), got)
		}
	}
	if answered != documents {
		t.Errorf("%d of %d anonymous POSTs answered 401 UNAUTHENTICATED; want all", answered, documents)
	}
	after := vmRSS(t, pid)
	growth := after - before
	t.Logf("VmRSS %d KiB before, %d KiB after %d anonymous 1 MiB POSTs: grew %d KiB", before>>10, after>>10, documents, growth>>10)
	if growth >= 30<<20 {
		t.Errorf("RSS grew by %d MiB over %d anonymous 1 MiB POSTs; want less than 30 MiB (they must not be read)", growth>>20, documents)
	}
}

// loadResult counts the answers of a load run by HTTP status and by the
// first error's code.
type loadResult struct {
	requests int
	status   map[int]int
	codes    map[string]int
	elapsed  time.Duration
}

// hammer POSTs body with bearer from workers goroutines as fast as the
// service answers, for at most d or total requests, whichever comes first.
func hammer(t *testing.T, baseURL, bearer, body string, workers, total int, d time.Duration) loadResult {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	res := loadResult{status: map[int]int{}, codes: map[string]int{}}
	var sent atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && sent.Add(1) <= int64(total) {
				req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+bearer)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("POST /graphql: %v", err)
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var r gqlResponse
				_ = json.Unmarshal(raw, &r)
				mu.Lock()
				res.requests++
				res.status[resp.StatusCode]++
				res.codes[r.code()]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	t.Logf("%d requests in %v (%.0f/s): status %v, codes %v", res.requests, res.elapsed.Round(time.Millisecond), float64(res.requests)/res.elapsed.Seconds(), res.status, res.codes)
	return res
}

// loadEnv is the binary in staging with one write token and the defaults
// otherwise, apart from extra.
func loadEnv(srv *redistest.Server, extra map[string]string) map[string]string {
	host, port, _ := strings.Cut(srv.Addr, ":")
	env := map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken, "REDIS_HOST": host, "REDIS_PORT": port}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

var loadBody = func() string {
	b, _ := json.Marshal(map[string]any{"query": setQuery, "variables": map[string]any{"k": "load", "v": map[string]any{"n": 1}}})
	return string(b)
}()

// TestTokensAreNotThrottledByDefault: one write token at full speed, with
// the defaults a deployment gets. The former default (1000 requests a
// second per token, bursts of 2000) refused most of such a load.
func TestTokensAreNotThrottledByDefault(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	p := startBinary(t, loadEnv(srv, nil))
	p.set(t, "ready", 1)
	res := hammer(t, p.url, p.bearer, loadBody, 16, 20000, 3*time.Second)
	if res.status[http.StatusTooManyRequests] > 0 || res.status[http.StatusOK] != res.requests {
		t.Errorf("%d of %d requests from one token answered 429 with default settings (statuses %v); want every one 200", res.status[http.StatusTooManyRequests], res.requests, res.status)
	}
}

func TestRateLimitRPSThrottlesTokens(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	p := startBinary(t, loadEnv(srv, map[string]string{"RATE_LIMIT_RPS": "100"}))
	p.set(t, "ready", 1)
	res := hammer(t, p.url, p.bearer, loadBody, 16, 4000, 3*time.Second)
	limited := res.status[http.StatusTooManyRequests]
	if limited*2 <= res.requests || res.codes["RATE_LIMITED"] != limited {
		t.Errorf("RATE_LIMIT_RPS=100: %d of %d requests answered 429 (codes %v); want most, each RATE_LIMITED", limited, res.requests, res.codes)
	}
	// At most the burst (200) and 100 a second got through.
	if ok, most := res.status[http.StatusOK], 200+int(100*res.elapsed.Seconds())+20; ok > most {
		t.Errorf("%d requests answered 200 in %v; want at most %d at 100 a second with bursts of 200", ok, res.elapsed, most)
	}
}

// TestLoadSheddingPastTheInFlightBound: with GRAPHQL_MAX_IN_FLIGHT=2 and
// two requests held in Redis (DEBUG SLEEP), a third is refused at once with
// 503 OVERLOADED and Retry-After instead of waiting; health endpoints still
// answer meanwhile; the held requests finish, and their slots come back.
func TestLoadSheddingPastTheInFlightBound(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := productionEnv(srv.Addr)
	env["GRAPHQL_MAX_IN_FLIGHT"] = "2"
	env["REDIS_COMMAND_TIMEOUT"] = "5s" // the held requests wait for Redis
	env["REDIS_DEGRADED_LATENCY"] = "10s"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	sleeping := make(chan struct{})
	go func() {
		close(sleeping)
		_, _ = srv.Do(t, "DEBUG", "SLEEP", "2")
	}()
	<-sleeping
	time.Sleep(100 * time.Millisecond) // Redis is asleep
	held := make(chan string, 2)
	for i := range 2 {
		go func() {
			_, r := request(t, svc, writeToken, setQuery, map[string]any{"k": fmt.Sprint("held", i), "v": i})
			held <- string(r.Data["cacheSet"])
		}()
	}
	time.Sleep(300 * time.Millisecond) // both are in flight, waiting on Redis

	start := time.Now()
	code, h, body := send(t, http.MethodPost, svc.url+"/graphql", writeToken, loadBody)
	if elapsed := time.Since(start); code != http.StatusServiceUnavailable || !refusedWith(body, "OVERLOADED") || h.Get("Retry-After") == "" || elapsed > 250*time.Millisecond {
		t.Errorf("third request with 2 in flight (bound 2) = %d %s (Retry-After %q) after %v; want 503 OVERLOADED with Retry-After, at once", code, body, h.Get("Retry-After"), elapsed)
	}
	for _, path := range []string{"/health", "/livez", "/readyz", "/metrics", "/health/redis"} {
		start := time.Now()
		code, _, body := send(t, http.MethodGet, svc.url+path, readToken, "")
		// /health/redis reports Redis itself, asleep: whatever it says,
		// it says it at once.
		if elapsed := time.Since(start); code != http.StatusOK && path != "/health/redis" || elapsed > 500*time.Millisecond {
			t.Errorf("GET %s while the GraphQL bound is full = %d after %v: %.200s; want an answer at once (200)", path, code, elapsed, body)
		}
	}
	for range 2 {
		if got := <-held; !strings.Contains(got, `"stored":true`) {
			t.Errorf("held request = %s; want stored once Redis woke", got)
		}
	}
	if code, _, body := send(t, http.MethodPost, svc.url+"/graphql", writeToken, loadBody); code != http.StatusOK || !strings.Contains(body, `"stored":true`) {
		t.Errorf("request after the held ones finished = %d %s; want 200 stored (their slots are free again)", code, body)
	}
}

// trickle sends a POST whose body arrives in pieces, waiting pause before
// each, and stops after sending pieces of them if stall is set. It
// returns the response (or fails on none within 10s) and when it came.
func trickle(t *testing.T, baseURL, bearer string, body []byte, pieces int, pause time.Duration, stall int) (*http.Response, string, time.Time) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := ""
	if bearer != "" {
		auth = "Authorization: Bearer " + bearer + "\r\n"
	}
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", auth, len(body))
	go func() {
		size := (len(body) + pieces - 1) / pieces
		for i := 0; i < pieces && (stall == 0 || i < stall); i++ {
			time.Sleep(pause)
			if _, err := conn.Write(body[i*size : min(len(body), (i+1)*size)]); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), time.Now()
}

// TestSlowBodyGetsTheWholeDeadline: a body that takes 1.5 s to arrive,
// within the body's own bound, still has all of GRAPHQL_REQUEST_TIMEOUT
// (600 ms here) once it is in. When the deadline started with the request,
// this answered HTTP 200 with the body null.
func TestSlowBodyGetsTheWholeDeadline(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	body, _ := json.Marshal(map[string]any{"query": setQuery, "variables": map[string]any{"k": "slow", "v": "arrived"}})
	resp, got, _ := trickle(t, svc.url, writeToken, body, 3, 500*time.Millisecond, 0)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"stored":true`) {
		t.Errorf("body in 1.5 s, deadline 600 ms: %d %s; want 200 stored", resp.StatusCode, got)
	}
	if v, err := srv.Do(t, "GET", "school-erp:slow"); err != nil || v != `"arrived"` {
		t.Errorf("GET school-erp:slow = %q, %v; want the value", v, err)
	}
}

// TestBodyPastItsBoundIsRefusedWithACode: a body still arriving when
// GRAPHQL_BODY_TIMEOUT passes is refused with 408 BODY_TIMEOUT, at the
// bound, never 200 null.
func TestBodyPastItsBoundIsRefusedWithACode(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := productionEnv(srv.Addr)
	env["GRAPHQL_BODY_TIMEOUT"] = "500ms"
	svc := startService(t, env)
	body, _ := json.Marshal(map[string]any{"query": setQuery, "variables": map[string]any{"k": "stalled", "v": 1}})
	start := time.Now()
	resp, got, at := trickle(t, svc.url, writeToken, body, 2, 50*time.Millisecond, 1)
	if elapsed := at.Sub(start); resp.StatusCode != http.StatusRequestTimeout || !refusedWith(got, "BODY_TIMEOUT") || elapsed > 1500*time.Millisecond {
		t.Errorf("half a body, then nothing, with a 500 ms body bound = %d %s after %v; want 408 BODY_TIMEOUT at the bound", resp.StatusCode, got, elapsed)
	}
	if n, _ := srv.Do(t, "EXISTS", "school-erp:stalled"); n != "0" {
		t.Error("a refused body was stored")
	}
}

// TestOutOfTimeIsNeverNull: with a deadline shorter than parsing and
// validating take, some requests run out of time before any field runs.
// gqlgen answers those with its end-of-stream nil, which used to reach the
// client as HTTP 200 null; each must be a coded error, or a real answer.
func TestOutOfTimeIsNeverNull(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := productionEnv(srv.Addr)
	env["GRAPHQL_REQUEST_TIMEOUT"] = "1ms"
	svc := startService(t, env)
	const requests = 20
	outOfTime := 0
	for i := range requests {
		// A distinct document each time (a cached one is not parsed
		// again), with a long comment: lexing it outlasts the deadline.
		body, _ := json.Marshal(map[string]any{"query": fmt.Sprintf("# %d %s\n{ cacheExists(key: \"k\") }", i, strings.Repeat("x", 256<<10))})
		code, h, got := send(t, http.MethodPost, svc.url+"/graphql", readToken, string(body))
		switch {
		case code == http.StatusServiceUnavailable && refusedWith(got, "DEADLINE_EXCEEDED") && h.Get("Retry-After") != "":
			outOfTime++
		case code == http.StatusOK && strings.HasPrefix(got, `{"data":`):
		default:
			t.Fatalf("request with a 1 ms deadline = %d %q; want 503 DEADLINE_EXCEEDED or an answer, never null", code, got)
		}
	}
	t.Logf("%d of %d ran out of time before a field ran", outOfTime, requests)
	if outOfTime == 0 {
		t.Skip("no request ran out of time before a field ran, so the case was not reached here (TestOutOfTimeRewritesOnlyNull covers it)")
	}
}

// TestOutOfTimeRewritesOnlyNull: the deadline guard changes the one answer
// gqlgen gives when the deadline ended an operation before any field ran,
// and nothing else.
func TestOutOfTimeRewritesOnlyNull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		wait       bool // write after the deadline
		status     int  // written first when not 0
		body       string
		wantStatus int
		wantCode   string // empty: the body as written
	}{
		{"null after the deadline", true, 0, "null", http.StatusServiceUnavailable, "DEADLINE_EXCEEDED"},
		{"an answer after the deadline", true, 0, `{"data":{"cacheGet":null},"extensions":{"warnings":[{"code":"NO_REPLY"}]}}`, http.StatusOK, ""},
		{"an error status after the deadline", true, http.StatusUnprocessableEntity, "null", http.StatusUnprocessableEntity, ""},
		{"null within the deadline", false, 0, "null", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := gateOptions{auth: auth.OpenAccess(), maxInFlight: 1, bodyLimit: 1 << 10, bodyTimeout: time.Second, requestTimeout: 20 * time.Millisecond}
			h := newGate(opts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.wait {
					<-r.Context().Done()
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = io.WriteString(w, tt.body)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantCode == "" && rec.Body.String() != tt.body || tt.wantCode != "" && !refusedWith(rec.Body.String(), tt.wantCode) {
				t.Errorf("body = %s; want %s", rec.Body, cmp.Or(tt.wantCode, tt.body))
			}
		})
	}
}

// TestSlowClientsDoNotStarveTheServer: 500 connections that send half a
// request header and then nothing. /health still answers within a second,
// and the server closes every one of them within its header timeout.
func TestSlowClientsDoNotStarveTheServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port})
	n := slowClientConnections(t, 500)

	type slow struct {
		conn   net.Conn
		opened time.Time
	}
	conns := make([]slow, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.conn.Close()
		}
	})
	addr := strings.TrimPrefix(p.url, "http://")
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		opened := time.Now()
		if _, err := fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: appl"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, slow{conn, opened})
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for range 3 {
		start := time.Now()
		resp, err := client.Get(p.url + "/health")
		if err != nil {
			t.Fatalf("GET /health with %d half-sent headers open: %v", n, err)
		}
		resp.Body.Close()
		if elapsed := time.Since(start); resp.StatusCode != http.StatusOK || elapsed > time.Second {
			t.Errorf("GET /health with %d half-sent headers open = %d after %v; want 200 within 1s", n, resp.StatusCode, elapsed)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Each connection must be closed by the server (a read returns EOF or
	// a reset) within the header timeout of its opening; the slack is for
	// a loaded machine.
	const slack = 3 * time.Second
	closedAfter := make(chan time.Duration, n)
	for _, c := range conns {
		go func() {
			_ = c.conn.SetReadDeadline(c.opened.Add(readHeaderTimeout + slack))
			_, err := io.Copy(io.Discard, c.conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				closedAfter <- -1 // still open at our deadline
				return
			}
			closedAfter <- time.Since(c.opened)
		}()
	}
	var latest time.Duration
	open := 0
	for range n {
		d := <-closedAfter
		if d < 0 {
			open++
			continue
		}
		latest = max(latest, d)
	}
	t.Logf("%d half-header connections; the last one closed %v after it opened (header timeout %v)", n, latest.Round(time.Millisecond), readHeaderTimeout)
	if open > 0 {
		t.Errorf("%d of %d half-header connections were still open %v after they opened; want every one closed within the header timeout (%v)", open, n, readHeaderTimeout+slack, readHeaderTimeout)
	}
}

// slowClientConnections is how many connections of its own the slow-client
// test may open: want, unless the process's file-descriptor limit (which
// Go raises to the hard limit at start) leaves less room beside the
// descriptors already open and some for the tests running in parallel.
func slowClientConnections(t *testing.T, want int) int {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	const headroom = 256
	room := int(lim.Cur) - len(entries) - headroom
	if room >= want {
		return want
	}
	if room < 50 {
		t.Skipf("RLIMIT_NOFILE is %d with %d descriptors open: no room for %d connections (ulimit -n)", lim.Cur, len(entries), want)
	}
	t.Logf("RLIMIT_NOFILE is %d with %d descriptors open: %d connections instead of %d (ulimit -n)", lim.Cur, len(entries), room, want)
	return room
}
