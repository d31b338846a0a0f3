package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/redistest"
)

// Resource bounds, measured on the built binary: what one request can make
// the process hold.

const mib = 1 << 20

// memory is a process's resident set size now and its peak (VmRSS and
// VmHWM in /proc/PID/status), in bytes.
func memory(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read memory from: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case err != nil:
		case name == "VmRSS":
			rss = kb << 10
		case name == "VmHWM":
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return rss, peak
}

// resetPeak sets the process's VmHWM to its current RSS (clear_refs 5), so
// that the next peak read is the peak since now.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// postRaw sends body as it is (no re-encoding: Go's encoder would repair
// invalid UTF-8 on the way) and decodes the response.
func postBody(t *testing.T, url, bearer, body string) fullResponse {
	t.Helper()
	code, _, raw := send(t, http.MethodPost, url+"/graphql", bearer, body)
	var r fullResponse
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("POST %.200s: HTTP %d, response not JSON: %.500s", body, code, raw)
	}
	r.status = code
	return r
}

func (r fullResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// filler is n bytes of text that differs for each seed, so no two
// documents are the same.
func filler(seed, n int) string {
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n {
		fmt.Fprintf(&b, "%d-%x ", seed, b.Len())
	}
	return b.String()[:n]
}

// TestDocumentCachesAreBoundedInBytes: the parsed-document cache and the
// APQ store hold bytes, not a count of documents. 60 distinct 1 MiB
// documents (half registered as Automatic Persisted Queries) sent with a
// read token once kept about 66 MiB in the process.
func TestDocumentCachesAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := productionEnv(srv.Addr)
	env["APP_ENV"] = "staging"
	p := startBinary(t, env)
	pid := p.cmd.Process.Pid

	post := func(query string, apq bool) fullResponse {
		body := map[string]any{"query": query}
		if apq {
			body["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(query)}}
		}
		b, _ := json.Marshal(body)
		return postBody(t, p.url, readToken, string(b))
	}
	// Warm up every path the documents take, with small documents.
	for i := range 20 {
		post(fmt.Sprintf(`{ cacheExists(key: "k") } # %d`, i), i%2 == 0)
		post(fmt.Sprintf(`{ cacheExists(key: "%s") }`, filler(i, 600)), i%2 == 0)
	}
	time.Sleep(200 * time.Millisecond)
	before, _ := memory(t, pid)
	for i := range 60 {
		// Half carry the megabyte in a comment, half in a string (a key
		// too long for the key rules, refused when the field runs): both
		// are parsed, validated and, before, cached.
		q := `{ cacheExists(key: "k") } #` + filler(i, mib)
		want := ""
		if i%2 == 1 {
			q = `{ cacheExists(key: "` + filler(i, mib) + `") }`
			want = "BAD_USER_INPUT"
		}
		if r := post(q, i < 30); r.code() != want || r.status != http.StatusOK {
			t.Fatalf("document %d: HTTP %d, code %q; want 200, %q (%+v)", i, r.status, r.code(), want, r.Errors)
		}
	}
	after, peak := memory(t, pid)
	t.Logf("RSS %d MiB before, %d MiB after 60 documents of 1 MiB (peak %d MiB): grew %.1f MiB",
		before/mib, after/mib, peak/mib, float64(after-before)/mib)
	if grew := after - before; grew >= 40*mib {
		t.Errorf("60 distinct 1 MiB documents grew RSS by %.1f MiB; want less than 40 MiB", float64(grew)/mib)
	}
}

// bigValue writes a value of n bytes of JSON directly to Redis at key (the
// service would not take it in one request with every limit at its
// default; another program may have written it).
func bigValue(t *testing.T, srv *redistest.Server, key string, n int) {
	t.Helper()
	if _, err := srv.Do(t, "SET", "school-erp:"+key, `"`+strings.Repeat("v", n-2)+`"`); err != nil {
		t.Fatal(err)
	}
}

// keysQuery is a query of cacheGetMany fields, each aliased and reading the
// keys given for it.
func keysQuery(fields map[string][]string) string {
	var b strings.Builder
	b.WriteString("{")
	for alias, keys := range fields {
		k, _ := json.Marshal(keys)
		fmt.Fprintf(&b, " %s: cacheGetMany(keys: %s)", alias, k)
	}
	b.WriteString(" }")
	return b.String()
}

// TestResponseBudget: the values a request would return are counted as they
// are read, and past GRAPHQL_MAX_RESPONSE_BYTES the request is refused with
// RESPONSE_TOO_LARGE, naming the fields. Two aliased cacheGetMany of 100 ×
// a 1 MB key once built a 190 MiB response and grew the process by about
// 860 MiB.
func TestResponseBudget(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "LOG_FORMAT": "json"})
	pid := p.cmd.Process.Pid
	p.set(t, "small", 1)
	bigValue(t, srv, "big", 1000000)

	query := keysQuery(map[string][]string{"a": keyList(100, func(int) string { return "big" }), "b": keyList(100, func(int) string { return "big" })})
	body, _ := json.Marshal(map[string]any{"query": query})
	// Warm up: the same shape, small.
	small := keysQuery(map[string][]string{"a": keyList(100, func(int) string { return "small" }), "b": keyList(100, func(int) string { return "small" })})
	smallBody, _ := json.Marshal(map[string]any{"query": small})
	if r := postBody(t, p.url, "", string(smallBody)); r.code() != "" {
		t.Fatalf("100 small keys twice: %+v", r.Errors)
	}
	time.Sleep(200 * time.Millisecond)
	before, _ := memory(t, pid)
	resetPeak(t, pid)
	r := postBody(t, p.url, "", string(body))
	after, peak := memory(t, pid)
	t.Logf("RSS %d MiB before; after the request %d MiB, peak %d MiB: peak growth %.1f MiB",
		before/mib, after/mib, peak/mib, float64(peak-before)/mib)
	if r.code() != "RESPONSE_TOO_LARGE" || len(r.Errors) != 1 || string(r.Data) != "null" {
		t.Errorf("two cacheGetMany of 100 × a 1 MB value = HTTP %d, data %.100s, errors %+v; want data null and one RESPONSE_TOO_LARGE", r.status, r.Data, r.Errors)
	} else if e := r.Errors[0]; fmt.Sprint(e.Extensions["fields"]) != "[a b]" || !strings.Contains(e.Message, "a (") || !strings.Contains(e.Message, "b (") || !strings.Contains(e.Message, "GRAPHQL_MAX_RESPONSE_BYTES") {
		t.Errorf("error %+v does not name the fields a and b and the limit", e)
	}
	if len(r.Errors) > 0 {
		t.Log(r.Errors[0].Message)
	}
	if grew := peak - before; grew >= 150*mib {
		t.Errorf("the refused request grew the process by %.1f MiB at its peak; want less than 150 MiB", float64(grew)/mib)
	}
	if strings.Contains(p.stdout.String(), `"level":"ERROR"`) {
		t.Errorf("a refused response was logged as an error:\n%.2000s", p.stdout)
	}
}

