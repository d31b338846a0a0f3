package graph_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// A GraphQL cacheGet through the whole handler (transport, parsed-query
// cache, resolver, cache wrapper, real redis-server), without the network
// between client and service.
func BenchmarkGraphQLCacheGet(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	for _, mode := range []struct {
		name string
		off  bool
	}{{"clientcache=on", false}, {"clientcache=off", true}} {
		c, err := cache.New(cache.Options{Addr: srv.Addr, DisableClientCache: mode.off})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := c.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := c.SetValue(ctx, "bench", map[string]any{"student": "Ada", "grades": []int{95, 87, 91}}, 0); err != nil {
			b.Fatal(err)
		}
		h := graph.NewHandler(&graph.Resolver{Cache: c}, graph.HandlerOptions{Auth: auth.OpenAccess()})
		const body = `{"query":"query($k:String!){cacheGet(key:$k)}","variables":{"k":"bench"}}`
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"Ada"`) {
						b.Errorf("response %d %s", rec.Code, rec.Body.String())
						return
					}
				}
			})
		})
		c.Close()
	}
}

// The same read through gqlgen's executor only, for comparison with the
// compiled read path.
func BenchmarkGraphQLCacheGetPaths(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c, err := cache.New(cache.Options{Addr: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.SetValue(ctx, "bench", map[string]any{"student": "Ada", "grades": []int{95, 87, 91}}, 0); err != nil {
		b.Fatal(err)
	}
	const body = `{"query":"query($k:String!){cacheGet(key:$k)}","variables":{"k":"bench"}}`
	for _, path := range []struct {
		name string
		off  bool
	}{{"compiled", false}, {"gqlgen", true}} {
		h := graph.NewHandler(&graph.Resolver{Cache: c}, graph.HandlerOptions{Auth: auth.OpenAccess(), NoCompiledReads: path.off})
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"Ada"`) {
					b.Fatalf("response %d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmark below counts what the handler allocates, not the harness.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header  { return d.h }
func (d *discardWriter) WriteHeader(code int) { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) {
	d.n += len(b)
	return len(b), nil
}

// BenchmarkCompiledCacheGetAllocs: allocations of one compiled cacheGet
// through the handler, the request's body handed on as the service's
// admission hands it (graph.BufferedBody).
func BenchmarkCompiledCacheGetAllocs(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c, err := cache.New(cache.Options{Addr: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.SetValue(ctx, "bench", map[string]any{"student": "Ada", "grades": []int{95, 87, 91}}, 0); err != nil {
		b.Fatal(err)
	}
	const query = `query($k:String!){cacheGet(key:$k)}`
	sum := sha256.Sum256([]byte(query))
	ext := `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}}`
	h := graph.NewHandler(&graph.Resolver{Cache: c}, graph.HandlerOptions{Auth: auth.OpenAccess()})
	for _, tt := range []struct{ name, learn, body string }{
		{"query", "", `{"query":"` + query + `","variables":{"k":"bench"}}`},
		// An Automatic Persisted Query by its hash, once registered.
		{"apq", `{"query":"` + query + `","variables":{"k":"bench"},` + ext + `}`, `{"variables":{"k":"bench"},` + ext + `}`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			req.Header.Set("Content-Type", "application/json")
			w := &discardWriter{h: http.Header{}}
			body := []byte(tt.body)
			if tt.learn != "" {
				req.Body = graph.BufferedBody([]byte(tt.learn))
				h.ServeHTTP(w, req)
			}
			for range 3 { // learn the plan, warm the local cache
				req.Body = graph.BufferedBody(body)
				h.ServeHTTP(w, req)
			}
			b.ReportAllocs()
			for b.Loop() {
				req.Body = graph.BufferedBody(body)
				w.n = 0
				h.ServeHTTP(w, req)
				if w.n < 30 {
					b.Fatal("no response")
				}
			}
		})
	}
}

// BenchmarkCompiledCacheSetAllocs: allocations of one compiled cacheSet
// through the handler, by value size, with the same harness as
// BenchmarkCompiledCacheGetAllocs, beside gqlgen's path for the same
// request. B/KB is the bytes allocated per KiB of value: the value's own
// stored copy is one KiB of it.
func BenchmarkCompiledCacheSetAllocs(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c, err := cache.New(cache.Options{Addr: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	const query = `mutation($k:String!,$v:JSON){cacheSet(key:$k,value:$v){stored}}`
	for _, path := range []struct {
		name string
		off  bool
	}{{"compiled", false}, {"gqlgen", true}} {
		h := graph.NewHandler(&graph.Resolver{Cache: c}, graph.HandlerOptions{Auth: auth.OpenAccess(), NoCompiledReads: path.off})
		for _, size := range []int{100, 10 << 10, 100 << 10} {
			// An object of the size: a name and a padding string.
			value := `{"student":"Ada","notes":"` + strings.Repeat("x", size-len(`{"student":"Ada","notes":""}`)) + `"}`
			body := []byte(`{"query":"` + query + `","variables":{"k":"bench","v":` + value + `}}`)
			b.Run(fmt.Sprintf("%s/value=%dB", path.name, size), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
				req.Header.Set("Content-Type", "application/json")
				w := &discardWriter{h: http.Header{}}
				for range 3 { // learn the plan
					req.Body = graph.BufferedBody(body)
					h.ServeHTTP(w, req)
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				for b.Loop() {
					req.Body = graph.BufferedBody(body)
					w.n = 0
					h.ServeHTTP(w, req)
					if w.n != len(`{"data":{"cacheSet":{"stored":true}}}`) {
						b.Fatal("not stored")
					}
				}
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(float64(size)/1024), "B/KB")
			})
		}
	}
}
