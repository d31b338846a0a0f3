package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/faultproxy"
	"github.com/school-erp/cache-service/internal/redistest"
)

// fullResponse is a GraphQL response with everything a partial result is
// made of: data as sent (null is not the same as absent fields), and the
// path of every error and warning.
type fullResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		Warnings []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Path    []any  `json:"path"`
		} `json:"warnings"`
	} `json:"extensions"`
	status int
}

// errorsAt lists the errors as "path code", sorted: fields of a query
// resolve concurrently, so their errors come in any order.
func (r fullResponse) errorsAt() []string {
	out := []string{}
	for _, e := range r.Errors {
		out = append(out, pathCode(e.Path, e.Extensions["code"]))
	}
	slices.Sort(out)
	return out
}

// warningsAt lists the warnings as "path code", sorted.
func (r fullResponse) warningsAt() []string {
	out := []string{}
	for _, w := range r.Extensions.Warnings {
		out = append(out, pathCode(w.Path, w.Code))
	}
	slices.Sort(out)
	return out
}

func pathCode(path []any, code any) string {
	p, _ := json.Marshal(path)
	return fmt.Sprintf("%s %v", p, code)
}

// post sends one GraphQL POST (with the service's bearer token, if any) and
// decodes the whole response, whatever the HTTP status.
func (s *service) post(t *testing.T, body map[string]any) fullResponse {
	t.Helper()
	b, _ := json.Marshal(body)
	code, _, raw := send(t, http.MethodPost, s.url+"/graphql", s.bearer, string(b))
	var r fullResponse
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("decode HTTP %d %s: %v", code, raw, err)
	}
	r.status = code
	return r
}

func (s *service) query(t *testing.T, query string, vars map[string]any) fullResponse {
	t.Helper()
	return s.post(t, map[string]any{"query": query, "variables": vars})
}

func keyList(n int, key func(i int) string) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = key(i)
	}
	return keys
}

