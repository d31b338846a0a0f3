package graph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
