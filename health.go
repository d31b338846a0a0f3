package main

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/school-erp/cache-service/cache"
)

// healthHandlers serve the REST health endpoints from the cache's last probe
// snapshot: a load balancer polling them sends nothing to Redis.
type healthHandlers struct {
	cache         interface{ Health() cache.Health }
	draining      *atomic.Bool
	redisRequired bool
	// details says whether the caller may see more than the status:
	// latency, memory, version and errors tell an attacker about the
	// deployment, so an anonymous caller outside development gets the
	// status only.
	details func(*http.Request) bool
}

// statusOnly is what an anonymous caller sees of Redis in staging and
// production.
type statusOnly struct {
	Status cache.Status `json:"status"`
}

// envelope is the platform's API response format.
type envelope struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type serviceHealth struct {
	// Status is "ok" while Redis is connected, "degraded" while the service
	// runs without a healthy cache, "shutting_down" while draining.
	Status string `json:"status"`
	Redis  any    `json:"redis"` // redisHealth, or statusOnly
}

// redisHealth is the seed story's format (status, latencyMs, memoryUsage,
// uptime) plus fields that help an operator; unknown values are null.
type redisHealth struct {
	Status        cache.Status `json:"status"`
	LatencyMs     *float64     `json:"latencyMs"`
	MemoryUsage   *string      `json:"memoryUsage"`
	Uptime        *int64       `json:"uptime"`
	ServerVersion *string      `json:"serverVersion"`
	Reason        *string      `json:"reason"`
	LastError     *string      `json:"lastError"`
	LastErrorAt   *time.Time   `json:"lastErrorAt"`
	StatusSince   time.Time    `json:"statusSince"`
	CheckedAt     *time.Time   `json:"checkedAt"`
	Addr          string       `json:"addr"`
	Mode          *cache.Mode  `json:"mode"`
	TLS           bool         `json:"tls"`
	RESPVersion   *int         `json:"respVersion"`
	Cluster       *clusterJSON `json:"cluster,omitempty"`
	Breaker       string       `json:"breaker"`
	ClientCache   string       `json:"clientCache"`
	Fallback      fallbackJSON `json:"fallback"`
}

type fallbackJSON struct {
	Mode    cache.FallbackMode `json:"mode"`
	Active  bool               `json:"active"`
	Entries int                `json:"entries"`
	Bytes   uint64             `json:"bytes"`
}

type clusterJSON struct {
	State      string `json:"state"`
	KnownNodes int    `json:"knownNodes"`
	Nodes      int    `json:"nodes"`
	Reachable  int    `json:"reachable"`
}

func newRedisHealth(h cache.Health) redisHealth {
	out := redisHealth{
		Status: h.Status, StatusSince: h.Since.UTC(), Addr: h.Addr, TLS: h.TLS, Breaker: string(h.Breaker), ClientCache: string(h.ClientCache),
		Fallback: fallbackJSON{Mode: h.Fallback.Mode, Active: h.Fallback.Active, Entries: h.Fallback.Entries, Bytes: h.Fallback.Bytes},
	}
	if h.Mode != "" {
		out.Mode = &h.Mode
	}
	if h.RESP > 0 {
		out.RESPVersion = &h.RESP
	}
	if cl := h.Cluster; cl != nil {
		out.Cluster = &clusterJSON{State: cl.State, KnownNodes: cl.KnownNodes, Nodes: cl.Nodes, Reachable: cl.Reachable}
	}
	if h.Latency > 0 {
		ms := h.LatencyMs()
		out.LatencyMs = &ms
	}
	if s := h.Server; s != nil {
		mem := s.MemoryUsage()
		out.MemoryUsage, out.Uptime, out.ServerVersion = &mem, &s.UptimeSeconds, &s.Version
	}
	if h.Reason != "" {
		out.Reason = &h.Reason
	}
	if h.LastError != "" {
		at := h.LastErrorAt.UTC()
		out.LastError, out.LastErrorAt = &h.LastError, &at
	}
	if !h.CheckedAt.IsZero() {
		at := h.CheckedAt.UTC()
		out.CheckedAt = &at
	}
	return out
}

// service answers GET /health: 200 while the service can serve requests,
// Redis down included (a shared Redis blip must not make a load balancer
// pull every instance at once); 503 while shutting down, and whenever Redis
// is not connected if REDIS_REQUIRED is set.
func (h healthHandlers) service(w http.ResponseWriter, r *http.Request) {
	rh := h.cache.Health()
	body := serviceHealth{Status: "ok", Redis: h.view(r, rh)}
	code := http.StatusOK
	switch {
	case h.draining.Load():
		body.Status, code = "shutting_down", http.StatusServiceUnavailable
	case rh.Status != cache.StatusConnected:
		body.Status = "degraded"
		if h.redisRequired {
			code = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, envelope{Success: true, Data: body})
}

// redis answers GET /health/redis: 200 while Redis is connected or
// degraded, 503 while it is disconnected, for monitors that watch Redis
// itself. Load balancers should poll /health instead.
func (h healthHandlers) redis(w http.ResponseWriter, r *http.Request) {
	rh := h.cache.Health()
	code := http.StatusOK
	if rh.Status == cache.StatusDisconnected {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, envelope{Success: true, Data: h.view(r, rh)})
}

func (h healthHandlers) view(r *http.Request, rh cache.Health) any {
	if h.details == nil || h.details(r) {
		return newRedisHealth(rh)
	}
	return statusOnly{Status: rh.Status}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"success":false}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
