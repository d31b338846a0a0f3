package main

import (
	"encoding/json"
	"net/http"
	"strings"
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
	// version is the service's build (buildVersion), shown with details.
	version string
	// details says whether the caller may see more than the status:
	// latency, memory, version and errors tell an attacker about the
	// deployment, so an anonymous caller outside development gets the
	// status only.
	details func(*http.Request) bool
	// The last detailed bodies of /health and /health/redis, by the
	// snapshot they were rendered from: a snapshot changes with a probe (or
	// a fallback write), and pollers with a token ask far more often.
	serviceMemo, redisMemo healthMemo
}

// healthMemo holds one rendered body and what it was rendered from.
type healthMemo struct {
	last atomic.Pointer[renderedHealth]
}

type renderedHealth struct {
	h      cache.Health
	status string
	body   []byte
}

// body returns the JSON of build(), rendered again only when h or status
// differ from the last call's (Health is a comparable value: its pointers
// are replaced, never changed in place, when a probe finds something new).
func (m *healthMemo) body(h cache.Health, status string, build func() any) ([]byte, error) {
	if last := m.last.Load(); last != nil && last.h == h && last.status == status {
		return last.body, nil
	}
	b, err := json.Marshal(build())
	if err != nil {
		return nil, err
	}
	m.last.Store(&renderedHealth{h: h, status: status, body: b})
	return b, nil
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
	// Version is the service's build, with details only.
	Version string `json:"version,omitempty"`
	Redis   any    `json:"redis"` // redisHealth, or statusOnly
}

// redisHealth is the seed story's format (status, latencyMs, memoryUsage,
// uptime) plus fields that help an operator; unknown values are null.
type redisHealth struct {
	Status      cache.Status `json:"status"`
	LatencyMs   *float64     `json:"latencyMs"`
	MemoryUsage *string      `json:"memoryUsage"`
	Uptime      *int64       `json:"uptime"`
	// UptimeSeconds is Uptime again, under the name GraphQL's redisHealth
	// gives it, so a caller moving between the two finds it either way.
	UptimeSeconds *int64       `json:"uptimeSeconds"`
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
	// ConnectionResets counts connections Redis or the network closed
	// under the service, ridden through; LastConnectionResetAt is the last.
	ConnectionResets      uint64     `json:"connectionResets"`
	LastConnectionResetAt *time.Time `json:"lastConnectionResetAt"`
	// Version is the service's build (not Redis's: that is serverVersion),
	// in /health/redis only: /health has it beside the redis object.
	Version string `json:"version,omitempty"`
}

type fallbackJSON struct {
	Mode    cache.FallbackMode `json:"mode"`
	Active  bool               `json:"active"`
	Off     *string            `json:"off"`
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
		Fallback:         fallbackJSON{Mode: h.Fallback.Mode, Active: h.Fallback.Active, Entries: h.Fallback.Entries, Bytes: h.Fallback.Bytes},
		ConnectionResets: h.ConnectionResets,
	}
	if h.Fallback.Off != "" {
		out.Fallback.Off = &h.Fallback.Off
	}
	if !h.LastConnectionResetAt.IsZero() {
		at := h.LastConnectionResetAt.UTC()
		out.LastConnectionResetAt = &at
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
		out.MemoryUsage, out.Uptime, out.UptimeSeconds, out.ServerVersion = &mem, &s.UptimeSeconds, &s.UptimeSeconds, &s.Version
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
func (h *healthHandlers) service(w http.ResponseWriter, r *http.Request) {
	rh := h.cache.Health()
	status, code := "ok", http.StatusOK
	draining := h.draining.Load()
	switch {
	case draining:
		status, code = "shutting_down", http.StatusServiceUnavailable
	case rh.Status != cache.StatusConnected:
		status = "degraded"
		if h.redisRequired {
			code = http.StatusServiceUnavailable
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/health+json") {
		h.healthDraft(w, r, rh, code, draining)
		return
	}
	if !h.showDetails(r) {
		// What load balancers poll: a handful of possible bodies, rendered
		// once.
		writeBody(w, code, statusBodies[[2]string{status, string(rh.Status)}])
		return
	}
	b, err := h.serviceMemo.body(rh, status, func() any {
		return envelope{Success: true, Data: serviceHealth{Status: status, Version: h.version, Redis: newRedisHealth(rh)}}
	})
	writeRendered(w, code, b, err)
}

// redis answers GET /health/redis: 200 while Redis is connected or
// degraded, 503 while it is disconnected, for monitors that watch Redis
// itself. Load balancers should poll /health instead.
func (h *healthHandlers) redis(w http.ResponseWriter, r *http.Request) {
	rh := h.cache.Health()
	code := http.StatusOK
	if rh.Status == cache.StatusDisconnected {
		code = http.StatusServiceUnavailable
	}
	if !h.showDetails(r) {
		writeJSON(w, code, envelope{Success: true, Data: statusOnly{Status: rh.Status}})
		return
	}
	b, err := h.redisMemo.body(rh, "", func() any {
		out := newRedisHealth(rh)
		out.Version = h.version
		return envelope{Success: true, Data: out}
	})
	writeRendered(w, code, b, err)
}

func (h *healthHandlers) showDetails(r *http.Request) bool {
	return h.details == nil || h.details(r)
}

// statusBodies are the anonymous GET /health bodies, by service status and
// Redis status.
var statusBodies = func() map[[2]string][]byte {
	out := map[[2]string][]byte{}
	for _, service := range []string{"ok", "degraded", "shutting_down"} {
		for _, redis := range []cache.Status{cache.StatusConnected, cache.StatusDegraded, cache.StatusDisconnected} {
			b, _ := json.Marshal(envelope{Success: true, Data: serviceHealth{Status: service, Redis: statusOnly{Status: redis}}})
			out[[2]string{service, string(redis)}] = b
		}
	}
	return out
}()

// livez answers GET /livez: the process is alive and serving HTTP. It
// never looks at Redis, so an orchestrator does not restart instances
// because a shared Redis is down.
func (h *healthHandlers) livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: map[string]string{"status": "alive"}})
}