// TestWorstResponses measures the peak memory of the largest requests the
// default limits allow: the largest response (values up to
// GRAPHQL_MAX_RESPONSE_BYTES, from distinct keys each as large as
// CACHE_MAX_VALUE_BYTES allows), and the largest refused one (every key of
// two cacheGetMany a distinct value of that size). README quotes the
// figures: go test -run TestWorstResponses -v .
func TestWorstResponses(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	const valueBytes = 1 << 20 // CACHE_MAX_VALUE_BYTES
	for i := range 200 {
		bigValue(t, srv, fmt.Sprintf("big%d", i), valueBytes)
	}
	tests := []struct {
		name     string
		fields   map[string][]string
		wantCode string
		// limit on the peak growth of RSS, in MiB
		limit int64
	}{
		{"16 distinct 1 MiB values (16 MiB: the budget)", map[string][]string{"a": keyList(16, func(i int) string { return fmt.Sprintf("big%d", i) })}, "", 150},
		{"two cacheGetMany of 100 distinct 1 MiB values (refused)", map[string][]string{
			"a": keyList(100, func(i int) string { return fmt.Sprintf("big%d", i) }),
			"b": keyList(100, func(i int) string { return fmt.Sprintf("big%d", 100+i) }),
		}, "RESPONSE_TOO_LARGE", 100},
	}
	for _, tt := range tests {
		// A process of its own for each: the heap one request leaves
		// behind would hide the next one's growth.
		p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "LOG_FORMAT": "json"})
		pid := p.cmd.Process.Pid
		p.set(t, "small", 1)
		body, _ := json.Marshal(map[string]any{"query": keysQuery(tt.fields)})
		time.Sleep(200 * time.Millisecond)
		before, _ := memory(t, pid)
		resetPeak(t, pid)
		r := postBody(t, p.url, "", string(body))
		_, peak := memory(t, pid)
		t.Logf("%s: RSS %d MiB before, peak %d MiB: peak growth %.1f MiB", tt.name, before/mib, peak/mib, float64(peak-before)/mib)
		if r.code() != tt.wantCode {
			t.Errorf("%s: code %q (%.300s); want %q", tt.name, r.code(), fmt.Sprint(r.Errors), tt.wantCode)
		}
		if tt.wantCode != "" && len(r.Errors) > 0 {
			t.Logf("%s: %s", tt.name, r.Errors[0].Message)
		}
		if grew := peak - before; grew >= tt.limit*mib {
			t.Errorf("%s: peak growth %.1f MiB; want less than %d MiB", tt.name, float64(grew)/mib, tt.limit)
		}
	}
}

