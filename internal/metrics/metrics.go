// Package metrics exposes what the cache client does in Prometheus format.
// It implements cache.Observer for counters and histograms, and reads the
// client's Health snapshot at scrape time for gauges, so the request path
// pays for a counter increment and a histogram observation, nothing more.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/school-erp/cache-service/cache"
)

var (
	statuses = []cache.Status{cache.StatusConnected, cache.StatusDegraded, cache.StatusDisconnected}
	breakers = []cache.BreakerState{cache.BreakerClosed, cache.BreakerOpen, cache.BreakerHalfOpen}
)

// produces lists the outcomes each op can come to (cache/observer.go and
// the op's own code): only these series are created at zero up front, so
// that /metrics shows no impossible one such as op="set",outcome="hit".
// An outcome missing here is still counted, in a series made when it first
// happens (TestSeriesCreatedUpFrontCoverWhatOpsProduce runs the ops
// through their outcomes and fails on such a series).
var produces = func() map[cache.Op][]cache.Outcome {
	failures := []cache.Outcome{cache.OutcomeInvalid, cache.OutcomeCanceled}
	read := append([]cache.Outcome{cache.OutcomeHit, cache.OutcomeMiss, cache.OutcomeUnavailable, cache.OutcomeError}, failures...)
	write := append([]cache.Outcome{cache.OutcomeStored, cache.OutcomeNotStored}, failures...)
	remove := append([]cache.Outcome{cache.OutcomeHit, cache.OutcomeMiss, cache.OutcomeNotStored}, failures...)
	return map[cache.Op][]cache.Outcome{
		cache.OpGet: read, cache.OpGetMany: read, cache.OpExists: read, cache.OpEntry: read,
		cache.OpFetch:   append([]cache.Outcome{cache.OutcomeHit, cache.OutcomeLeaseGranted, cache.OutcomeWaitedHit, cache.OutcomePending, cache.OutcomeUnavailable, cache.OutcomeError}, failures...),
		cache.OpSet:     append([]cache.Outcome{cache.OutcomeConditionNotMet, cache.OutcomeLeaseInvalid}, write...),
		cache.OpSetMany: write, cache.OpDeleteMany: write, cache.OpIncrement: write,
		cache.OpDelete: remove, cache.OpExpire: remove, cache.OpInvalidateTags: remove,
	}
}()

// backendsOf are the backends an op's outcome can carry. Something
// answered a hit, a miss, a write or a refused condition: Redis or the
// fallback tier; leases live in Redis only. (Client.GetEntry reports no
// backend for a miss, whoever answered.) A failure has no backend, except
// in an op over several keys, where it is the first key's failure and the
// backend another key's.
func backendsOf(op cache.Op, o cache.Outcome) []cache.Backend {
	if op == cache.OpEntry && o == cache.OutcomeMiss {
		return []cache.Backend{""}
	}
	switch o {
	case cache.OutcomeHit, cache.OutcomeMiss, cache.OutcomeStored, cache.OutcomeConditionNotMet:
		return []cache.Backend{cache.BackendRedis, cache.BackendMemory}
	case cache.OutcomeLeaseGranted, cache.OutcomeWaitedHit, cache.OutcomePending, cache.OutcomeLeaseInvalid:
		return []cache.Backend{cache.BackendRedis}
	}
	switch op {
	case cache.OpGetMany, cache.OpSetMany, cache.OpDeleteMany, cache.OpInvalidateTags:
		return []cache.Backend{"", cache.BackendRedis, cache.BackendMemory}
	}
	return []cache.Backend{""}
}

type opKey struct {
	op      cache.Op
	outcome cache.Outcome
	backend cache.Backend
}

// Metrics is a Prometheus registry fed by the cache client.
type Metrics struct {
	registry *prometheus.Registry
	// operations holds the series created up front (read-only after New);
	// opsVec makes any other when it first happens.
	operations  map[opKey]prometheus.Counter
	opsVec      *prometheus.CounterVec
	durations   map[cache.Op]prometheus.Observer
	transitions *prometheus.CounterVec
	reconnects  prometheus.Counter
	resets      prometheus.Counter
	probes      prometheus.Histogram
	probeErrors prometheus.Counter
	buildInfo   *prometheus.GaugeVec
	health      atomic.Pointer[func() cache.Health]

	sockets       prometheus.Gauge
	subscriptions *prometheus.GaugeVec
	events        *prometheus.CounterVec
	dropped       prometheus.Counter
	resyncs       *prometheus.CounterVec
	refused       *prometheus.CounterVec
}