// readyz answers GET /readyz: 503 while starting (until the first attempt
// to reach Redis has finished, so traffic does not arrive before the cache
// had its chance), while draining on shutdown, and, only with
// REDIS_REQUIRED, while Redis is not connected.
func (h *healthHandlers) readyz(w http.ResponseWriter, _ *http.Request) {
	rh := h.cache.Health()
	status, code := "ready", http.StatusOK
	switch {
	case h.draining.Load():
		status, code = "shutting_down", http.StatusServiceUnavailable
	case rh.Status == cache.StatusDisconnected && rh.Reason == cache.ReasonConnecting:
		status, code = "starting", http.StatusServiceUnavailable
	case h.redisRequired && rh.Status != cache.StatusConnected:
		status, code = "redis_"+string(rh.Status), http.StatusServiceUnavailable
	}
	writeJSON(w, code, envelope{Success: true, Data: map[string]string{"status": status}})
}

// healthJSON is the IETF "Health Check Response Format for HTTP APIs"
// draft (application/health+json), which some probers and dashboards read.
type healthJSON struct {
	Status      string                   `json:"status"` // pass, warn, fail
	Version     string                   `json:"version,omitempty"`
	ServiceID   string                   `json:"serviceId"`
	Description string                   `json:"description"`
	Output      string                   `json:"output,omitempty"`
	Checks      map[string][]healthCheck `json:"checks,omitempty"`
}

type healthCheck struct {
	ComponentType string   `json:"componentType"`
	ObservedValue *float64 `json:"observedValue,omitempty"`
	ObservedUnit  string   `json:"observedUnit,omitempty"`
	Status        string   `json:"status"`
	Time          string   `json:"time,omitempty"`
	Output        string   `json:"output,omitempty"`
}

var draftStatus = map[cache.Status]string{
	cache.StatusConnected:    "pass",
	cache.StatusDegraded:     "warn",
	cache.StatusDisconnected: "fail",
}

// healthDraft renders /health in the draft format: the service passes
// while Redis is connected, warns while it serves without a healthy cache,
// fails while draining (or, with REDIS_REQUIRED, whenever Redis is not
// connected). The HTTP status is the same as for the default format.
func (h *healthHandlers) healthDraft(w http.ResponseWriter, r *http.Request, rh cache.Health, code int, draining bool) {
	body := healthJSON{Status: "pass", ServiceID: "school-erp-cache", Description: "School ERP cache API"}
	switch {
	case draining:
		body.Status, body.Output = "fail", "shutting down"
	case code != http.StatusOK:
		body.Status, body.Output = "fail", "redis is required and not connected"
	case rh.Status != cache.StatusConnected:
		body.Status = "warn"
	}
	check := healthCheck{ComponentType: "datastore", Status: draftStatus[rh.Status]}
	if h.details == nil || h.details(r) {
		body.Version = h.version
		if rh.Latency > 0 {
			ms := rh.LatencyMs()
			check.ObservedValue, check.ObservedUnit = &ms, "ms"
		}
		if !rh.CheckedAt.IsZero() {
			check.Time = rh.CheckedAt.UTC().Format(time.RFC3339Nano)
		}
		check.Output = rh.Reason
		if body.Output == "" && rh.Reason != "" {
			body.Output = "redis " + string(rh.Status) + ": " + rh.Reason
		}
	}
	body.Checks = map[string][]healthCheck{"redis:responseTime": {check}}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, `{"status":"fail"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/health+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	writeRendered(w, code, b, err)
}

// writeRendered writes a body json.Marshal gave, or 500 if it failed.
func writeRendered(w http.ResponseWriter, code int, b []byte, err error) {
	if err != nil {
		http.Error(w, `{"success":false}`, http.StatusInternalServerError)
		return
	}
	writeBody(w, code, b)
}

var (
	contentJSON = []string{"application/json"}
	noStore     = []string{"no-store"}
)

func writeBody(w http.ResponseWriter, code int, body []byte) {
	// Assigning shared slices spares Header().Set an allocation per call;
	// net/http only reads them.
	w.Header()["Content-Type"] = contentJSON
	w.Header()["Cache-Control"] = noStore
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