// TestInvalidUnicodeIsRefused: invalid UTF-8 and lone surrogate escapes
// anywhere in a request's strings were replaced by U+FFFD before the key
// rules ran, so that different byte sequences from clients became the same
// key. Such a request is refused (INVALID_UTF8) before anything is decoded
// into a key or value; nothing is stored.
func TestInvalidUnicodeIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	const set = `"query":"mutation($k: String!, $v: JSON!) { cacheSet(key: $k, value: $v) { stored } }"`
	literal := func(key string) string {
		return `{"query":"mutation { cacheSet(key: \"` + key + `\", value: 1) { stored } }"}`
	}
	for _, tt := range []struct{ name, body string }{
		{"variable key with an invalid byte", `{` + set + `,"variables":{"k":"a` + "\xff" + `b","v":1}}`},
		{"variable key with a lone leading surrogate", `{` + set + `,"variables":{"k":"a\ud800b","v":1}}`},
		{"variable key with a lone trailing surrogate", `{` + set + `,"variables":{"k":"a\udc00b","v":1}}`},
		{"variable key with a leading surrogate before a non-surrogate", `{` + set + `,"variables":{"k":"\ud800\u0041","v":1}}`},
		{"variable value with a lone surrogate", `{` + set + `,"variables":{"k":"v","v":{"x":["\udbff"]}}}`},
		{"variable value with a lone surrogate in an object key", `{` + set + `,"variables":{"k":"v","v":{"\ud800":1}}}`},
		{"literal key with an invalid byte", literal("a\xc3b")},
		{"literal key with a lone surrogate escape", literal(`a\\ud800b`)},
		{"literal key with a lone trailing surrogate escape", literal(`\\udfff`)},
		{"literal value with a lone surrogate escape", `{"query":"mutation { cacheSet(key: \"v\", value: {x: \"\\ud800\"}) { stored } }"}`},
		{"operation name with an invalid byte", `{` + set + `,"operationName":"` + "\xfe" + `","variables":{"k":"v","v":1}}`},
	} {
		r := postBody(t, svc.url, "", tt.body)
		if r.status != http.StatusBadRequest || r.code() != "INVALID_UTF8" {
			t.Errorf("%s: HTTP %d, code %q (%+v); want 400 INVALID_UTF8", tt.name, r.status, r.code(), r.Errors)
		}
	}
	for _, tt := range []struct{ name, query string }{
		{"GET, literal key with an invalid byte", "query=" + url.QueryEscape(`{ cacheGet(key: "a`+"\xff"+`") }`)},
		{"GET, literal key with a lone surrogate escape", "query=" + url.QueryEscape(`{ cacheGet(key: "\ud800") }`)},
		{"GET, variable with a lone surrogate", "query=" + url.QueryEscape(`query($k: String!) { cacheGet(key: $k) }`) + "&variables=" + url.QueryEscape(`{"k":"\ud800"}`)},
	} {
		code, _, raw := send(t, http.MethodGet, svc.url+"/graphql?"+tt.query, "", "")
		if code != http.StatusBadRequest || !strings.Contains(raw, `"INVALID_UTF8"`) {
			t.Errorf("%s: HTTP %d %s; want 400 INVALID_UTF8", tt.name, code, raw)
		}
	}
	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "0" {
		t.Errorf("DBSIZE = %s, %v after refused requests; want 0", n, err)
	}

	// Surrogate pairs are one character, the same however it is written;
	// escapes in comments and block strings are not escapes.
	for _, body := range []string{
		`{` + set + `,"variables":{"k":"\ud83d\ude00","v":1}}`,
		literal(`\\ud83d\\ude00`),
		literal(`\\u{1F600}`),
		`{"query":"mutation { cacheSet(key: \"😀\", value: \"\"\"\\ud800\"\"\") { stored } } # \\ud800"}`,
	} {
		if r := postBody(t, svc.url, "", body); r.status != http.StatusOK || r.code() != "" {
			t.Errorf("POST %s: HTTP %d %+v; want stored", body, r.status, r.Errors)
		}
	}
	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "1" {
		t.Errorf("DBSIZE = %s, %v; want the one key 😀, written four ways", n, err)
	}
	if v, err := srv.Do(t, "GET", "school-erp:😀"); err != nil || v != `"\\ud800"` {
		t.Errorf("GET school-erp:😀 = %s, %v; want the block string, its backslash kept", v, err)
	}
	if strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
		t.Errorf("refused requests were logged as errors:\n%s", svc.logs)
	}
}

