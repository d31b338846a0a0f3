package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
)

type fixedHealth struct{ h cache.Health }

func (f fixedHealth) Health() cache.Health { return f.h }

// BenchmarkHealth measures GET /health through its handler, for a load
// balancer (anonymous, status only) and for an operator (details).
func BenchmarkHealth(b *testing.B) {
	h := cache.Health{Status: cache.StatusConnected, Since: time.Now(), CheckedAt: time.Now(), Latency: 210 * time.Microsecond,
		Addr: "10.0.0.5:6379", Mode: cache.ModeStandalone, RESP: 3, Server: &cache.ServerInfo{Version: "redis 7.0.15", UsedMemory: 1 << 20, UptimeSeconds: 3600}}
	for _, tt := range []struct {
		name    string
		details bool
	}{{"anonymous", false}, {"details", true}} {
		hh := healthHandlers{cache: fixedHealth{h}, draining: new(atomic.Bool), details: func(*http.Request) bool { return tt.details }}
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/health", nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				hh.service(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
