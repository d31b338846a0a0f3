package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The differential test of the compiled write path. Writes change what
// they answer next, so the two paths do not share a Redis: each has its
// own server, seeded alike, and after every request the two servers must
// hold the same keys, values and TTLs (within a second), as the two
// answers must be the same bytes. Each request goes to both handlers
// twice: the first time gqlgen answers on both (and the compiled handler
// learns the document), the second time the plan answers, when there is
// one, and gqlgen on the other.

type twoStores struct {
	compiled, plain http.Handler
	reads           *compiledReads
	redis           [2]*redistest.Server // the compiled handler's, the plain one's
	look            [2]valkey.Client
}

func newTwoStores(t testing.TB, opts HandlerOptions) *twoStores {
	t.Helper()
	ts := &twoStores{}
	if opts.Auth == nil {
		opts.Auth = auth.OpenAccess()
	}
	opts.MaxValueBytes = 4096
	for i := range ts.redis {
		srv := redistest.Start(t, redistest.Options{})
		c, err := cache.New(cache.Options{Addr: srv.Addr, MaxValueBytes: 4096, MaxTTL: 30 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.WaitReady(context.Background()); err != nil {
			t.Fatal(err)
		}
		ts.redis[i], ts.look[i] = srv, srv.Client(t, 0)
		ts.seed(t, i)
		r := &Resolver{Cache: c}
		if i == 0 {
			ts.compiled, ts.reads = newHandler(r, opts)
		} else {
			plainOpts := opts
			plainOpts.NoCompiledReads = true
			ts.plain = NewHandler(r, plainOpts)
		}
	}
	return ts
}

func (ts *twoStores) seed(t testing.TB, i int) {
	t.Helper()
	ctx := context.Background()
	c := ts.look[i]
	for _, cmd := range [][]string{
		{"SET", "school-erp:n", "42"},
		{"SET", "school-erp:obj", `{"name":"Ada"}`},
		{"SET", "school-erp:ttl", `"expiring"`, "EX", "500"},
		{"HSET", "school-erp:hash", "f", "v"},
	} {
		if err := c.Do(ctx, c.B().Arbitrary(cmd...).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
}

// state is what a Redis server holds, key by key: its type and contents,
// and its TTL in milliseconds (-1: none).
type entry struct {
	value string
	pttl  int64
	// scores are a sorted set's, in the order of its members: the tag
	// index scores entries by Redis's clock in milliseconds, compared
	// within a second like TTLs.
	scores []float64
}

func (ts *twoStores) state(t testing.TB, i int) map[string]entry {
	t.Helper()
	ctx := context.Background()
	c := ts.look[i]
	keys, err := c.Do(ctx, c.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]entry, len(keys))
	for _, k := range keys {
		typ, err := c.Do(ctx, c.B().Type().Key(k).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		var value string
		var scores []float64
		switch typ {
		case "zset":
			var zs []valkey.ZScore
			zs, err = c.Do(ctx, c.B().Zrange().Key(k).Min("0").Max("-1").Withscores().Build()).AsZScores()
			slices.SortFunc(zs, func(a, b valkey.ZScore) int { return strings.Compare(a.Member, b.Member) })
			for _, z := range zs {
				value += z.Member + "\x00"
				scores = append(scores, z.Score)
			}
		case "string":
			value, err = c.Do(ctx, c.B().Get().Key(k).Build()).ToString()
		case "set":
			var members []string
			members, err = c.Do(ctx, c.B().Smembers().Key(k).Build()).AsStrSlice()
			slices.Sort(members)
			value = strings.Join(members, "\x00")
		case "hash":
			var m map[string]string
			m, err = c.Do(ctx, c.B().Hgetall().Key(k).Build()).AsStrMap()
			value = fmt.Sprint(m)
		default:
			value, err = c.Do(ctx, c.B().Dump().Key(k).Build()).ToString()
		}
		if err != nil && !valkey.IsValkeyNil(err) {
			t.Fatal(err)
		}
		pttl, err := c.Do(ctx, c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = entry{typ + ":" + value, pttl, scores}
	}
	return out
}

// sameState fails when the two servers hold different things.
func (ts *twoStores) sameState(t *testing.T, name string) {
	t.Helper()
	got, want := ts.state(t, 0), ts.state(t, 1)
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: the compiled path's Redis has no %q; gqlgen's holds %q (pttl %d)", name, k, w.value, w.pttl)
		case g.value != w.value:
			t.Errorf("%s: the compiled path's Redis holds %q at %q; gqlgen's holds %q", name, g.value, k, w.value)
		case (g.pttl < 0) != (w.pttl < 0) || max(g.pttl-w.pttl, w.pttl-g.pttl) > 1000:
			t.Errorf("%s: %q has pttl %d in the compiled path's Redis; %d in gqlgen's", name, k, g.pttl, w.pttl)
		}
		for i := range min(len(g.scores), len(w.scores)) {
			if d := g.scores[i] - w.scores[i]; d > 1000 || d < -1000 {
				t.Errorf("%s: %q scores %v in the compiled path's Redis; %v in gqlgen's", name, k, g.scores, w.scores)
				break
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: the compiled path's Redis holds %q at %q; gqlgen's has no such key", name, g.value, k)
		}
	}
}

// compare sends body to both handlers twice, and fails on any difference
// in the answers or in what Redis holds after each round. It returns
// whether a plan answered the second time.
func (ts *twoStores) compare(t *testing.T, name, body string, headers map[string]string) bool {
	t.Helper()
	first, firstPlain := send(ts.compiled, body, headers), send(ts.plain, body, headers) // learn
	if first != firstPlain {
		t.Errorf("%s: before any plan, the two handlers answered\n  %v\nand\n  %v", name, first, firstPlain)
	}
	ts.sameState(t, name+" (learning)")
	before := ts.reads.served.Load()
	got := send(ts.compiled, body, headers)
	planned := ts.reads.served.Load() > before
	want := send(ts.plain, body, headers)
	if got != want {
		t.Errorf("%s: compiled path (plan used: %v) answered\n  %d %s %s\nwhile gqlgen answered\n  %d %s %s\nfor %s",
			name, planned, got.status, got.contentType, got.body, want.status, want.contentType, want.body, body)
	}
	ts.sameState(t, name)
	return planned
}

// rawRequest is a request body with the variables' JSON text as given
// (json.Marshal would compact it and sort its keys).
func rawRequest(query string, vars map[string]string) string {
	q, _ := json.Marshal(query)
	if vars == nil {
		return `{"query":` + string(q) + `}`
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(`{"query":` + string(q) + `,"variables":{`)
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n) + ": " + vars[n])
	}
	b.WriteString("}}")
	return b.String()
}

func TestCompiledWritesMatchGqlgen(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	const all = `key stored backend ttlSeconds failure message currentEtag __typename`
	tests := []struct {
		name    string
		body    string
		planned bool
	}{
		{"a literal set", request(`mutation { cacheSet(key: "a", value: {b: 1, a: [true, null, "x"]}) { key stored } }`, nil), true},
		{"every payload field", request(`mutation { cacheSet(key: "a", value: 1, ttlSeconds: 60) { `+all+` } }`, nil), true},
		{"a variable value as sent", rawRequest(`mutation($v: JSON) { cacheSet(key: "b", value: $v) { stored } }`,
			map[string]string{"v": `{ "z" : 1, "a" : [ 1.50, -0, 2e3, "\u00e9 \"q\" \\" ], "u": "ü€😀\u2028" }`}), true},
		{"a variable null stores null", rawRequest(`mutation($v: JSON) { cacheSet(key: "c", value: $v) { stored } }`, map[string]string{"v": `null`}), true},
		{"a variable left out refuses the field", rawRequest(`mutation($v: JSON) { a: cacheSet(key: "d", value: $v) { stored } b: cacheSet(key: "e", value: 2) { stored } }`, map[string]string{}), true},
		{"no value at all", request(`mutation { cacheSet(key: "d") { stored } }`, nil), true},
		{"a literal null", request(`mutation { cacheSet(key: "f", value: null) { stored } }`, nil), true},
		{"variables for everything", rawRequest(`mutation($k: String!, $v: JSON!, $t: Int, $nx: Boolean, $tags: [String!]) { x: cacheSet(key: $k, value: $v, ttlSeconds: $t, ifAbsent: $nx, tags: $tags) { `+all+` } }`,
			map[string]string{"k": `"g"`, "v": `[1,2,3]`, "t": `120`, "nx": `false`, "tags": `["t1","t2"]`}), true},
		{"ifAbsent on a key that holds a value", request(`mutation { cacheSet(key: "n", value: 1, ifAbsent: true) { `+all+` } }`, nil), true},
		{"ifAbsent on a hash", request(`mutation { cacheSet(key: "hash", value: 1, ifAbsent: true) { `+all+` } }`, nil), true},
		{"a compare-and-set that fails", request(`mutation { cacheSet(key: "obj", value: 2, ifEtag: "0000") { `+all+` } }`, nil), true},
		{"a lease that is not valid", request(`mutation { cacheSet(key: "h", value: 2, lease: "nope") { `+all+` } }`, nil), true},
		{"ifAbsent with ifEtag", request(`mutation { cacheSet(key: "h", value: 2, ifAbsent: true, ifEtag: "x") { `+all+` } }`, nil), true},
		{"a bad key between good ones", request(`mutation { a: cacheSet(key: "i", value: 1) { stored } b: cacheSet(key: "a b", value: 1) { stored } c: cacheDelete(key: "i") { deleted } }`, nil), true},
		{"an empty key", request(`mutation { cacheDelete(key: "") { deleted } }`, nil), true},
		{"ttl zero, negative, huge, above the limit", request(`mutation { a: cacheSet(key: "j", value: 1, ttlSeconds: 0) { stored } b: cacheSet(key: "j", value: 1, ttlSeconds: -5) { stored } c: cacheSet(key: "j", value: 1, ttlSeconds: 99999999999) { stored } d: cacheSet(key: "j", value: 1, ttlSeconds: 2592001) { stored } }`, nil), true},
		{"a ttl variable above an Int", rawRequest(`mutation($t: Int) { cacheSet(key: "j", value: 1, ttlSeconds: $t) { stored ttlSeconds } }`, map[string]string{"t": `4294967296`}), true},
		{"a value over the limit", rawRequest(`mutation($v: JSON) { cacheSet(key: "k", value: $v) { stored } }`, map[string]string{"v": `"` + strings.Repeat("x", 5000) + `"`}), true},
		{"too many tags", request(`mutation { cacheSet(key: "k", value: 1, tags: ["a","b","c","d","e","f","g","h","i","j","k"]) { stored } }`, nil), true},
		{"a bad tag", request(`mutation { cacheSet(key: "k", value: 1, tags: ["a b"]) { stored } }`, nil), true},
		{"deletes", request(`mutation { a: cacheDelete(key: "n") { `+`key deleted backend failure message __typename`+` } b: cacheDelete(key: "n") { deleted } c: cacheDelete(key: "ttl") { deleted } }`, nil), true},
		{"delete a hash", request(`mutation { cacheDelete(key: "hash") { deleted } }`, nil), true},
		{"__typename, fragments, aliases", request(`mutation M { __typename t: __typename ...F ... on Mutation { s: cacheSet(key: "l", value: "v") { ...P ... on CacheSetPayload { k2: key } } } } fragment F on Mutation { cacheDelete(key: "zz") { __typename deleted } } fragment P on CacheSetPayload { key stored }`, nil), true},
		{"skip and include", rawRequest(`mutation($s: Boolean!, $i: Boolean = false) { a: cacheSet(key: "m", value: 1) @skip(if: $s) { stored } b: cacheSet(key: "m2", value: 2) @include(if: $i) { stored } c: cacheSet(key: "m3", value: 3) { stored @skip(if: $s) key @include(if: true) } }`, map[string]string{"s": `true`}), true},
		{"a field selected twice", request(`mutation { cacheSet(key: "o", value: 1) { key } cacheSet(key: "o", value: 1) { stored } }`, nil), true},
		{"escapes in keys", rawRequest(`mutation($k: String!) { cacheSet(key: $k, value: "\u00e9") { key } }`, map[string]string{"k": `"k\u00e9\"q\\x\t"`}), true},
		{"a block string key", request(`mutation { cacheSet(key: """blk""", value: """multi
line""") { key } }`, nil), true},
		{"literal numbers", request(`mutation { cacheSet(key: "p", value: {n: 1.50, m: -0, big: 9007199254740993, e: 1e3}) { stored } }`, nil), true},
		{"a huge integer in a value", rawRequest(`mutation($v: JSON) { cacheSet(key: "q", value: $v) { stored } }`, map[string]string{"v": `{"a": 123456789012345678901234567890}`}), false},
		{"1e400 in a value", rawRequest(`mutation($v: JSON) { cacheSet(key: "q", value: $v) { stored } }`, map[string]string{"v": `[1e400]`}), false},
		{"1e400 as a literal", request(`mutation { cacheSet(key: "q", value: 1e400) { stored } }`, nil), false},
		{"a JSON! null", rawRequest(`mutation($v: JSON!) { cacheSet(key: "q", value: $v) { stored } }`, map[string]string{"v": `null`}), false},
		{"a missing key variable", rawRequest(`mutation($k: String!) { cacheDelete(key: $k) { deleted } }`, map[string]string{}), false},
		{"a ttl as a string", rawRequest(`mutation($t: Int) { cacheSet(key: "r", value: 1, ttlSeconds: $t) { stored } }`, map[string]string{"t": `"5"`}), false},
		{"a ttl with a fraction", rawRequest(`mutation($t: Int) { cacheSet(key: "r", value: 1, ttlSeconds: $t) { stored } }`, map[string]string{"t": `5.5`}), false},
		{"a null in tags", rawRequest(`mutation($t: [String!]) { cacheSet(key: "r", value: 1, tags: $t) { stored } }`, map[string]string{"t": `["a", null]`}), false},
		{"a field a plan does not run", request(`mutation { cacheSet(key: "s", value: 1) { stored } cacheFetch(key: "s", leaseSeconds: 5) { hit } }`, nil), false},
		{"tags, then their invalidation", rawRequest(`mutation($t: [String!]!) { a: cacheSet(key: "tg1", value: 1, tags: ["x1", "x2"]) { stored } b: cacheSetMany(entries: [{key: "tg2", value: 2, tags: ["x2"]}, {key: "tg3", value: 3, tags: ["x3"]}]) { stored } c: cacheInvalidateTags(tags: $t) { tags deleted backend failure message __typename } d: cacheInvalidateTags(tags: []) { tags deleted } e: cacheInvalidateTags(tags: ["a b"]) { deleted } }`,
			map[string]string{"t": `["x2", "nope"]`}), true},
		{"increments", rawRequest(`mutation($by: Int64, $t: Int) { a: cacheIncrement(key: "cnt") { key value backend failure message __typename } b: cacheIncrement(key: "cnt", by: -5, ttlSeconds: 60) { value } c: cacheIncrement(key: "cnt", by: "7") { value } d: cacheIncrement(key: "cnt", by: $by, ttlSeconds: $t) { value } e: cacheIncrement(key: "obj") { value failure message } f: cacheIncrement(key: "hash") { failure } }`,
			map[string]string{"by": `"9223372036854775800"`, "t": `5`}), true},
		{"an increment that overflows", request(`mutation { a: cacheIncrement(key: "big", by: "9223372036854775807") { value } b: cacheIncrement(key: "big", by: 1) { value failure message } }`, nil), true},
		{"an increment with a bad ttl", request(`mutation { cacheIncrement(key: "cnt2", ttlSeconds: 0) { value } }`, nil), true},
		{"an Int64 variable as a number", rawRequest(`mutation($by: Int64) { cacheIncrement(key: "cnt3", by: $by) { value } }`, map[string]string{"by": `12`}), true},
		{"an Int64 variable with a fraction", rawRequest(`mutation($by: Int64) { cacheIncrement(key: "cnt3", by: $by) { value } }`, map[string]string{"by": `1.5`}), false},
		{"an Int64 literal that is not one", request(`mutation { cacheIncrement(key: "cnt3", by: "x") { value } }`, nil), false},
		{"expires", rawRequest(`mutation($t: Int) { a: cacheExpire(key: "obj", ttlSeconds: 100) { key existed backend failure message __typename } b: cacheExpire(key: "nope") { existed } c: cacheExpire(key: "ttl") { existed } d: cacheExpire(key: "n", ttlSeconds: $t) { existed } e: cacheExpire(key: "n", ttlSeconds: -1) { existed } }`, map[string]string{"t": `30`}), true},
		{"delete many", rawRequest(`mutation($ks: [String!]!) { a: cacheDeleteMany(keys: ["n", "nope", "a b", "obj"]) { key deleted backend __typename } b: cacheDeleteMany(keys: $ks) { deleted } c: cacheDeleteMany(keys: []) { deleted } }`, map[string]string{"ks": `["ttl", "", "hash"]`}), true},
		{"delete too many", rawRequest(`mutation($ks: [String!]!) { cacheDeleteMany(keys: $ks) { deleted } }`, map[string]string{"ks": `[` + strings.Repeat(`"k",`, 100) + `"k"]`}), true},
		{"set many, literal", request(`mutation { a: cacheSetMany(entries: [{key: "sm1", value: {b: 1, a: 2}, ttlSeconds: 60, tags: ["t1"]}, {key: "sm2", value: null}, {key: "sm3"}, {key: "a b", value: 1}, {key: "sm4", value: 1, ttlSeconds: 0}, {value: "x", key: "sm5", tags: []}]) { `+all+` } b: cacheSetMany(entries: []) { stored } }`, nil), true},
		{"set many, a variable", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { key stored ttlSeconds backend } }`,
			map[string]string{"e": `[ {"key": "sv1", "value": { "z" : [1, 2.50] , "a": "\u00e9"}, "ttlSeconds": 30}, {"value": null, "key": "sv2"}, {"key": "sv3"}, {"key": "sv4", "value": 1, "tags": ["t2", "t3"]}, {"key": "", "value": 1}, {"key": "sv5", "value": 1, "ttlSeconds": -1}, {"key": "sv6", "value": 1, "ttlSeconds": null, "tags": null} ]`}), true},
		{"set many, too many", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[` + strings.Repeat(`{"key":"k","value":1},`, 100) + `{"key":"k","value":1}]`}), true},
		{"set many, an unknown member", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[{"key": "k", "value": 1, "x": 2}]`}), false},
		{"set many, a duplicate member", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[{"key": "k", "value": 1, "value": 2}]`}), false},
		{"set many, no key", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[{"value": 1}]`}), false},
		{"set many, a null entry", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[{"key": "k", "value": 1}, null]`}), false},
		{"set many, one object for the list", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `{"key": "k", "value": 1}`}), false},
		{"set many, 1e400 in a value", rawRequest(`mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, map[string]string{"e": `[{"key": "k", "value": [1e400]}]`}), false},
		{"delete many with a null", rawRequest(`mutation($ks: [String!]!) { cacheDeleteMany(keys: $ks) { deleted } }`, map[string]string{"ks": `["a", null]`}), false},
		{"a query in the same document", `{"query":"query Q { cacheGet(key: \"n\") } mutation W { cacheDelete(key: \"w\") { deleted } }","operationName":"W"}`, true},
	}
	for _, tt := range tests {
		if planned := ts.compare(t, tt.name, tt.body, nil); planned != tt.planned {
			t.Errorf("%s: answered by a plan = %v; want %v", tt.name, planned, tt.planned)
		}
	}
}

// Under application/graphql-response+json too: a field error is still a
// 200 with data, its media type the one asked for.
func TestCompiledWritesMediaTypes(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{})
	body := request(`mutation { a: cacheSet(key: "a b", value: 1) { stored } b: cacheSet(key: "b", value: 1) { stored } }`, nil)
	for _, accept := range []string{"application/graphql-response+json", "application/json", "*/*", "text/html"} {
		if !ts.compare(t, "Accept: "+accept, body, map[string]string{"Accept": accept}) {
			t.Errorf("Accept: %s: not answered by a plan", accept)
		}
	}
}

// Auth: a token that may read only is refused every write field, by
// gqlgen; the plan answers a writer.
func TestCompiledWritesAuth(t *testing.T) {
	a := auth.New([]auth.Token{
		{Name: "reader", Scope: auth.ScopeRead, Value: "read-token-0123456789"},
		{Name: "writer", Scope: auth.ScopeWrite, Value: "write-token-0123456789"},
	})
	ts := newTwoStores(t, HandlerOptions{Auth: a})
	ts.compiled, ts.plain = a.Middleware(ts.compiled), a.Middleware(ts.plain)
	body := request(`mutation { cacheSet(key: "a", value: 1) { stored } }`, nil)
	if !ts.compare(t, "a write token", body, map[string]string{"Authorization": "Bearer write-token-0123456789"}) {
		t.Error("a write token's mutation was not answered by a plan")
	}
	for name, headers := range map[string]map[string]string{"no token": nil, "a read token": {"Authorization": "Bearer read-token-0123456789"}} {
		if ts.compare(t, name, body, headers) {
			t.Errorf("%s: answered by a plan; want gqlgen's refusal", name)
		}
	}
}

// The complexity limit refuses through gqlgen, having run nothing.
func TestCompiledWritesComplexity(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{Limits: Limits{Complexity: 5}})
	body := request(`mutation { a: cacheSet(key: "a", value: 1) { key stored } b: cacheSet(key: "b", value: 1) { key stored } }`, nil)
	if ts.compare(t, "over the complexity limit", body, nil) {
		t.Error("a mutation over the complexity limit was answered by a plan")
	}
}

// FuzzCompiledWrites generates mutations from the fuzzer's bytes and
// compares the two paths on each.
func FuzzCompiledWrites(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1234, 99999} {
		f.Add(seed)
	}
	ts := newTwoStores(f, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	f.Fuzz(func(t *testing.T, seed uint64) {
		body := generateWriteRequest(rand.New(rand.NewPCG(seed, seed>>7|1)))
		ts.compare(t, fmt.Sprintf("seed %d", seed), body, nil)
	})
}

// TestCompiledWritesFuzzCorpus runs the generator over a fixed range of
// seeds in every test run.
func TestCompiledWritesFuzzCorpus(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{Limits: Limits{Complexity: 250, Depth: 8, Tokens: 5000, Aliases: 20, Operations: 10}})
	planned := 0
	const n = 200
	for seed := range uint64(n) {
		body := generateWriteRequest(rand.New(rand.NewPCG(seed, seed>>7|1)))
		if ts.compare(t, fmt.Sprintf("seed %d", seed), body, nil) {
			planned++
		}
	}
	t.Logf("plans answered %d of %d generated mutations", planned, n)
	if planned < n/2 {
		t.Errorf("plans answered %d of %d generated mutations; want most (the generator must exercise them)", planned, n)
	}
}

// generateWriteRequest writes a random mutation of cacheSet, cacheDelete,
// cacheIncrement, cacheExpire, cacheSetMany, cacheDeleteMany,
// cacheInvalidateTags and __typename: aliases, literal and variable arguments (values as JSON
// text with spacing, escapes and numbers of every kind, now and then one
// out of range), payload selections with fragments and @skip/@include,
// and variables that are sometimes missing, null or of the wrong type.
func generateWriteRequest(r *rand.Rand) string {
	keys := []string{"w1", "w2", "w3", "n", "obj", "ttl", "hash", "a b", ""}
	key := func() string {
		if r.IntN(30) == 0 {
			return keys[len(keys)-2+r.IntN(2)] // a bad key, now and then
		}
		return keys[r.IntN(len(keys)-2)]
	}
	vars := map[string]string{}
	var defs []string
	nvar := 0
	newVar := func(typ, text string) string {
		nvar++
		name := fmt.Sprintf("v%d", nvar)
		defs = append(defs, "$"+name+": "+typ)
		switch r.IntN(40) {
		case 0: // missing
		case 1:
			vars[name] = "null"
		case 2:
			vars[name] = `{"wrong": "type"}`
		default:
			vars[name] = text
		}
		return "$" + name
	}
	space := func() string { return []string{"", "", " ", "\n  ", "\t"}[r.IntN(5)] }
	var jsonText func(depth int) string
	jsonText = func(depth int) string {
		switch n := r.IntN(10); {
		case n == 0 && depth < 3:
			var members []string
			for i := range r.IntN(4) {
				members = append(members, space()+strconv.Quote([]string{"a", "z", "é", "m"}[i])+space()+":"+space()+jsonText(depth+1))
			}
			return "{" + strings.Join(members, ",") + space() + "}"
		case n == 1 && depth < 3:
			var elems []string
			for range r.IntN(4) {
				elems = append(elems, space()+jsonText(depth+1)+space())
			}
			return "[" + strings.Join(elems, ",") + "]"
		case n == 2:
			return []string{"0", "-0", "1.50", "2e3", "-1E-2", "9007199254740993", "123456789012345678", "1234567890123456789", "99999999999999999999", "1e400"}[r.IntN(10)]
		case n == 3:
			return []string{"true", "false", "null"}[r.IntN(3)]
		case n == 4:
			return `"` + []string{`\u00e9`, `\"`, `\\`, `\n`, "ü€😀", "\u2028", `<b>&amp;</b>`, ``}[r.IntN(8)] + `"`
		default:
			return strconv.Quote(key())
		}
	}
	literal := func() string {
		return []string{`1`, `"s"`, `{b: 2, a: [1, 2.5, null]}`, `null`, `[true, "x"]`, `"""blk"""`, `-7`, `1.0`}[r.IntN(8)]
	}
	stringArg := func() string {
		if r.IntN(2) == 0 {
			typ := "String!"
			if r.IntN(30) == 0 {
				typ = "String" // a validation error
			}
			return newVar(typ, strconv.Quote(key()))
		}
		return strconv.Quote(key())
	}
	// pick is one of the literals, or a variable of typ holding text.
	pick := func(typ, text string, literals ...string) string {
		if n := r.IntN(len(literals) + 1); n < len(literals) {
			return literals[n]
		}
		return newVar(typ, text)
	}
	aliases := 0
	alias := func() string {
		if r.IntN(4) > 0 {
			aliases++
			return fmt.Sprintf("f%d: ", aliases)
		}
		return ""
	}
	directive := func() string {
		switch r.IntN(8) {
		case 0:
			return " @skip(if: " + newVar("Boolean!", []string{"true", "false"}[r.IntN(2)]) + ")"
		case 1:
			return " @include(if: " + []string{"true", "false"}[r.IntN(2)] + ")"
		}
		return ""
	}
	selection := func(fields []string, typ string) string {
		var sel []string
		for range 1 + r.IntN(4) {
			f := fields[r.IntN(len(fields))]
			switch r.IntN(6) {
			case 0:
				sel = append(sel, "... on "+typ+" { "+f+" }")
			default:
				sel = append(sel, alias()+f+directive())
			}
		}
		return "{ " + strings.Join(sel, " ") + " }"
	}
	setFields := []string{"key", "stored", "backend", "ttlSeconds", "failure", "message", "currentEtag", "__typename"}
	deleteFields := []string{"key", "deleted", "backend", "failure", "message", "__typename"}
	counterFields := []string{"key", "value", "backend", "failure", "message", "__typename"}
	expireFields := []string{"key", "existed", "backend", "failure", "message", "__typename"}
	invalidateFields := []string{"tags", "deleted", "backend", "failure", "message", "__typename"}
	var setMany func() string
	field := func() string {
		switch r.IntN(5) {
		case 0, 1, 2:
			args := []string{"key: " + stringArg()}
			switch r.IntN(8) {
			case 0: // no value
			case 1, 2, 3:
				args = append(args, "value: "+literal())
			default:
				args = append(args, "value: "+newVar([]string{"JSON", "JSON", "JSON!"}[r.IntN(3)], jsonText(0)))
			}
			if r.IntN(3) == 0 {
				ttl := []string{"60", "1", "0", "-1", "2592001", "86400"}[r.IntN(6)]
				if r.IntN(2) == 0 {
					args = append(args, "ttlSeconds: "+newVar("Int", ttl))
				} else {
					args = append(args, "ttlSeconds: "+ttl)
				}
			}
			if r.IntN(5) == 0 {
				args = append(args, "ifAbsent: "+pick("Boolean", "true", "true", "false", "null"))
			}
			if r.IntN(8) == 0 {
				args = append(args, "ifEtag: "+pick("String", `"0123"`, `"abc"`, "null"))
			}
			if r.IntN(6) == 0 {
				args = append(args, "tags: "+pick("[String!]", `["t3"]`, `["t1"]`, `[]`, `["t1", "t2"]`, "null"))
			}
			if r.IntN(12) == 0 {
				args = append(args, `lease: "not-a-lease"`)
			}
			r.Shuffle(len(args), func(i, j int) { args[i], args[j] = args[j], args[i] })
			return alias() + "cacheSet(" + strings.Join(args, ", ") + ")" + directive() + " " + selection(setFields, "CacheSetPayload")
		case 3:
			switch r.IntN(5) {
			case 0:
				args := []string{"key: " + stringArg()}
				if r.IntN(2) == 0 {
					args = append(args, "by: "+pick("Int64", []string{`"5"`, `-3`, `"9223372036854775807"`, `1.5`}[r.IntN(4)], `1`, `-2`, `"40"`, "null"))
				}
				if r.IntN(3) == 0 {
					args = append(args, "ttlSeconds: "+pick("Int", "30", "60", "0", "null"))
				}
				return alias() + "cacheIncrement(" + strings.Join(args, ", ") + ")" + directive() + " " + selection(counterFields, "CacheCounterPayload")
			case 1:
				args := []string{"key: " + stringArg()}
				if r.IntN(3) > 0 {
					args = append(args, "ttlSeconds: "+pick("Int", "30", "90", "-1", "null"))
				}
				return alias() + "cacheExpire(" + strings.Join(args, ", ") + ")" + directive() + " " + selection(expireFields, "CacheExpirePayload")
			case 2:
				var list []string
				for range r.IntN(4) {
					list = append(list, strconv.Quote(key()))
				}
				keysArg := "[" + strings.Join(list, ", ") + "]"
				if r.IntN(2) == 0 {
					keysArg = newVar("[String!]!", keysArg)
				}
				return alias() + "cacheDeleteMany(keys: " + keysArg + ")" + directive() + " " + selection(deleteFields, "CacheDeletePayload")
			case 3:
				if r.IntN(4) == 0 {
					tags := pick("[String!]!", `["t1", "t3"]`, `["t1"]`, `["t2", "t3"]`, `[]`)
					return alias() + "cacheInvalidateTags(tags: " + tags + ")" + directive() + " " + selection(invalidateFields, "CacheInvalidatePayload")
				}
				return setMany()
			}
			return alias() + "cacheDelete(key: " + stringArg() + ")" + directive() + " " + selection(deleteFields, "CacheDeletePayload")
		}
		return alias() + "__typename" + directive()
	}
	setMany = func() string {
		if r.IntN(2) == 0 {
			// cacheSetMany, its entries in a variable, as JSON text.
			var entries []string
			for range r.IntN(4) {
				members := []string{`"key":` + space() + strconv.Quote(key())}
				if r.IntN(5) > 0 {
					members = append(members, `"value":`+space()+jsonText(0))
				}
				if r.IntN(3) == 0 {
					members = append(members, `"ttlSeconds": `+[]string{"30", "0", "null", "1.5", `"5"`}[r.IntN(5)])
				}
				if r.IntN(4) == 0 {
					members = append(members, `"tags": `+[]string{`["t1"]`, `[]`, `null`, `[null]`}[r.IntN(4)])
				}
				r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
				entries = append(entries, "{"+strings.Join(members, ","+space())+"}")
			}
			return alias() + "cacheSetMany(entries: " + newVar("[CacheSetInput!]!", "["+strings.Join(entries, ", ")+"]") + ")" + directive() + " " + selection(setFields, "CacheSetPayload")
		}
		// Or written in the document.
		var entries []string
		for range r.IntN(4) {
			members := []string{"key: " + strconv.Quote(key())}
			if r.IntN(5) > 0 {
				members = append(members, "value: "+literal())
			}
			if r.IntN(3) == 0 {
				members = append(members, "ttlSeconds: "+[]string{"30", "0", "null"}[r.IntN(3)])
			}
			if r.IntN(4) == 0 {
				members = append(members, "tags: "+[]string{`["t1"]`, `[]`, `null`}[r.IntN(3)])
			}
			entries = append(entries, "{"+strings.Join(members, ", ")+"}")
		}
		return alias() + "cacheSetMany(entries: [" + strings.Join(entries, ", ") + "])" + directive() + " " + selection(setFields, "CacheSetPayload")
	}
	var sel []string
	for range 1 + r.IntN(3) {
		if r.IntN(6) == 0 {
			sel = append(sel, "... on Mutation { "+field()+" }")
		} else {
			sel = append(sel, field())
		}
	}
	doc := "mutation"
	if len(defs) > 0 {
		doc += "(" + strings.Join(defs, ", ") + ")"
	}
	doc += " { " + strings.Join(sel, " ") + " }"
	return rawRequest(doc, vars)
}

// A mutation sent as an Automatic Persisted Query: once registered, its
// hash alone is answered by its plan.
func TestCompiledWritesByPersistedHash(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{})
	const query = `mutation($k: String!, $v: JSON) { cacheSet(key: $k, value: $v) { key stored } }`
	sum := sha256.Sum256([]byte(query))
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}}`
	q, _ := json.Marshal(query)
	register := `{"query":` + string(q) + `,"variables":{"k":"a","v":1},"extensions":` + ext + `}`
	if ts.compare(t, "the query and its hash", register, nil) {
		t.Error("a request carrying the query and its hash was answered by a plan; want gqlgen, which stores it")
	}
	hashOnly := `{"variables":{"k":"b","v":{"x": [1, 2]}},"extensions":` + ext + `}`
	if !ts.compare(t, "the hash alone", hashOnly, nil) {
		t.Error("a registered mutation sent by its hash alone was not answered by a plan")
	}
}

// Plans are shared by concurrent requests: what a plan holds (literal
// values, tags, entries) is only read. Run with -race.
func TestCompiledWritesConcurrently(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{})
	bodies := []string{
		request(`mutation { cacheSet(key: "a", value: {x: 1}, tags: ["t1", "t2"], ttlSeconds: 60) { stored } }`, nil),
		request(`mutation { cacheSetMany(entries: [{key: "b", value: 1, tags: ["t1"]}, {key: "c", value: [2]}]) { stored } }`, nil),
		rawRequest(`mutation($v: JSON, $t: [String!]) { cacheSet(key: "d", value: $v, tags: $t) { stored } }`, map[string]string{"v": `{"y": [1, 2]}`, "t": `["t3"]`}),
	}
	for _, body := range bodies {
		send(ts.compiled, body, nil) // learn
	}
	before := ts.reads.served.Load()
	const workers, each = 4, 25
	errs := make(chan string, workers*each*len(bodies))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := bodies[(w+i)%len(bodies)]
				if got := send(ts.compiled, body, nil); got.status != http.StatusOK || !strings.Contains(got.body, `"stored":true`) || strings.Contains(got.body, "false") {
					errs <- fmt.Sprintf("%s: %d %s", body, got.status, got.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := ts.reads.served.Load() - before; n != workers*each {
		t.Errorf("plans answered %d of %d requests", n, workers*each)
	}
}

// brokenCache fails as no Redis does: SetWith panics, Delete returns an
// error that is not about Redis, Increment answers. The rest is never
// called.
type brokenCache struct{ Cache }

func (brokenCache) SetWith(context.Context, string, json.RawMessage, cache.SetOptions) (cache.SetResult, error) {
	panic("the cache broke")
}

func (brokenCache) Delete(context.Context, string) (bool, cache.Backend, error) {
	return false, "", errors.New("an internal error")
}

func (brokenCache) Increment(context.Context, string, int64, time.Duration) (int64, cache.Backend, error) {
	return 7, cache.BackendRedis, nil
}

// A panic in a field, and an internal error, are presented as gqlgen
// presents them, the other fields still answered.
func TestCompiledWritesPanicsAndInternalErrors(t *testing.T) {
	r := &Resolver{Cache: brokenCache{}}
	opts := HandlerOptions{Auth: auth.OpenAccess()}
	compiled, reads := newHandler(r, opts)
	opts.NoCompiledReads = true
	plain := NewHandler(r, opts)
	body := request(`mutation { a: cacheIncrement(key: "n") { value } b: cacheSet(key: "k", value: 1) { stored } c: cacheDelete(key: "k") { deleted } d: cacheIncrement(key: "n") { value } }`, nil)
	send(compiled, body, nil) // learn
	before := reads.served.Load()
	got, want := send(compiled, body, nil), send(plain, body, nil)
	if reads.served.Load() == before {
		t.Fatal("the mutation was not answered by a plan")
	}
	if got != want {
		t.Errorf("compiled path answered\n  %v\nwhile gqlgen answered\n  %v", got, want)
	}
	if !strings.Contains(want.body, `"path":["b"]`) || !strings.Contains(want.body, `"path":["c"]`) {
		t.Errorf("gqlgen's answer %s has no error at b and c: the test does not test what it says", want.body)
	}
}

// A request whose deadline has passed runs nothing from a plan: gqlgen
// answers it, as it would have.
func TestCompiledWritesPastTheDeadline(t *testing.T) {
	ts := newTwoStores(t, HandlerOptions{})
	body := request(`mutation { cacheSet(key: "a", value: 1) { stored failure } }`, nil)
	send(ts.compiled, body, nil) // learn
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ask := func(h http.Handler) answer {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return answer{rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"), rec.Body.String()}
	}
	before := ts.reads.served.Load()
	got, want := ask(ts.compiled), ask(ts.plain)
	if ts.reads.served.Load() != before {
		t.Error("a plan answered a request past its deadline")
	}
	if got != want {
		t.Errorf("past the deadline, the compiled handler answered\n  %v\nwhile gqlgen answered\n  %v", got, want)
	}
}
