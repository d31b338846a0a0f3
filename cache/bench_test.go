package cache_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The wrapper against a real redis-server, with client-side caching on and
// off, serially and with parallel callers (valkey-go pipelines concurrent
// commands on one connection).
func BenchmarkClient(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	value := json.RawMessage(`{"student":"Ada Lovelace","grades":[95,87.5,91],"active":true,"class":"7B"}`)
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
		if _, err := c.Set(ctx, "bench", value, 0); err != nil {
			b.Fatal(err)
		}
		b.Run("Get/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, _, err := c.Get(ctx, "bench"); err != nil || v == nil {
					b.Fatalf("Get = %s, %v", v, err)
				}
			}
		})
		b.Run("GetParallel/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := c.Get(ctx, "bench"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		// What announcing each write costs (one PUBLISH after it):
		// Set/...changes=off is the same client with DisableChanges.
		b.Run("Set/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := c.Set(ctx, "bench:"+strconv.Itoa(i%1000), value, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		c.Close()
		quiet, err := cache.New(cache.Options{Addr: srv.Addr, DisableClientCache: mode.off, DisableChanges: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := quiet.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run("Set/"+mode.name+"/changes=off", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := quiet.Set(ctx, "bench:"+strconv.Itoa(i%1000), value, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		quiet.Close()
	}
}
