package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/internal/redistest"
)

const (
	readToken  = "0123456789-read-token"
	writeToken = "0123456789-write-token"
)

// send makes one request with an optional bearer token and JSON body, and
// returns the response status, headers and body.
func send(t *testing.T, method, url, bearer, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// request sends one GraphQL POST with an optional bearer token.
func request(t *testing.T, svc *service, bearer, query string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	code, _, raw := send(t, http.MethodPost, svc.url+"/graphql", bearer, string(body))
	var r gqlResponse
	_ = json.Unmarshal([]byte(raw), &r)
	return code, r
}

func productionEnv(redisAddr string) map[string]string {
	env := testEnv(redisAddr)
	env["APP_ENV"] = "production"
	env["REDIS_TLS"] = "false"
	env["REDIS_TLS_ALLOW_PLAINTEXT"] = "true"
	env["API_TOKENS"] = "reports:read:" + readToken + ",erp:write:" + writeToken
	return env
}

func TestWhoMayDoWhat(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	tests := []struct {
		name     string
		bearer   string
		query    string
		wantCode string // empty: allowed
	}{
		{"no token, query", "", getQuery, "UNAUTHENTICATED"},
		{"unknown token, query", "not-a-known-token-value", getQuery, "UNAUTHENTICATED"},
		{"read token, query", readToken, getQuery, ""},
		{"read token, health", readToken, `{ redisHealth { status } }`, ""},
		{"read token, many", readToken, `{ cacheGetMany(keys: ["k"]) }`, ""},
		{"read token, mutation", readToken, setQuery, "FORBIDDEN"},
		{"read token, delete", readToken, deleteQuery, "FORBIDDEN"},
		{"no token, mutation", "", setQuery, "UNAUTHENTICATED"},
		{"read token, entry", readToken, `query($k: String!) { cacheEntry(key: $k) { etag } }`, ""},
		// On a key holding a counter: on "auth" (a string) an increment
		// that ran anyway would be refused by Redis and change nothing.
		{"read token, increment", readToken, `mutation { cacheIncrement(key: "count") { value } }`, "FORBIDDEN"},
		// With a TTL: without one, an expire that ran anyway would make
		// "auth" permanent, as it already is.
		{"read token, expire", readToken, `mutation($k: String!) { cacheExpire(key: $k, ttlSeconds: 600) { existed } }`, "FORBIDDEN"},
		{"read token, set many", readToken, `mutation($k: String!, $v: JSON!) { cacheSetMany(entries: [{key: $k, value: $v}]) { stored } }`, "FORBIDDEN"},
		{"read token, delete many", readToken, `mutation($k: String!) { cacheDeleteMany(keys: [$k]) { deleted } }`, "FORBIDDEN"},
		{"read token, invalidate", readToken, `mutation { cacheInvalidateTags(tags: ["auth"]) { deleted } }`, "FORBIDDEN"},
		{"no token, entry", "", `query($k: String!) { cacheEntry(key: $k) { etag } }`, "UNAUTHENTICATED"},
		{"write token, mutation", writeToken, setQuery, ""},
		{"write token, query", writeToken, getQuery, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What every refused mutation could touch exists before every
			// row, so one that ran anyway would change it: a set, delete or
			// expire of "auth" (no TTL), an increment of "count", an
			// invalidation of the tag "auth" ("tagged").
			if _, err := srv.Do(t, "SET", "school-erp:auth", `"seed"`); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Do(t, "SET", "school-erp:count", "41"); err != nil {
				t.Fatal(err)
			}
			if _, r := request(t, svc, writeToken, `mutation { cacheSet(key: "tagged", value: 1, tags: ["auth"]) { stored } }`, nil); r.code() != "" || !strings.Contains(string(r.Data["cacheSet"]), `"stored":true`) {
				t.Fatalf("seeding the tagged key = %s %+v", r.Data["cacheSet"], r.Errors)
			}
			_, r := request(t, svc, tt.bearer, tt.query, map[string]any{"k": "auth", "v": 1})
			if r.code() != tt.wantCode {
				t.Errorf("code = %q (%+v); want %q", r.code(), r.Errors, tt.wantCode)
			}
			if tt.wantCode != "" && strings.HasPrefix(tt.query, "mutation") {
				if v, err := srv.Do(t, "GET", "school-erp:auth"); v != `"seed"` {
					t.Errorf("a refused mutation changed the key: GET = %q, %v; want the seed", v, err)
				}
				if ttl, err := srv.Do(t, "PTTL", "school-erp:auth"); ttl != "-1" {
					t.Errorf("a refused mutation changed the key's TTL: PTTL = %s, %v; want -1 (none)", ttl, err)
				}
				if v, err := srv.Do(t, "GET", "school-erp:count"); v != "41" {
					t.Errorf("a refused mutation changed the counter: GET = %q, %v; want 41", v, err)
				}
				if v, err := srv.Do(t, "GET", "school-erp:tagged"); v != "1" {
					t.Errorf("a refused mutation invalidated the tagged key: GET = %q, %v; want 1", v, err)
				}
			}
		})
	}
	if strings.Contains(svc.logs.String(), readToken) || strings.Contains(svc.logs.String(), writeToken) {
		t.Error("the log holds a token value")
	}
}

