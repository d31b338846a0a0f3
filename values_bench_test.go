package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// benchJSON is a JSON object of exactly n bytes (n at least 64): records,
// then padding, as bench/run seeds for its large-value rows.
func benchJSON(n int) string {
	var sb strings.Builder
	sb.WriteString(`{"students":[`)
	for i := 0; sb.Len() < n-200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"name":"Student %05d","class":"7B","paid":true}`, i, i)
	}
	sb.WriteString(`],"pad":"`)
	for sb.Len() < n-2 {
		sb.WriteByte('x')
	}
	sb.WriteString(`"}`)
	return sb.String()
}

// BenchmarkServerValues: cacheGet (client-side caching on, the default)
// and cacheSet through every layer of the handler, as BenchmarkServer, at
// values of 100 B, 10 KB and 100 KB, in staging with a token. Besides
// allocations per request it reports bytes allocated per KB of value
// (alloc-B/KB), the measure of how many times the value path copies the
// bytes (issues 16 and 20: at most 1.2 KB per KB).
func BenchmarkServerValues(b *testing.B) {
	env := map[string]string{"APP_ENV": "staging", "LOG_LEVEL": "error", "REDIS_TLS": "false",
		"RATE_LIMIT_ANONYMOUS": "0", "API_TOKENS": "bench:write:0123456789abcdef0123"}
	h, bearer := benchServer(b, env)
	// One request and one reader, reset each time, as BenchmarkServer: the
	// allocations counted are then the server's, not the harness's.
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	reader := strings.NewReader("")
	serve := func(body string, w http.ResponseWriter) {
		reader.Reset(body)
		req.Body = io.NopCloser(reader)
		req.ContentLength = int64(len(body))
		h.ServeHTTP(w, req)
	}
	for _, size := range []int{100, 10 << 10, 100 << 10} {
		value := benchJSON(size)
		key := fmt.Sprintf("benchvalue%d", size)
		setBody := `{"query":"mutation($k:String!,$v:JSON!){cacheSet(key:$k,value:$v,ttlSeconds:600){stored}}","variables":{"k":"` + key + `","v":` + value + `}}`
		getBody := `{"query":"query($k:String!){cacheGet(key:$k)}","variables":{"k":"` + key + `"}}`
		for _, op := range []struct{ name, body, want string }{
			{"cacheSet", setBody, `"stored":true`},
			{"cacheGet", getBody, `"pad":"xx`},
		} {
			b.Run(fmt.Sprintf("%s/%dB", op.name, size), func(b *testing.B) {
				w := &discard{h: http.Header{}}
				var resp strings.Builder
				for range 3 {
					serve(op.body, w)
				}
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for b.Loop() {
					w.n = 0
					clear(w.h)
					serve(op.body, w)
				}
				b.StopTimer()
				runtime.ReadMemStats(&after)
				// The response arrives in pieces; check the whole of one.
				serve(op.body, &collect{discard: discard{h: http.Header{}}, sb: &resp})
				if !strings.Contains(resp.String(), op.want) {
					b.Fatalf("response %.300s; want %s", resp.String(), op.want)
				}
				perReq := float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
				b.ReportMetric(perReq/(float64(size)/1024), "alloc-B/KB")
			})
		}
	}
}

// collect keeps the whole response, to check it after the timed loop.
type collect struct {
	discard
	sb *strings.Builder
}

func (c *collect) Write(p []byte) (int, error) {
	c.sb.Write(p)
	return len(p), nil
}