// TestOneFieldsFailureStaysLocal: an error on one field (bad input, a key
// Redis refuses to read) nulls that field, or that element of a list, and
// never the fields beside it; the error's path says where.
func TestOneFieldsFailureStaysLocal(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "SET", "school-erp:x", `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	// A key another program wrote as a hash: GET on it is refused (WRONGTYPE).
	if _, err := srv.Do(t, "HSET", "school-erp:h", "f", "v"); err != nil {
		t.Fatal(err)
	}
	hundred := keyList(100, func(i int) string {
		if i == 42 {
			return "h"
		}
		return "x"
	})
	hundredWant := strings.Repeat(`{"n":1},`, 42) + "null" + strings.Repeat(`,{"n":1}`, 57)

	tests := []struct {
		name       string
		query      string
		vars       map[string]any
		wantData   string
		wantErrors []string
		// stored: keys that must (true) or must not (false) be in Redis after.
		stored map[string]bool
	}{
		{
			name:       "bad ttl on the second of two writes",
			query:      `mutation { a: cacheSet(key: "k1", value: 1) { stored } b: cacheSet(key: "k2", value: 2, ttlSeconds: 0) { stored } }`,
			wantData:   `{"a":{"stored":true},"b":null}`,
			wantErrors: []string{`["b"] BAD_USER_INPUT`},
			stored:     map[string]bool{"k1": true, "k2": false},
		},
		{
			name:       "bad key on the first of two writes",
			query:      `mutation { a: cacheSet(key: "", value: 1) { stored } b: cacheSet(key: "k3", value: 3) { stored backend } }`,
			wantData:   `{"a":null,"b":{"stored":true,"backend":"REDIS"}}`,
			wantErrors: []string{`["a"] BAD_USER_INPUT`},
			stored:     map[string]bool{"k3": true},
		},
		{
			name:       "value over the limit beside a good write",
			query:      `mutation($big: JSON!) { a: cacheSet(key: "k4", value: $big) { stored } b: cacheSet(key: "k5", value: 5) { stored } }`,
			vars:       map[string]any{"big": strings.Repeat("v", 1<<20)},
			wantData:   `{"a":null,"b":{"stored":true}}`,
			wantErrors: []string{`["a"] BAD_USER_INPUT`},
			stored:     map[string]bool{"k4": false, "k5": true},
		},
		{
			name:       "bad key on one of two deletes",
			query:      `mutation { a: cacheDelete(key: "k1") { deleted } b: cacheDelete(key: "with space") { deleted } }`,
			wantData:   `{"a":{"deleted":true},"b":null}`,
			wantErrors: []string{`["b"] BAD_USER_INPUT`},
			stored:     map[string]bool{"k1": false},
		},
		{
			name:       "bad key on cacheExists beside a read",
			query:      `{ v: cacheGet(key: "x") e: cacheExists(key: "") }`,
			wantData:   `{"v":{"n":1},"e":null}`,
			wantErrors: []string{`["e"] BAD_USER_INPUT`},
		},
		{
			name:       "bad key on cacheGet beside other fields",
			query:      `{ v: cacheGet(key: "") e: cacheExists(key: "x") h: redisHealth { status } }`,
			wantData:   `{"v":null,"e":true,"h":{"status":"CONNECTED"}}`,
			wantErrors: []string{`["v"] BAD_USER_INPUT`},
		},
		{
			name:       "cacheGet of a hash is rejected, not a miss",
			query:      `{ cacheGet(key: "h") }`,
			wantData:   `{"cacheGet":null}`,
			wantErrors: []string{`["cacheGet"] REDIS_REJECTED`},
		},
		{
			name:       "cacheGet of a hash beside other reads",
			query:      `{ a: cacheGet(key: "h") b: cacheGet(key: "x") c: cacheExists(key: "x") }`,
			wantData:   `{"a":null,"b":{"n":1},"c":true}`,
			wantErrors: []string{`["a"] REDIS_REJECTED`},
		},
		{
			name:     "cacheExists of a hash is fine (EXISTS reads any type)",
			query:    `{ cacheExists(key: "h") }`,
			wantData: `{"cacheExists":true}`,
		},
		{
			name:       "a hash among the keys of cacheGetMany",
			query:      `query($k: [String!]!) { cacheGetMany(keys: $k) }`,
			vars:       map[string]any{"k": []string{"x", "nope", "x", "h", "x"}},
			wantData:   `{"cacheGetMany":[{"n":1},null,{"n":1},null,{"n":1}]}`,
			wantErrors: []string{`["cacheGetMany",3] REDIS_REJECTED`},
		},
		{
			name:       "a hash among the keys of an aliased cacheGetMany",
			query:      `query($k: [String!]!) { many: cacheGetMany(keys: $k) one: cacheGet(key: "x") }`,
			vars:       map[string]any{"k": []string{"h", "x"}},
			wantData:   `{"many":[null,{"n":1}],"one":{"n":1}}`,
			wantErrors: []string{`["many",0] REDIS_REJECTED`},
		},
		{
			name:       "a hash among 100 keys",
			query:      `query($k: [String!]!) { cacheGetMany(keys: $k) }`,
			vars:       map[string]any{"k": hundred},
			wantData:   `{"cacheGetMany":[` + hundredWant + `]}`,
			wantErrors: []string{`["cacheGetMany",42] REDIS_REJECTED`},
		},
		{
			name:       "a bad key among the keys of cacheGetMany",
			query:      `query($k: [String!]!) { cacheGetMany(keys: $k) }`,
			vars:       map[string]any{"k": []string{"x", "", "h"}},
			wantData:   `{"cacheGetMany":[{"n":1},null,null]}`,
			wantErrors: []string{`["cacheGetMany",1] BAD_USER_INPUT`, `["cacheGetMany",2] REDIS_REJECTED`},
		},
		{
			name:       "too many keys refuses that field only",
			query:      `query($k: [String!]!) { m: cacheGetMany(keys: $k) e: cacheExists(key: "x") }`,
			vars:       map[string]any{"k": keyList(101, func(int) string { return "x" })},
			wantData:   `{"m":null,"e":true}`,
			wantErrors: []string{`["m"] BAD_USER_INPUT`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := svc.query(t, tt.query, tt.vars)
			if string(r.Data) != tt.wantData {
				t.Errorf("data = %s; want %s", r.Data, tt.wantData)
			}
			if got, want := r.errorsAt(), append([]string{}, tt.wantErrors...); !slices.Equal(got, want) {
				t.Errorf("errors = %q; want %q (%+v)", got, want, r.Errors)
			}
			if len(r.Extensions.Warnings) > 0 {
				t.Errorf("warnings = %q; want none with Redis up", r.warningsAt())
			}
			for key, want := range tt.stored {
				n, err := srv.Do(t, "EXISTS", "school-erp:"+key)
				if err != nil {
					t.Fatal(err)
				}
				if got := n == "1"; got != want {
					t.Errorf("key %q in Redis = %v; want %v", key, got, want)
				}
			}
		})
	}
	if strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
		t.Errorf("client errors were logged as internal errors:\n%s", svc.logs)
	}
}

// TestRejectedReadIsNeverAMiss: the response for a key Redis refuses to
// read says so, with its own code and message, and differs from a miss and
// from an outage.
func TestRejectedReadIsNeverAMiss(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if _, err := srv.Do(t, "RPUSH", "school-erp:list", "a"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`{ cacheGet(key: "list") }`, `{ cacheGetMany(keys: ["list"]) }`} {
		r := svc.query(t, q, nil)
		if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "REDIS_REJECTED" || r.Errors[0].Message != "Redis rejected the command" {
			t.Errorf("%s = %s %+v; want one REDIS_REJECTED error", q, r.Data, r.Errors)
		}
		if len(r.Extensions.Warnings) != 0 {
			t.Errorf("%s warnings = %q; a rejected read is not an outage", q, r.warningsAt())
		}
	}
}

// TestCacheGetManyWarningsAtTheirIndex: keys Redis could not answer are
// nulls with a warning whose path names the index, so a client can tell
// which values are misses and which are stand-ins.
func TestCacheGetManyWarningsAtTheirIndex(t *testing.T) {
	t.Run("outage", func(t *testing.T) {
		srv := redistest.New(t, redistest.Options{}) // never started
		svc := startService(t, testEnv(srv.Addr))
		r := svc.query(t, `query($k: [String!]!) { m: cacheGetMany(keys: $k) e: cacheExists(key: "x") }`, map[string]any{"k": []string{"a", "", "b"}})
		if want := `{"m":[null,null,null],"e":false}`; string(r.Data) != want {
			t.Errorf("data = %s; want %s", r.Data, want)
		}
		if got, want := r.warningsAt(), []string{`["e"] REDIS_UNAVAILABLE`, `["m",0] REDIS_UNAVAILABLE`, `["m",2] REDIS_UNAVAILABLE`}; !slices.Equal(got, want) {
			t.Errorf("warnings = %q; want %q", got, want)
		}
		if got, want := r.errorsAt(), []string{`["m",1] BAD_USER_INPUT`}; !slices.Equal(got, want) {
			t.Errorf("errors = %q; want %q", got, want)
		}
	})
	t.Run("served from memory", func(t *testing.T) {
		srv := redistest.New(t, redistest.Options{})
		env := testEnv(srv.Addr)
		env["CACHE_FALLBACK"] = "memory"
		svc := startService(t, env)
		if r := svc.query(t, `mutation { cacheSet(key: "a", value: "mem") { stored backend } }`, nil); string(r.Data) != `{"cacheSet":{"stored":true,"backend":"MEMORY"}}` {
			t.Fatalf("cacheSet with Redis absent = %s %+v", r.Data, r.Errors)
		}
		r := svc.query(t, `{ cacheGetMany(keys: ["a", "b"]) }`, nil)
		if want := `{"cacheGetMany":["mem",null]}`; string(r.Data) != want {
			t.Errorf("data = %s; want %s", r.Data, want)
		}
		if got, want := r.warningsAt(), []string{`["cacheGetMany",0] SERVED_FROM_MEMORY`, `["cacheGetMany",1] SERVED_FROM_MEMORY`}; !slices.Equal(got, want) {
			t.Errorf("warnings = %q; want %q", got, want)
		} // The outage line says the fallback answers, not that the
		// service serves "without cache".
		deadline := time.Now().Add(2 * time.Second)
		for svc.logs.count(t, "redis unreachable; the in-memory fallback answers until it returns") == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := svc.logs.count(t, "redis unreachable; the in-memory fallback answers until it returns"); n != 1 {
			t.Errorf("%d outage lines naming the fallback; want 1: %v", n, svc.logs.lines(t))
		}
		if n := svc.logs.count(t, "redis unreachable; requests report REDIS_UNAVAILABLE until it returns"); n != 0 {
			t.Errorf("%d outage lines saying requests fail, with the fallback on", n)
		}
	})
	t.Run("no reply", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		proxy := faultproxy.Start(t, srv.Addr)
		svc := startService(t, faultEnv(proxy.Addr))
		svc.waitRedisStatus(t, "connected", 5*time.Second)
		proxy.SetLatency(250 * time.Millisecond) // a round trip beyond the 300ms command timeout
		r := svc.query(t, `{ cacheGetMany(keys: ["slow1", "slow2"]) }`, nil)
		if want := `{"cacheGetMany":[null,null]}`; string(r.Data) != want {
			t.Errorf("data = %s; want %s", r.Data, want)
		}
		if got, want := r.warningsAt(), []string{`["cacheGetMany",0] NO_REPLY`, `["cacheGetMany",1] NO_REPLY`}; !slices.Equal(got, want) {
			t.Errorf("warnings = %q; want %q", got, want)
		}
	})
}

// TestRequestErrorsByCode: errors that gqlgen or this service raise before
// any field runs keep their codes, whatever their messages say.
func TestRequestErrorsByCode(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prod := startService(t, productionEnv(srv.Addr))
	prod.bearer = readToken
	dev := startService(t, testEnv(srv.Addr))
	dev.waitRedisStatus(t, "connected", 5*time.Second)

	const apqQuery = `{ cacheExists(key: "apq") }`
	sum := sha256.Sum256([]byte(apqQuery))
	many := `{ cacheExists(key: "k")` + strings.Repeat(" __typename", 5000) + ` }`
	tests := []struct {
		name       string
		svc        *service
		body       map[string]any
		wantCode   string // "" for none
		wantStatus int
	}{
		{"introspection off", prod, map[string]any{"query": `{ __schema { queryType { name } } }`}, "INTROSPECTION_DISABLED", http.StatusOK},
		{"introspection off, through a fragment", prod, map[string]any{"query": `{ ...F } fragment F on Query { __type(name: "Query") { name } }`}, "INTROSPECTION_DISABLED", http.StatusOK},
		{"introspection off, inline fragment", prod, map[string]any{"query": `{ ... on Query { __schema { types { name } } } }`}, "INTROSPECTION_DISABLED", http.StatusOK},
		{"__typename is not introspection", prod, map[string]any{"query": `{ __typename }`}, "", http.StatusOK},
		{"introspection on in development", dev, map[string]any{"query": `{ __schema { queryType { name } } }`}, "", http.StatusOK},
		// Refused before execution: 200 under application/json, as
		// GraphQL over HTTP has it.
		{"token limit, default limits", dev, map[string]any{"query": many}, "TOKEN_LIMIT_EXCEEDED", http.StatusOK},
		{"token limit, APQ registration", dev, map[string]any{"query": many, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(many)}}}, "TOKEN_LIMIT_EXCEEDED", http.StatusOK},
		{"token limit, APQ hash alone", dev, map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(many)}}}, "TOKEN_LIMIT_EXCEEDED", http.StatusOK},
		// The message quotes the client's value; the code is the validator's.
		{"a message that mentions a token limit", dev, map[string]any{"query": `mutation { cacheSet(key: "k", value: 1, ttlSeconds: "exceeded token limit") { stored } }`}, "GRAPHQL_VALIDATION_FAILED", http.StatusOK},
		{"APQ hash that does not match", dev, map[string]any{"query": apqQuery, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}}, "PERSISTED_QUERY_HASH_MISMATCH", http.StatusOK},
		{"APQ version unknown", dev, map[string]any{"query": apqQuery, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": hex.EncodeToString(sum[:])}}}, "PERSISTED_QUERY_VERSION_UNSUPPORTED", http.StatusOK},
		{"APQ hash unknown", dev, map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}}, "PERSISTED_QUERY_NOT_FOUND", http.StatusOK},
		{"query is not a string", dev, map[string]any{"query": 5}, "BAD_REQUEST", http.StatusBadRequest},
		{"variables are not an object", dev, map[string]any{"query": apqQuery, "variables": []int{1}}, "BAD_REQUEST", http.StatusBadRequest},
		{"no query", dev, map[string]any{"qeury": apqQuery}, "BAD_REQUEST", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.svc.post(t, tt.body)
			code := ""
			if len(r.Errors) > 0 {
				code, _ = r.Errors[0].Extensions["code"].(string)
			}
			if code != tt.wantCode || r.status != tt.wantStatus {
				t.Errorf("HTTP %d, code %q (%+v); want HTTP %d, code %q", r.status, code, r.Errors, tt.wantStatus, tt.wantCode)
			}
		})
	}
	for name, svc := range map[string]*service{"production": prod, "development": dev} {
		if strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
			t.Errorf("%s: a client's mistake was logged as an internal error:\n%s", name, svc.logs)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestBadRequestBodiesAreNotEchoed: a body that is not a GraphQL request
// gets 400 BAD_REQUEST whatever is wrong with it, and is not echoed.
func TestBadRequestBodiesAreNotEchoed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	for _, body := range []string{`{"query": "{ x }", "variables": "hunter2-secret"}`, `["hunter2-secret"]`, `{"query": ["hunter2-secret"]}`, `hunter2-secret`} {
		code, _, raw := send(t, http.MethodPost, svc.url+"/graphql", "", body)
		var r fullResponse
		_ = json.Unmarshal([]byte(raw), &r)
		if code != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_REQUEST" {
			t.Errorf("POST %s = %d %s; want 400 BAD_REQUEST", body, code, raw)
		}
		if bytes.Contains([]byte(raw), []byte("hunter2")) {
			t.Errorf("POST %s: the response echoes the body: %s", body, raw)
		}
	}
}

// TestPostInOtherMediaTypes: a POST that is not JSON (curl -d without -H,
// a form, text) is refused with 415 and a code that says which media type
// to send, and nothing in it runs.
func TestPostInOtherMediaTypes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	body := `{"query":"mutation { cacheSet(key: \"media\", value: 1) { stored } }"}`
	tests := []struct {
		name, contentType, wantInMessage string
	}{
		{"none", "", "the request has no Content-Type"},
		{"form, as curl -d sends", "application/x-www-form-urlencoded", `"application/x-www-form-urlencoded" is not supported`},
		{"text", "text/plain;charset=utf-8", `"text/plain;charset=utf-8" is not supported`},
		{"graphql", "application/graphql", `"application/graphql" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/graphql", strings.NewReader(body))
			req.Header["Content-Type"] = nil
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var r fullResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("HTTP %d %s: %v", resp.StatusCode, raw, err)
			}
			if got := r.errorsAt(); resp.StatusCode != http.StatusUnsupportedMediaType || len(got) != 1 || got[0] != "null UNSUPPORTED_MEDIA_TYPE" {
				t.Fatalf("HTTP %d, errors %q (%s); want 415 UNSUPPORTED_MEDIA_TYPE", resp.StatusCode, got, raw)
			}
			if msg := r.Errors[0].Message; !strings.Contains(msg, tt.wantInMessage) || !strings.Contains(msg, "Content-Type: application/json") {
				t.Errorf("message %q; want it to name %s and the media type to send", msg, tt.wantInMessage)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			if r.Data != nil {
				t.Errorf("data = %s; want no data entry", r.Data)
			}
			if got, _ := srv.Do(t, "EXISTS", "school-erp:media"); got != "0" {
				t.Errorf("EXISTS media = %s; want nothing stored", got)
			}
		})
	}
}