// Subscription fields and reasons, created at zero up front.
var (
	subscriptionFields = []string{"cacheChanged", "redisHealthChanged"}
	resyncReasons      = []string{"reconnect", "overflow", "lost"}
	refusalReasons     = []string{"origin", "unauthenticated", "too_many_sockets", "init_timeout", "slow", "revoked"}
)

var (
	_ cache.Observer       = (*Metrics)(nil)
	_ cache.ChangeObserver = (*Metrics)(nil)
)

// New registers every metric. Gauges read the health function given to
// WatchHealth; until then they report nothing.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	opsVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_operations_total",
		Help: "Cache operations by op (get, get_many, exists, entry, set, set_many, delete, delete_many, increment, expire, invalidate_tags, fetch), outcome (hit, miss, stored, not_stored, condition_not_met, lease_granted, waited_hit, pending, lease_invalid, unavailable, error, invalid, canceled) and backend that answered (redis, memory, or none).",
	}, []string{"op", "outcome", "backend"})
	durVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cache_operation_duration_seconds",
		Help:    "Time to complete a cache operation, by op, whatever its outcome.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"op"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_redis_transitions_total",
		Help: "Changes of Redis availability status, by from and to status.",
	}, []string{"from", "to"})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cache_redis_reconnect_attempts_total",
		Help: "Attempts to reach Redis while it was down (each connect or probe with the breaker open; the first connection at start is not one).",
	})
	m.resets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cache_redis_connection_resets_total",
		Help: "Connections to Redis that the server or the network closed under the service (CLIENT KILL, a proxy's idle timeout, a failover); valkey-go reconnects, and while Redis answers the probe it is not an outage.",
	})
	m.probes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cache_redis_probe_duration_seconds",
		Help:    "Round trip of the background health probe (PING, INFO, CLIENT INFO).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.probeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cache_redis_probe_failures_total",
		Help: "Background health probes that failed.",
	})
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cache_build_info",
		Help: "1, labelled with the service's version and the Go version it was built with.",
	}, []string{"version", "goversion"})

	// Resolve every label combination once: the request path then does a
	// map lookup instead of hashing label values.
	m.opsVec = opsVec
	m.operations = map[opKey]prometheus.Counter{}
	m.durations = map[cache.Op]prometheus.Observer{}
	for _, op := range cache.Ops {
		m.durations[op] = durVec.WithLabelValues(string(op))
		for _, o := range produces[op] {
			for _, b := range backendsOf(op, o) {
				m.operations[opKey{op, o, b}] = opsVec.WithLabelValues(string(op), string(o), backendLabel(b))
			}
		}
	}

	m.sockets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cache_subscription_sockets",
		Help: "WebSockets open (GraphQL subscriptions).",
	})
	m.subscriptions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cache_subscriptions",
		Help: "Subscriptions running, by root field (cacheChanged, redisHealthChanged).",
	}, []string{"field"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_subscription_events_total",
		Help: "Subscription events handed to a socket, by root field.",
	}, []string{"field"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cache_subscription_events_dropped_total",
		Help: "Changes dropped from the queue of a subscriber that fell behind (SUBSCRIPTION_QUEUE); each overflow is replaced by one RESYNC.",
	})
	m.resyncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_subscription_resyncs_total",
		Help: "RESYNC events queued, by reason: reconnect (the subscription to Redis broke and is back), overflow (a subscriber fell behind) or lost (an instance could not announce some of its changes).",
	}, []string{"reason"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_subscription_sockets_refused_total",
		Help: "WebSockets refused, by reason: origin, unauthenticated, too_many_sockets, init_timeout; or closed for not reading (slow) or for a token a reload took away (revoked).",
	}, []string{"reason"})
	for _, f := range subscriptionFields {
		m.subscriptions.WithLabelValues(f)
		m.events.WithLabelValues(f)
	}
	for _, r := range resyncReasons {
		m.resyncs.WithLabelValues(r)
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}

	m.registry.MustRegister(opsVec, durVec, m.transitions, m.reconnects, m.resets, m.probes, m.probeErrors, m.buildInfo,
		m.sockets, m.subscriptions, m.events, m.dropped, m.resyncs, m.refused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range statuses {
		m.gauge("cache_redis_status", "1 for the current Redis availability status, 0 for the others.",
			prometheus.Labels{"status": string(s)}, func(h cache.Health) float64 { return bool01(h.Status == s) })
	}
	for _, b := range breakers {
		m.gauge("cache_breaker_state", "1 for the current state of the breaker in front of Redis (closed, open, half_open), 0 for the others.",
			prometheus.Labels{"state": string(b)}, func(h cache.Health) float64 { return bool01(h.Breaker == b) })
	}
	m.gauge("cache_fallback_active", "1 while the in-process fallback tier answers for Redis.", nil,
		func(h cache.Health) float64 { return bool01(h.Fallback.Active) })
	m.gauge("cache_fallback_entries", "Entries held by the in-process fallback tier.", nil,
		func(h cache.Health) float64 { return float64(h.Fallback.Entries) })
	m.gauge("cache_fallback_bytes", "Approximate bytes held by the in-process fallback tier.", nil,
		func(h cache.Health) float64 { return float64(h.Fallback.Bytes) })
	m.gauge("cache_redis_probe_latency_seconds", "Round trip of the last successful PING.", nil,
		func(h cache.Health) float64 { return h.Latency.Seconds() })
	return m
}

