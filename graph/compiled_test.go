package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The differential test of the compiled read path: every request goes to a
// handler with plans and to one without, against the same Redis, and the
// answers must be the same bytes (status, content type, body). The handler
// with plans gets each request twice: the first teaches it the document,
// the second is answered by the plan when there is one.

type twoPaths struct {
	compiled, plain http.Handler
	reads           *compiledReads
	redis           *redistest.Server
}

func newTwoPaths(t testing.TB, opts HandlerOptions) *twoPaths {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c, err := cache.New(cache.Options{Addr: srv.Addr, MaxValueBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	seed := map[string]string{
		"school-erp:n":       `42`,
		"school-erp:obj":     `{"name":"Ada","grades":[95,87.5]}`,
		"school-erp:spaced":  `{ "a" : [ 1 , 2 ] }`,
		"school-erp:html":    `"<b>&amp;</b>"`,
		"school-erp:sep":     "\"line\u2028sep\u2029\"",
		"school-erp:text":    `not json at all`,
		"school-erp:unicode": `"ü€😀"`,
		"school-erp:null":    `null`,
		"school-erp:big":     `"` + strings.Repeat("x", 3000) + `"`,
		// Large enough to be remembered by the cache's scan memo and
		// written by reference: spaced, not JSON, not UTF-8.
		"school-erp:bigspaced": `{ "a" : "` + strings.Repeat("x", 2000) + `" }`,
		"school-erp:bigtext":   strings.Repeat("not json ", 200),
		"school-erp:bigbytes":  `"` + strings.Repeat("x", 2000) + "\xff\"",
		"school-erp:huge":      `"` + strings.Repeat("y", 5000) + `"`, // above MaxValueBytes
	}
	for k, v := range seed {
		if _, err := srv.Do(t, "SET", k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Do(t, "HSET", "school-erp:hash", "f", "v"); err != nil {
		t.Fatal(err)
	}
	if opts.Auth == nil {
		opts.Auth = auth.OpenAccess()
	}
	opts.MaxValueBytes = 4096
	r := &Resolver{Cache: c}
	compiled, reads := newHandler(r, opts)
	plainOpts := opts
	plainOpts.NoCompiledReads = true
	return &twoPaths{compiled: compiled, plain: NewHandler(r, plainOpts), reads: reads, redis: srv}
}

type answer struct {
	status      int
	contentType string
	nosniff     string
	body        string
}

func send(h http.Handler, body string, headers map[string]string) answer {
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"), rec.Body.String()}
}

// compare sends body through both paths and fails on any difference. It
// returns whether the plan answered.
func (tp *twoPaths) compare(t *testing.T, name, body string, headers map[string]string) bool {
	t.Helper()
	send(tp.compiled, body, headers) // learn
	before := tp.reads.served.Load()
	got := send(tp.compiled, body, headers)
	planned := tp.reads.served.Load() > before
	want := send(tp.plain, body, headers)
	if got != want {
		t.Errorf("%s: compiled path (plan used: %v) answered\n  %d %s %s\nwhile gqlgen answered\n  %d %s %s\nfor %s",
			name, planned, got.status, got.contentType, got.body, want.status, want.contentType, want.body, body)
	}
	return planned
}

func request(query string, vars any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

func TestCompiledReadsMatchGqlgen(t *testing.T) {
	tp := newTwoPaths(t, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	tests := []struct {
		name    string
		body    string
		planned bool // a plan must answer it
	}{
		{"one literal key", request(`{ cacheGet(key: "n") }`, nil), true},
		{"a miss", request(`{ cacheGet(key: "nope") }`, nil), true},
		{"variables", request(`query($k: String!) { cacheGet(key: $k) }`, map[string]any{"k": "obj"}), true},
		{"aliases and every field", request(`query Q($k: String!, $ks: [String!]!) { a: cacheGet(key: $k) b: cacheGetMany(keys: $ks) c: cacheExists(key: $k) d: __typename }`,
			map[string]any{"k": "obj", "ks": []string{"n", "nope", "unicode", "n"}}), true},
		{"whitespace, HTML and line separators in stored values", request(`{ a: cacheGet(key: "spaced") b: cacheGet(key: "html") c: cacheGet(key: "sep") d: cacheGetMany(keys: ["spaced", "html", "sep"]) }`, nil), true},
		{"a value that is not JSON", request(`{ cacheGet(key: "text") }`, nil), true},
		{"a stored null", request(`{ cacheGet(key: "null") cacheGetMany(keys: ["null"]) }`, nil), true},
		{"a list literal with variables", request(`query($a: String!) { cacheGetMany(keys: [$a, "n", """obj"""]) }`, map[string]any{"a": "unicode"}), true},
		{"an empty list", request(`{ cacheGetMany(keys: []) }`, nil), true},
		{"fragments", request(`query { ...F ... on Query { x: cacheGet(key: "n") } } fragment F on Query { cacheExists(key: "obj") y: cacheGet(key: "obj") }`, nil), true},
		{"a fragment spread twice", request(`query { ...F ...F } fragment F on Query { cacheGet(key: "n") }`, nil), true},
		{"a field selected twice", request(`{ cacheGet(key: "n") cacheGet(key: "n") }`, nil), true},
		{"skip and include", request(`query($s: Boolean!, $i: Boolean = false) { a: cacheGet(key: "n") @skip(if: $s) b: cacheGet(key: "obj") @include(if: $i) ... on Query @include(if: true) { c: cacheExists(key: "n") } }`, map[string]any{"s": true}), true},
		{"skip first, then the same key again", request(`query($s: Boolean!) { a: cacheGet(key: "n") @skip(if: $s) b: cacheGet(key: "obj") a: cacheGet(key: "n") }`, map[string]any{"s": true}), true},
		{"a default", request(`query($k: String = "obj") { cacheGet(key: $k) }`, nil), true},
		{"a list default", request(`query($ks: [String!]! = ["n", "obj"]) { cacheGetMany(keys: $ks) }`, nil), true},
		{"a nullable variable where a key is required", request(`query($k: String) { cacheGet(key: $k) }`, map[string]any{"k": "n"}), false},
		{"an operation name", `{"query":"query A { a: cacheGet(key: \"n\") } query B { b: cacheGet(key: \"obj\") }","operationName":"B"}`, true},
		{"unknown variables are ignored", request(`{ cacheGet(key: "n") }`, map[string]any{"zzz": 1}), true},
		{"a large value", request(`{ cacheGet(key: "big") }`, nil), true},
		{"large values, twice (the second read from the local cache)", request(`{ a: cacheGet(key: "big") b: cacheGet(key: "big") c: cacheGetMany(keys: ["big", "n", "big"]) }`, nil), true},
		{"large values spaced, not JSON, not UTF-8", request(`{ a: cacheGet(key: "bigspaced") b: cacheGet(key: "bigtext") c: cacheGet(key: "bigbytes") d: cacheGetMany(keys: ["bigspaced", "bigtext", "bigbytes", "big"]) e: cacheGet(key: "bigspaced") }`, nil), true},
		// gqlgen answers these: the plan gives up, or there is none.
		{"a missing required variable", request(`query($k: String!) { cacheGet(key: $k) }`, nil), false},
		{"a variable of the wrong type", request(`query($k: String!) { cacheGet(key: $k) }`, map[string]any{"k": 5}), false},
		{"a null key", request(`query($k: String) { cacheGet(key: $k) }`, map[string]any{"k": nil}), false},
		{"a single string for a list", request(`query($ks: [String!]!) { cacheGetMany(keys: $ks) }`, map[string]any{"ks": "n"}), false},
		{"a key Redis refuses", request(`{ a: cacheGet(key: "hash") b: cacheGet(key: "n") }`, nil), false},
		{"a key Redis refuses, in a list", request(`{ cacheGetMany(keys: ["n", "hash", "obj"]) }`, nil), false},
		{"a value over the limit", request(`{ cacheGet(key: "huge") }`, nil), false},
		{"a bad key", request(`{ cacheGet(key: "a b") cacheExists(key: "") }`, nil), false},
		{"too many keys", request(`query($ks: [String!]!) { cacheGetMany(keys: $ks) }`, map[string]any{"ks": strings.Split(strings.Repeat("k,", 100)+"k", ",")}), false},
		{"too complex", request(`query($ks: [String!]!) { cacheGetMany(keys: $ks) }`, map[string]any{"ks": strings.Split(strings.Repeat("k,", 99)+"k", ",")}), true},
		{"health", request(`{ redisHealth { status } cacheGet(key: "n") }`, nil), false},
		{"introspection", request(`{ __schema { queryType { name } } }`, nil), false},
		{"a mutation (writes have plans too: compiledwrites_test.go)", request(`mutation { cacheDelete(key: "zz") { deleted } }`, nil), true},
		{"a parse error", request(`{ cacheGet(key: "n") `, nil), false},
		{"a validation error", request(`{ cacheGet }`, nil), false},
		{"an extension", `{"query":"{ cacheGet(key: \"n\") }","extensions":{"x":1}}`, false},
		{"a duplicate variable", `{"query":"query($k: String!) { cacheGet(key: $k) }","variables":{"k":"n","k":"obj"}}`, false},
		{"escapes in the variables", `{"query":"query($k: String!) { cacheGet(key: $k) }","variables":{"k":"\u006f\u0062j"}}`, true},
	}
	for _, tt := range tests {
		planned := tp.compare(t, tt.name, tt.body, nil)
		if planned != tt.planned {
			t.Errorf("%s: answered by a plan = %v; want %v", tt.name, planned, tt.planned)
		}
	}
	// The complexity limit applies: the 100-key request above is within 250;
	// a lower limit refuses it through gqlgen.
	low := newTwoPaths(t, HandlerOptions{Limits: Limits{Complexity: 50}})
	keys := strings.Split(strings.Repeat("k,", 99)+"k", ",")
	if low.compare(t, "over the complexity limit", request(`query($ks: [String!]!) { cacheGetMany(keys: $ks) }`, map[string]any{"ks": keys}), nil) {
		t.Error("a request over the complexity limit was answered by a plan")
	}
}

// Automatic Persisted Queries: once a query is registered by its hash, a
// request carrying the hash alone is answered by its plan, the same bytes
// as gqlgen's; a hash the APQ store does not hold, a wrong version or
// extra members are gqlgen's to answer.
func TestCompiledReadsByPersistedHash(t *testing.T) {
	tp := newTwoPaths(t, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	persisted := func(query string, vars any, ext string) string {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars, "extensions": json.RawMessage(ext)})
		return string(b)
	}
	hashOnly := func(ext, operationName string, vars any) string {
		m := map[string]any{"variables": vars, "extensions": json.RawMessage(ext)}
		if operationName != "" {
			m["operationName"] = operationName
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	const query = `query($k: String!) { a: cacheGet(key: $k) b: cacheExists(key: $k) }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + hash + `"}}`
	const named = `query A { cacheGet(key: "n") } query B { cacheGet(key: "obj") }`
	namedSum := sha256.Sum256([]byte(named))
	namedExt := `{"persistedQuery":{"sha256Hash":"` + hex.EncodeToString(namedSum[:]) + `","version":1}}`
	// Registration: both paths store the queries (gqlgen answers these).
	for _, h := range []http.Handler{tp.compiled, tp.plain} {
		send(h, persisted(query, map[string]any{"k": "n"}, ext), nil)
		send(h, persisted(named, nil, namedExt), nil)
	}
	unknown := strings.Repeat("0", 64)
	tests := []struct {
		name    string
		body    string
		planned bool
	}{
		{"the hash alone", hashOnly(ext, "", map[string]any{"k": "obj"}), true},
		{"the hash alone, another key", hashOnly(ext, "", map[string]any{"k": "nope"}), true},
		{"members in another order, an operation name", hashOnly(namedExt, "B", nil), true},
		{"a hash the store does not hold", hashOnly(`{"persistedQuery":{"version":1,"sha256Hash":"`+unknown+`"}}`, "", nil), false},
		{"version 2", hashOnly(`{"persistedQuery":{"version":2,"sha256Hash":"`+hash+`"}}`, "", map[string]any{"k": "n"}), false},
		{"an uppercase hash", hashOnly(`{"persistedQuery":{"version":1,"sha256Hash":"`+strings.ToUpper(hash)+`"}}`, "", map[string]any{"k": "n"}), false},
		{"another extension beside it", hashOnly(`{"persistedQuery":{"version":1,"sha256Hash":"`+hash+`"},"x":1}`, "", map[string]any{"k": "n"}), false},
		{"the query and its hash", persisted(query, map[string]any{"k": "n"}, ext), false},
		{"the query and a wrong hash", persisted(`{ cacheGet(key: "n") }`, nil, ext), false},
	}
	for _, tt := range tests {
		if planned := tp.compare(t, tt.name, tt.body, nil); planned != tt.planned {
			t.Errorf("%s: answered by a plan = %v; want %v", tt.name, planned, tt.planned)
		}
	}
}

// Auth: the plan asks the same rule; a caller it refuses is answered by
// gqlgen with the refusal.
func TestCompiledReadsAuth(t *testing.T) {
	a := auth.New([]auth.Token{{Name: "reader", Scope: auth.ScopeRead, Value: "read-token-0123456789"}})
	tp := newTwoPaths(t, HandlerOptions{Auth: a})
	tp.compiled, tp.plain = a.Middleware(tp.compiled), a.Middleware(tp.plain)
	body := request(`{ cacheGet(key: "n") }`, nil)
	if !tp.compare(t, "a read token", body, map[string]string{"Authorization": "Bearer read-token-0123456789"}) {
		t.Error("a read token's query was not answered by a plan")
	}
	for name, headers := range map[string]map[string]string{"no token": nil, "a wrong token": {"Authorization": "Bearer nope-nope-nope-nope"}} {
		if tp.compare(t, name, body, headers) {
			t.Errorf("%s: answered by a plan; want gqlgen's refusal", name)
		}
	}
}

// FuzzCompiledReads generates documents and variables from the fuzzer's
// bytes and compares the two paths on each.
func FuzzCompiledReads(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1234, 99999} {
		f.Add(seed)
	}
	tp := newTwoPaths(f, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	f.Fuzz(func(t *testing.T, seed uint64) {
		body := generateReadRequest(rand.New(rand.NewPCG(seed, seed>>7|1)))
		tp.compare(t, fmt.Sprintf("seed %d", seed), body, nil)
	})
}

// TestCompiledReadsFuzzCorpus runs the generator over a fixed range of
// seeds in every test run.
func TestCompiledReadsFuzzCorpus(t *testing.T) {
	tp := newTwoPaths(t, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	planned := 0
	for seed := range uint64(300) {
		body := generateReadRequest(rand.New(rand.NewPCG(seed, seed>>7|1)))
		if tp.compare(t, fmt.Sprintf("seed %d", seed), body, nil) {
			planned++
		}
	}
	if planned < 100 {
		t.Errorf("plans answered %d of 300 generated requests; want most (the generator must exercise them)", planned)
	}
}

// generateReadRequest writes a random read request: fields with aliases,
// literal and variable arguments, fragments, @skip/@include, and variables
// that are sometimes missing, null or of the wrong type.
func generateReadRequest(r *rand.Rand) string {
	keys := []string{"n", "obj", "spaced", "html", "sep", "text", "unicode", "null", "nope", "big", "hash", "a b", "bigspaced", "bigtext", "bigbytes"}
	key := func() string {
		if r.IntN(40) == 0 {
			return keys[len(keys)-2+r.IntN(2)] // hash or a bad key, now and then
		}
		return keys[r.IntN(len(keys)-2)]
	}
	vars := map[string]any{}
	var defs []string
	nvar := 0
	newVar := func(typ string, value any) string {
		nvar++
		name := fmt.Sprintf("v%d", nvar)
		defs = append(defs, "$"+name+": "+typ)
		switch r.IntN(40) {
		case 0: // missing
		case 1:
			vars[name] = nil
		case 2:
			vars[name] = 7 // the wrong type
		default:
			vars[name] = value
		}
		return "$" + name
	}
	// Mostly documents that validate (a nullable variable where a key is
	// required, or one alias for two fields, is a validation error), with
	// a few that do not.
	keyArg := func() string {
		if r.IntN(2) == 0 {
			typ := "String!"
			if r.IntN(30) == 0 {
				typ = "String"
			}
			return newVar(typ, key())
		}
		return fmt.Sprintf("%q", key())
	}
	aliases := 0
	field := func() string {
		alias := ""
		if r.IntN(2) == 0 {
			aliases++
			alias = fmt.Sprintf("f%d: ", aliases)
		}
		var body string
		switch r.IntN(4) {
		case 0:
			body = "cacheGet(key: " + keyArg() + ")"
		case 1:
			body = "cacheExists(key: " + keyArg() + ")"
		case 2:
			if r.IntN(2) == 0 {
				list := make([]string, r.IntN(5))
				for i := range list {
					list[i] = key()
				}
				typ := "[String!]!"
				if r.IntN(30) == 0 {
					typ = "[String]"
				}
				body = "cacheGetMany(keys: " + newVar(typ, list) + ")"
			} else {
				var elems []string
				for range r.IntN(4) {
					elems = append(elems, keyArg())
				}
				body = "cacheGetMany(keys: [" + strings.Join(elems, ", ") + "])"
			}
		default:
			body = "__typename"
		}
		switch r.IntN(6) {
		case 0:
			body += " @skip(if: " + newVar("Boolean!", r.IntN(2) == 0) + ")"
		case 1:
			body += " @include(if: " + []string{"true", "false"}[r.IntN(2)] + ")"
		}
		return alias + body
	}
	var sel []string
	for range 1 + r.IntN(4) {
		switch r.IntN(5) {
		case 0:
			sel = append(sel, "... on Query { "+field()+" "+field()+" }")
		default:
			sel = append(sel, field())
		}
	}
	doc := "query"
	if len(defs) > 0 {
		doc += "(" + strings.Join(defs, ", ") + ")"
	}
	doc += " { " + strings.Join(sel, " ") + " }"
	if r.IntN(4) == 0 {
		doc = "query Q" + strings.TrimPrefix(doc, "query") + " fragment G on Query { " + field() + " }"
		doc = strings.Replace(doc, "{ ", "{ ...G ", 1)
	}
	return request(doc, vars)
}