func TestOpenInDevelopmentWithAWarning(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, r := request(t, svc, "", setQuery, map[string]any{"k": "open", "v": 1}); r.code() != "" {
		t.Errorf("mutation without a token in development = %+v; want allowed", r.Errors)
	}
	if n := svc.logs.count(t, "no API tokens configured: anyone who can reach the port may read and write the cache (allowed in development only; set API_TOKENS)"); n != 1 {
		t.Errorf("%d start-up warnings about open access; want 1", n)
	}
}

func TestHealthDetailsNeedATokenInProduction(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second) // waitRedisStatus reads only the status
	get := func(path, bearer string) map[string]any {
		var body struct {
			Data map[string]any `json:"data"`
		}
		_, _, raw := send(t, http.MethodGet, svc.url+path, bearer, "")
		_ = json.Unmarshal([]byte(raw), &body)
		return body.Data
	}
	if d := get("/health/redis", ""); len(d) != 1 || d["status"] != "connected" {
		t.Errorf("anonymous /health/redis = %v; want the status only", d)
	}
	if d := get("/health", ""); fmt.Sprint(d["redis"]) != "map[status:connected]" {
		t.Errorf("anonymous /health = %v; want redis status only", d)
	}
	if d := get("/health/redis", readToken); d["latencyMs"] == nil || d["serverVersion"] == nil {
		t.Errorf("/health/redis with a token = %v; want the details", d)
	}
}