// SetBuildInfo sets cache_build_info: one series, of value 1, whose labels
// say which build is running (until it is called, there is none).
func (m *Metrics) SetBuildInfo(version, goVersion string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, goVersion).Set(1)
}

// WatchHealth sets where the gauges read Redis's state from.
func (m *Metrics) WatchHealth(health func() cache.Health) { m.health.Store(&health) }

func (m *Metrics) gauge(name, help string, labels prometheus.Labels, value func(cache.Health) float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 {
		if h := m.health.Load(); h != nil {
			return value((*h)())
		}
		return 0
	}))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveOperation implements cache.Observer.
func (m *Metrics) ObserveOperation(op cache.Op, outcome cache.Outcome, backend cache.Backend, took time.Duration) {
	if c, ok := m.operations[opKey{op, outcome, backend}]; ok {
		c.Inc()
	} else {
		m.opsVec.WithLabelValues(string(op), string(outcome), backendLabel(backend)).Inc()
	}
	if h, ok := m.durations[op]; ok {
		h.Observe(took.Seconds())
	}
}

// ObserveTransition implements cache.Observer.
func (m *Metrics) ObserveTransition(from, to cache.Status) {
	m.transitions.WithLabelValues(string(from), string(to)).Inc()
}

// ObserveReconnectAttempt implements cache.Observer.
func (m *Metrics) ObserveReconnectAttempt() { m.reconnects.Inc() }

// ObserveConnectionReset implements cache.Observer.
func (m *Metrics) ObserveConnectionReset() { m.resets.Inc() }

// ObserveProbe implements cache.Observer.
func (m *Metrics) ObserveProbe(took time.Duration, err error) {
	if err != nil {
		m.probeErrors.Inc()
		return
	}
	m.probes.Observe(took.Seconds())
}

// ObserveChangeDropped implements cache.ChangeObserver.
func (m *Metrics) ObserveChangeDropped(n int) { m.dropped.Add(float64(n)) }

// ObserveResync implements cache.ChangeObserver.
func (m *Metrics) ObserveResync(reason string) { m.resyncs.WithLabelValues(reason).Inc() }

// ObserveSocket counts a WebSocket opened (+1) or closed (-1)
// (graph.SubscriptionObserver).
func (m *Metrics) ObserveSocket(delta int) { m.sockets.Add(float64(delta)) }

// ObserveSocketRefused counts a WebSocket refused, by reason.
func (m *Metrics) ObserveSocketRefused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// ObserveSubscription counts a subscription started (+1) or ended (-1).
func (m *Metrics) ObserveSubscription(field string, delta int) {
	m.subscriptions.WithLabelValues(field).Add(float64(delta))
}

// ObserveEvent counts an event handed to a socket.
func (m *Metrics) ObserveEvent(field string) { m.events.WithLabelValues(field).Inc() }

func backendLabel(b cache.Backend) string {
	if b == "" {
		return "none"
	}
	return string(b)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