// TestNumberRulesForVariables: a number a literal may not hold (1e400, an
// integer beyond 64 bits) was refused as a literal but stored verbatim when
// it came as a variable; the same rules apply to both.
func TestNumberRulesForVariables(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	const set = `{"query":"mutation($v: JSON!) { cacheSet(key: \"n\", value: $v) { stored } }","variables":{"v":%s}}`
	for _, v := range []string{`1e400`, `-1e999`, `123456789012345678901234567890`, `{"deep":[1,{"x":1.5e309}]}`} {
		r := postBody(t, svc.url, "", fmt.Sprintf(set, v))
		if r.status != http.StatusOK || r.code() != "BAD_USER_INPUT" {
			t.Errorf("value %s as a variable: HTTP %d %+v; want BAD_USER_INPUT, as for a literal", v, r.status, r.Errors)
		}
		lit := postBody(t, svc.url, "", `{"query":"mutation { cacheSet(key: \"n\", value: `+strings.ReplaceAll(v, `"`, "")+`) { stored } }"}`)
		if lit.code() != r.code() {
			t.Errorf("value %s: as a literal %q, as a variable %q; want the same", v, lit.code(), r.code())
		}
	}
	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "0" {
		t.Errorf("DBSIZE = %s, %v; want nothing stored", n, err)
	}
	for _, v := range []string{`1e300`, `-9223372036854775808`, `0.1`, `1e-400`, `{"deep":[1,{"x":2.5}]}`} {
		if r := postBody(t, svc.url, "", fmt.Sprintf(set, v)); r.code() != "" {
			t.Errorf("value %s as a variable: %+v; want stored", v, r.Errors)
		}
	}
}

// TestPersistedQueryCodes: each way an Automatic Persisted Query can fail
// has its own code, none of them logged as an error.
func TestPersistedQueryCodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, productionEnv(srv.Addr))
	svc.bearer = readToken
	const query = `{ cacheExists(key: "apq") }`
	ext := func(version any, hash string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": version, "sha256Hash": hash}}
	}
	tests := []struct {
		name string
		body map[string]any
		code string
	}{
		{"unknown hash", map[string]any{"extensions": ext(1, sha(query))}, "PERSISTED_QUERY_NOT_FOUND"},
		{"hash that does not match the query", map[string]any{"query": query, "extensions": ext(1, sha(query+" "))}, "PERSISTED_QUERY_HASH_MISMATCH"},
		{"unsupported version", map[string]any{"query": query, "extensions": ext(2, sha(query))}, "PERSISTED_QUERY_VERSION_UNSUPPORTED"},
		{"unsupported version, hash alone", map[string]any{"extensions": ext(0, sha(query))}, "PERSISTED_QUERY_VERSION_UNSUPPORTED"},
		{"extension that is not an object", map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": "x"}}, "BAD_REQUEST"},
		{"registration", map[string]any{"query": query, "extensions": ext(1, sha(query))}, ""},
		{"hash alone, registered", map[string]any{"extensions": ext(1, sha(query))}, ""},
	}
	for _, tt := range tests {
		for range 3 { // repeated: never a log line
			r := svc.post(t, tt.body)
			if r.status != http.StatusOK || r.code() != tt.code {
				t.Errorf("%s: HTTP %d, code %q (%+v); want 200, %q", tt.name, r.status, r.code(), r.Errors, tt.code)
			}
		}
	}
	if strings.Contains(svc.logs.String(), `"level":"ERROR"`) {
		t.Errorf("APQ failures were logged as errors:\n%s", svc.logs)
	}
}

// TestGraphDefaultsAgree: the defaults config documents are the
// ones graph applies.
func TestGraphDefaultsAgree(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name          string
		config, graph int
	}{
		{"GRAPHQL_QUERY_CACHE_BYTES", cfg.GraphQLQueryCacheBytes, graph.DefaultQueryCacheBytes},
		{"GRAPHQL_APQ_CACHE_BYTES", cfg.GraphQLAPQCacheBytes, graph.DefaultPersistedQueryCacheBytes},
		{"GRAPHQL_CACHE_MAX_DOCUMENT_BYTES", cfg.GraphQLCacheMaxDocumentBytes, graph.DefaultMaxCachedDocumentBytes},
		{"GRAPHQL_MAX_RESPONSE_BYTES", cfg.GraphQLMaxResponseBytes, graph.DefaultMaxResponseBytes},
	} {
		if d.config != d.graph {
			t.Errorf("%s defaults to %d; graph's default is %d", d.name, d.config, d.graph)
		}
	}
}