func TestAbuseLimits(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["GRAPHQL_MAX_DEPTH"] = "2"
	env["GRAPHQL_MAX_ALIASES"] = "3"
	env["GRAPHQL_MAX_OPERATIONS"] = "2"
	env["GRAPHQL_MAX_COMPLEXITY"] = "20"
	env["GRAPHQL_MAX_TOKENS"] = "200"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: cacheExists(key: \"k\")", i)
		}
		return b.String() + " }"
	}
	keys := func(n int) string {
		var ks []string
		for i := range n {
			ks = append(ks, fmt.Sprintf("%q", fmt.Sprint("k", i)))
		}
		return "{ cacheGetMany(keys: [" + strings.Join(ks, ",") + "]) }"
	}
	tests := []struct {
		name, query, wantCode string
	}{
		{"depth within", `{ redisHealth { status } }`, ""},
		{"too deep", `{ redisHealth { fallback { mode } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"too deep through a fragment", `query { redisHealth { ...F } } fragment F on RedisHealth { cluster { state } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"too deep through an inline fragment", `{ ... on Query { redisHealth { fallback { mode } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"depth within through an inline fragment", `{ ... on Query { redisHealth { status } } }`, ""},
		{"too many aliases through an inline fragment", `{ ... on Query { a0: cacheExists(key: "k") a1: cacheExists(key: "k") } a2: cacheExists(key: "k") ... on Query { a3: cacheExists(key: "k") } }`, "ALIAS_LIMIT_EXCEEDED"},
		{"aliases within", aliases(3), ""},
		{"too many aliases", aliases(4), "ALIAS_LIMIT_EXCEEDED"},
		{"operations within", `query A { cacheExists(key: "k") } query B { cacheExists(key: "k") }`, ""},
		{"too many operations", `query A { cacheExists(key: "k") } query B { cacheExists(key: "k") } query C { cacheExists(key: "k") }`, "OPERATION_LIMIT_EXCEEDED"},
		{"complexity within", keys(18), ""},
		{"too complex", keys(25), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"too many tokens", `{ cacheExists(key: "k")` + strings.Repeat(" __typename", 200) + ` }`, "TOKEN_LIMIT_EXCEEDED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"query": tt.query, "operationName": opName(tt.query)})
			resp, err := http.Post(svc.url+"/graphql", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var r gqlResponse
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if r.code() != tt.wantCode {
				t.Errorf("code = %q (%+v); want %q", r.code(), r.Errors, tt.wantCode)
			}
		})
	}
}

// opName picks the first named operation, as a client would.
func opName(q string) string {
	if rest, ok := strings.CutPrefix(q, "query "); ok {
		if name, _, ok := strings.Cut(rest, " "); ok && name != "{" {
			return name
		}
	}
	return ""
}

func TestOnlyJSONAndGETTransports(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	form := url.Values{"query": {`mutation { cacheSet(key: "csrf", value: 1) { stored } }`}}
	for name, ct := range map[string]string{"form": "application/x-www-form-urlencoded", "multipart": "multipart/form-data; boundary=x", "text": "text/plain"} {
		resp, err := http.Post(svc.url+"/graphql", ct, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s POST answered 200; want it refused", name)
		}
	}
	if v, _ := srv.Do(t, "EXISTS", "school-erp:csrf"); v != "0" {
		t.Error("a form POST stored a value")
	}
}

func TestFieldSuggestionsOffInProduction(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	for _, tt := range []struct {
		env     map[string]string
		bearer  string
		suggest bool
	}{{testEnv(srv.Addr), "", true}, {productionEnv(srv.Addr), readToken, false}} {
		svc := startService(t, tt.env)
		_, r := request(t, svc, tt.bearer, `{ cacheGt(key: "k") }`, nil)
		if len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, "Did you mean") != tt.suggest {
			t.Errorf("APP_ENV=%s: %+v; want suggestions %v", tt.env["APP_ENV"], r.Errors, tt.suggest)
		}
		if err := svc.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := productionEnv(srv.Addr)
	env["CORS_ALLOWED_ORIGINS"] = "https://erp.example.com"
	svc := startService(t, env)
	preflight := func(origin string) string {
		req, _ := http.NewRequest(http.MethodOptions, svc.url+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		// As browsers send it: lower case, sorted, no spaces.
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if got := preflight("https://erp.example.com"); got != "https://erp.example.com" {
		t.Errorf("preflight from the named origin: Access-Control-Allow-Origin = %q", got)
	}
	if got := preflight("https://evil.example.net"); got != "" {
		t.Errorf("preflight from another origin: Access-Control-Allow-Origin = %q; want none", got)
	}
	if err := svc.stop(); err != nil {
		t.Fatal(err)
	}
	delete(env, "CORS_ALLOWED_ORIGINS")
	svc = startService(t, env)
	req, _ := http.NewRequest(http.MethodOptions, svc.url+"/graphql", nil)
	req.Header.Set("Origin", "https://erp.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("production without CORS_ALLOWED_ORIGINS allowed %q", got)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	codesOf := func(svc *service) func(bearer string, n int) string {
		return func(bearer string, n int) string {
			var out []int
			for range n {
				code, _ := request(t, svc, bearer, `{ cacheExists(key: "k") }`, nil)
				out = append(out, code)
			}
			return fmt.Sprint(out)
		}
	}

	t.Run("a default for every token", func(t *testing.T) {
		t.Parallel()
		// No Redis at all: the limiter must work without it.
		env := productionEnv("127.0.0.1:1")
		env["RATE_LIMIT_RPS"] = "1"
		env["RATE_LIMIT_BURST"] = "3"
		svc := startService(t, env)
		codes := codesOf(svc)
		if got := codes(readToken, 4); got != "[200 200 200 429]" {
			t.Errorf("read token, 4 quick requests with burst 3: %s", got)
		}
		// Another token has its own bucket.
		if got := codes(writeToken, 1); got != "[200]" {
			t.Errorf("write token after the read token was limited: %s", got)
		}
		// Anonymous calls are refused before the limiter, and not counted.
		if got := codes("", 4); got != "[401 401 401 401]" {
			t.Errorf("anonymous, 4 quick requests with tokens configured: %s", got)
		}
		code, h, raw := send(t, http.MethodPost, svc.url+"/graphql", readToken, `{"query":"{ cacheExists(key: \"k\") }"}`)
		if code != http.StatusTooManyRequests || !refusedWith(raw, "RATE_LIMITED") || h.Get("Retry-After") != "1" {
			t.Errorf("limited response = %d %s (Retry-After %q); want 429 RATE_LIMITED with Retry-After 1", code, raw, h.Get("Retry-After"))
		}
	})

	t.Run("by token name", func(t *testing.T) {
		t.Parallel()
		env := productionEnv("127.0.0.1:1")
		env["RATE_LIMIT_TOKENS"] = "reports=0.5/2"
		svc := startService(t, env)
		codes := codesOf(svc)
		if got := codes(readToken, 3); got != "[200 200 429]" {
			t.Errorf("reports (0.5/2), 3 quick requests: %s", got)
		}
		if got := codes(writeToken, 20); strings.Contains(got, "429") {
			t.Errorf("erp, without a limit of its own and no RATE_LIMIT_RPS: %s; want no 429", got)
		}
		_, h, _ := send(t, http.MethodPost, svc.url+"/graphql", readToken, `{"query":"{ cacheExists(key: \"k\") }"}`)
		if h.Get("Retry-After") != "2" {
			t.Errorf("Retry-After at 0.5 a second = %q; want 2", h.Get("Retry-After"))
		}
	})

	t.Run("one token exempt from the default", func(t *testing.T) {
		t.Parallel()
		env := productionEnv("127.0.0.1:1")
		env["RATE_LIMIT_RPS"] = "1"
		env["RATE_LIMIT_BURST"] = "2"
		env["RATE_LIMIT_TOKENS"] = "erp=0"
		svc := startService(t, env)
		codes := codesOf(svc)
		if got := codes(writeToken, 20); strings.Contains(got, "429") {
			t.Errorf("erp=0: %s; want no 429", got)
		}
		if got := codes(readToken, 3); got != "[200 200 429]" {
			t.Errorf("reports under RATE_LIMIT_RPS=1, burst 2: %s", got)
		}
	})

	t.Run("anonymous in development, by address", func(t *testing.T) {
		t.Parallel()
		env := testEnv("127.0.0.1:1")
		env["RATE_LIMIT_ANONYMOUS"] = "1/3"
		svc := startService(t, env)
		if got := codesOf(svc)("", 4); got != "[200 200 200 429]" {
			t.Errorf("anonymous, RATE_LIMIT_ANONYMOUS=1/3, 4 quick requests: %s", got)
		}
	})
}

func TestKeyRules(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	tests := []struct {
		key  string
		want string // raw Redis key; empty: refused
	}{
		{"student:42/grades", "school-erp:student:42/grades"},
		{"élève:Zoë", "school-erp:élève:Zoë"},
		{"../../other-app:secret", "school-erp:../../other-app:secret"},
		{"school-erp:x", "school-erp:school-erp:x"},
		{"with space", ""},
		{"tab\tkey", ""},
		{"new\nline", ""},
		{"nul\x00byte", ""},
		{"zero\u200bwidth", ""},
		{"bell\x07", ""},
	}
	for _, tt := range tests {
		r := svc.graphql(t, setQuery, map[string]any{"k": tt.key, "v": 1})
		if tt.want == "" {
			if r.code() != "BAD_USER_INPUT" {
				t.Errorf("key %q: %+v; want BAD_USER_INPUT", tt.key, r)
			}
			continue
		}
		if r.code() != "" {
			t.Errorf("key %q refused: %+v", tt.key, r.Errors)
			continue
		}
		if v, err := srv.Do(t, "GET", tt.want); err != nil || v != "1" {
			t.Errorf("key %q: raw GET %q = %q, %v; want it under the prefix", tt.key, tt.want, v, err)
		}
	}
	if n, _ := srv.Do(t, "DBSIZE"); n != "4" {
		t.Errorf("DBSIZE = %s; want only the 4 accepted keys", n)
	}
}

// TestSecretsNeverShow sets recognizable secrets everywhere they can be set,
// drives the service through its paths (a wrong password, bad tokens, bad
// input, health, metrics), and searches every log line and response.
func TestSecretsNeverShow(t *testing.T) {
	t.Parallel()
	const (
		redisPassword = "SECRET-redis-pw-7f3a"
		tokenValue    = "SECRET-api-token-9c1d"
	)
	srv := redistest.Start(t, redistest.Options{Password: "the-real-password"})
	env := productionEnv(srv.Addr)
	env["REDIS_URL"] = "redis://cache-user:" + redisPassword + "@" + srv.Addr + "/0"
	for _, name := range config.ReplacedByURL { // refused beside the URL
		delete(env, name)
	}
	env["API_TOKENS"] = "ops:write:" + tokenValue
	svc := startService(t, env)
	svc.waitRedisStatus(t, "disconnected", 5*time.Second)
	time.Sleep(200 * time.Millisecond) // a few failed connection attempts

	var responses []string
	record := func(_ int, h http.Header, body string) { responses = append(responses, fmt.Sprint(h)+body) }
	for _, bearer := range []string{"", tokenValue, tokenValue + "x", redisPassword} {
		for _, q := range []string{getQuery, setQuery, `{ redisHealth { status reason lastError addr } }`, `{ nope }`} {
			body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"k": "s", "v": 1}})
			record(send(t, http.MethodPost, svc.url+"/graphql", bearer, string(body)))
		}
		for _, path := range []string{"/health", "/health/redis", "/metrics", "/readyz"} {
			record(send(t, http.MethodGet, svc.url+path, bearer, ""))
		}
	}
	record(send(t, http.MethodPost, svc.url+"/graphql", "", `{"query": "`+tokenValue+`"`))
	if err := svc.stop(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{redisPassword, tokenValue} {
		for _, line := range strings.Split(svc.logs.String(), "\n") {
			if strings.Contains(line, secret) {
				t.Errorf("log line holds a secret: %s", line)
			}
		}
		for _, r := range responses {
			if strings.Contains(r, secret) {
				t.Errorf("response holds a secret: %.300s", r)
			}
		}
	}
	if !strings.Contains(svc.logs.String(), "authentication failed") {
		t.Error("the log does not say the Redis password was refused")
	}
}

func TestOutOfRangeNumbersAreBadInputNotPanics(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	for _, q := range []string{
		`mutation { cacheSet(key: "n", value: 1e400) { stored } }`,
		`mutation { cacheSet(key: "n", value: 123456789012345678901234567890) { stored } }`,
		`mutation { cacheSet(key: "n", value: {deep: [1, {x: -1e999}]}) { stored } }`,
	} {
		for range 3 { // repeated: no 5xx, no log line each time (anonymous calls are refused before parsing)
			body, _ := json.Marshal(map[string]any{"query": q})
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+writeToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var r gqlResponse
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode >= 500 || r.code() != "BAD_USER_INPUT" {
				t.Errorf("%s = HTTP %d %+v; want BAD_USER_INPUT, no 5xx", q, resp.StatusCode, r.Errors)
			}
		}
	}
	if strings.Contains(svc.logs.String(), "panic") || strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
		t.Errorf("out-of-range literals reached the log:\n%.2000s", svc.logs.String())
	}
}

func TestIntrospectionDisabledHasItsOwnCode(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	_, r := request(t, svc, readToken, `{ __schema { queryType { name } } }`, nil)
	if r.code() != "INTROSPECTION_DISABLED" {
		t.Errorf("introspection in production = %+v; want INTROSPECTION_DISABLED", r.Errors)
	}
	if strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
		t.Errorf("a refused introspection query was logged as an error:\n%s", svc.logs.String())
	}
}

func TestMetricsNeedATokenOnTheAPIPortInProduction(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	for _, tt := range []struct {
		bearer string
		want   int
	}{{"", http.StatusUnauthorized}, {"not-a-token-at-all", http.StatusUnauthorized}, {readToken, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, svc.url+"/metrics", nil)
		if tt.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tt.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET /metrics with bearer %q = %d; want %d", tt.bearer, resp.StatusCode, tt.want)
		}
	}
}
