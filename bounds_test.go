package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
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
func memory(t *testing.T, pid int) (rss, peak int64) {
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

// postRaw sends body as it is (no re-encoding: Go's encoder would repair
// invalid UTF-8 on the way) and decodes the response.
func postRaw(t *testing.T, url, bearer, body string) fullResponse {
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
		return postRaw(t, p.url, readToken, string(b))
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

// TestDocumentCacheDefaultsAgree: the defaults config documents are the
// ones graph applies.
func TestDocumentCacheDefaultsAgree(t *testing.T) {
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
	} {
		if d.config != d.graph {
			t.Errorf("%s defaults to %d; graph's default is %d", d.name, d.config, d.graph)
		}
	}
}
