package cache

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the one owner of Redis's availability as the service sees
// it: the circuit breaker's state and epoch, the failure counters, the
// health snapshot, and the lifetime of the fallback tier's contents. Every
// transition is a method here; nothing else changes them.
//
// The breaker:
//
//	             3 requests in a row cannot reach Redis, or a probe fails
//	  closed ────────────────────────────────────────────────────────▶ open
//	    ▲                                                               │
//	    │ the probe gets an answer                                      │ the monitor starts a probe
//	    │ (from a probe that began after the trip)                      ▼
//	    └───────────────────────────────────────────────────────── half-open
//	                                      the probe fails: back to open ┘
//
// While it is closed, requests go to Redis and Health says connected or
// degraded; while it is open or half-open, requests do not try Redis (only
// the monitor's probe does), Health says disconnected, and the fallback
// tier, when configured, answers. What counts as a failure is narrow on
// purpose: a connection that breaks under a command is not one (valkey-go
// reconnects, and the probe is asked to check), nor is a reply that is an
// error (Redis answered), nor a read answered from the local cache (Redis
// was not asked).

// BreakerState is the state of the circuit breaker in front of Redis.
type BreakerState string

const (
	// BreakerClosed: requests go to Redis.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen: Redis is known to be down; requests do not try it.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen: Redis is down and the monitor is probing it; only
	// the probe's commands reach it.
	BreakerHalfOpen BreakerState = "half_open"
)

// breaker is BreakerState as a number, for an atomic on the request path.
type breaker int32

const (
	closed breaker = iota
	open
	halfOpen
)

func (b breaker) State() BreakerState {
	switch b {
	case open:
		return BreakerOpen
	case halfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// failureKind is what a failed command tells about Redis's availability.
type failureKind int

const (
	// notAnOutage: Redis answered (with an error reply), the connection
	// broke under the command (the dialer reports that as a reset), or the
	// caller gave up. The counters do not move.
	notAnOutage failureKind = iota
	// unreachable: the command never reached a Redis able to execute it: a
	// connection could not be opened, or the server said it cannot serve
	// now (LOADING, MASTERDOWN, ...). Enough of these in a row trip the
	// breaker.
	unreachable
	// timedOut: no reply within the deadline. Redis may be slow or hung:
	// Health says degraded at once, and the probe decides which.
	timedOut
	// switching: the server is up but its role is wrong for the command
	// for the moment (a demoted master during a failover, a slot being
	// migrated). The next probe says degraded; the breaker stays closed,
	// since a master is reachable and will be found.
	switching
)

// reasonRequestsFailed is Health.Reason when Redis answers the probe but
// requests failed since the one before.
const reasonRequestsFailed = "requests failed since the last probe"

type failure struct {
	err error
	at  time.Time
}

// probeTicket is handed out when a probe starts; its result counts only if
// no trip happened meanwhile (a PING answered before Redis died says
// nothing about Redis now).
type probeTicket struct{ epoch uint64 }

// availabilityConfig is what the owner needs from Options.
type availabilityConfig struct {
	addrs           string
	tls             bool
	degradedLatency time.Duration
	reminder        time.Duration
	// tripAfter is how many unreachable failures in a row open the breaker.
	tripAfter int64
}

type availability struct {
	cfg    availabilityConfig
	log    *slog.Logger
	obs    Observer
	memory *memoryTier // nil unless the fallback is configured
	kick   chan struct{}

	// Read on the request path without the lock.
	state       atomic.Int32 // a breaker
	epoch       atomic.Uint64
	consecutive atomic.Int64 // unreachable failures in a row
	window      atomic.Int64 // failures since the last probe
	lastFailure atomic.Pointer[failure]
	health      atomic.Pointer[Health]
	resets      atomic.Uint64
	lastReset   atomic.Pointer[time.Time]

	// mu serialises transitions and their log lines (write lock) and keeps
	// the fallback tier's contents and the breaker state consistent for a
	// fallback operation (read lock): an operation answered from memory
	// holds it, so the store cannot be emptied under it.
	mu     sync.RWMutex
	states stateLog
	// fallbackOff says why a configured fallback tier does not answer
	// (cluster mode); empty while it may.
	fallbackOff string
	stopped     bool
}

func newAvailability(cfg availabilityConfig, log *slog.Logger, obs Observer, memory *memoryTier) *availability {
	a := &availability{cfg: cfg, log: log, obs: obs, memory: memory, kick: make(chan struct{}, 1)}
	a.states = stateLog{reminder: cfg.reminder}
	a.state.Store(int32(open))
	a.health.Store(&Health{Status: StatusDisconnected, Since: time.Now(), Reason: ReasonConnecting, Addr: cfg.addrs, TLS: cfg.tls})
	return a
}

func (a *availability) breaker() breaker { return breaker(a.state.Load()) }

// allow says whether a request may go to Redis now, and in which epoch it
// does: a failure reported later from an earlier epoch belongs to an
// outage already declared.
func (a *availability) allow() (epoch uint64, ok bool) {
	epoch = a.epoch.Load()
	return epoch, a.breaker() == closed
}

// succeeded records an answer from Redis (an error reply included).
func (a *availability) succeeded() {
	// Load before store: under load most calls find zero and skip the
	// write, which keeps the cache line shared across cores.
	if a.consecutive.Load() != 0 {
		a.consecutive.Store(0)
	}
}

// failed records a request that Redis did not answer, from the epoch the
// request began in. It reports whether the breaker now refuses Redis.
func (a *availability) failed(epoch uint64, kind failureKind, err error, cluster bool) bool {
	if kind == notAnOutage {
		return a.breaker() != closed
	}
	if epoch != a.epoch.Load() {
		// The outage this belongs to was declared while the command was in
		// flight: it adds nothing.
		return a.breaker() != closed
	}
	a.window.Add(1)
	a.lastFailure.Store(&failure{err: err, at: time.Now()})
	switch kind {
	case timedOut:
		a.slow(err)
	case unreachable:
		// A cluster is not down because one node is: its other slots keep
		// working, so there only the probe (which sees every node) decides.
		if a.consecutive.Add(1) >= a.cfg.tripAfter && !cluster {
			a.trip(epoch, err)
		}
	}
	a.poke()
	return a.breaker() != closed
}

// connectionReset records a connection that the server or the network
// closed under the client. valkey-go reconnects by itself; the probe is
// asked to confirm that Redis is still there rather than the breaker
// being opened on the strength of one closed connection.
func (a *availability) connectionReset() {
	a.resets.Add(1)
	now := time.Now()
	a.lastReset.Store(&now)
	a.obs.ObserveConnectionReset()
	a.poke()
}

func (a *availability) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// slow marks Redis degraded at once when a command timed out: the probe,
// which may itself be waiting on the same slow server, settles it later.
func (a *availability) slow(cause error) {
	if h := a.health.Load(); h.Status != StatusConnected {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.health.Load()
	if prev.Status != StatusConnected || a.breaker() != closed || a.stopped {
		return
	}
	now := time.Now()
	h := *prev
	h.Status, h.Since, h.Reason = StatusDegraded, now, "commands timed out: "+describe(cause)
	h.LastError, h.LastErrorAt = describe(cause), now
	a.health.Store(&h)
	a.obs.ObserveTransition(prev.Status, StatusDegraded)
	if log, skipped := a.states.change(prev.Status, StatusDegraded, now); log {
		a.log.Warn("redis degraded", slog.String("reason", h.Reason), slog.Int("changesNotLogged", skipped))
	}
}

// trip opens the breaker, unless another trip already did for this epoch.
func (a *availability) trip(epoch uint64, cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if epoch != a.epoch.Load() || a.breaker() != closed {
		return
	}
	a.downLocked(cause)
}

// probeStarted is called when the monitor starts a probe: an open breaker
// becomes half-open for its duration.
func (a *availability) probeStarted() probeTicket {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.breaker() == open && !a.stopped {
		a.state.Store(int32(halfOpen))
	}
	return probeTicket{epoch: a.epoch.Load()}
}

// probeSucceeded publishes a probe that Redis answered: the breaker
// closes, and Health says connected, or degraded when the PING was slow,
// part of a cluster did not answer, or requests failed since the last
// probe. It reports false when the result came too late to count (a trip
// happened while the probe ran); the monitor then probes again.
func (a *availability) probeSucceeded(t probeTicket, p probeResult) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.epoch != a.epoch.Load() {
		if a.breaker() == halfOpen {
			a.state.Store(int32(open))
		}
		return false
	}
	if a.stopped {
		return true
	}
	if p.mode == ModeCluster && a.memory != nil && a.fallbackOff == "" {
		a.fallbackOff = "off in cluster mode: the fallback tier would answer for every node, not only the ones that are down"
		a.log.Warn("CACHE_FALLBACK=memory has no effect with a Redis Cluster; reads and writes for a node that is down report it instead", slog.String("fallback", a.fallbackOff))
	}
	failures := a.window.Swap(0)
	a.consecutive.Store(0)
	status, reason := StatusConnected, ""
	switch {
	case p.latency > a.cfg.degradedLatency:
		status, reason = StatusDegraded, "slow: PING took "+p.latency.Round(time.Microsecond).String()+", above "+a.cfg.degradedLatency.String()
	case p.partial != "":
		status, reason = StatusDegraded, p.partial
	case failures > 0:
		status, reason = StatusDegraded, reasonRequestsFailed
	}

	prev := a.health.Load()
	now := time.Now()
	h := &Health{
		Status: status, Since: prev.Since, CheckedAt: now, Latency: p.latency,
		Reason: reason, Addr: p.addr, Server: p.server,
		Mode: p.mode, TLS: a.cfg.tls, RESP: p.resp, Cluster: p.cluster,
		LastError: prev.LastError, LastErrorAt: prev.LastErrorAt,
	}
	if f := a.lastFailure.Load(); f != nil && f.at.After(h.LastErrorAt) {
		h.LastError, h.LastErrorAt = describe(f.err), f.at
	}
	changed := status != prev.Status || !a.states.started
	if changed {
		h.Since = now
	}
	if a.breaker() != closed && a.memory != nil {
		// Redis is confirmed back: what the fallback held is not merged
		// into Redis, and must not be served in a later outage (Redis has
		// had writes since). Emptied before the breaker closes, under the
		// lock every fallback operation holds.
		a.memory.clear()
	}
	a.state.Store(int32(closed))
	a.health.Store(h)

	attrs := []any{slog.Duration("latency", p.latency)}
	if p.server != nil {
		attrs = append(attrs, slog.String("server", p.server.Version))
	}
	var log bool
	var skipped int
	if changed {
		a.obs.ObserveTransition(prev.Status, status)
		log, skipped = a.states.change(prev.Status, status, now)
	} else if status == StatusDegraded {
		log, _, skipped = a.states.ongoing(status, now)
	}
	if !log {
		return true
	}
	if skipped > 0 {
		attrs = append(attrs, slog.Int("changesNotLogged", skipped))
	}
	switch status {
	case StatusConnected:
		if prev.Status == StatusDisconnected && prev.Reason != ReasonConnecting {
			attrs = append(attrs, slog.Duration("downFor", now.Sub(prev.Since).Round(time.Millisecond)))
		}
		a.log.Info("redis connected", attrs...)
	case StatusDegraded:
		a.log.Warn("redis degraded", append(attrs, slog.String("reason", reason))...)
	}
	return true
}

// probeFailed publishes a probe Redis did not answer (or a connection that
// could not be opened): the breaker opens.
func (a *availability) probeFailed(_ probeTicket, cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.downLocked(cause)
}

// downLocked opens the breaker and publishes the outage. It is logged once
// (unless Redis is flapping: see stateLog), then at most once per reminder
// interval while it lasts. What the fallback tier holds is kept: those
// writes were acknowledged, and stay readable until Redis is confirmed
// back.
func (a *availability) downLocked(cause error) {
	now := time.Now()
	reason := describe(cause)
	if a.breaker() == closed {
		// A new outage: failures that led here belong to it; requests
		// still in flight from before must not count again, nor make the
		// first probe after recovery report degraded.
		a.epoch.Add(1)
	}
	if !a.stopped {
		a.state.Store(int32(open))
	}
	a.window.Store(0)
	a.consecutive.Store(0)
	prev := a.health.Load()
	h := &Health{
		Status: StatusDisconnected, Since: prev.Since, CheckedAt: now,
		Reason: reason, Addr: a.cfg.addrs, Mode: prev.Mode, TLS: prev.TLS,
		LastError: reason, LastErrorAt: now,
	}
	changed := prev.Status != StatusDisconnected || !a.states.started
	if prev.Status != StatusDisconnected {
		h.Since = now
		a.obs.ObserveTransition(prev.Status, StatusDisconnected)
	}
	a.health.Store(h)

	var announce, remind bool
	var skipped int
	if changed {
		announce, skipped = a.states.change(prev.Status, StatusDisconnected, now)
	} else {
		announce, remind, skipped = a.states.ongoing(StatusDisconnected, now)
	}
	switch {
	case announce:
		attrs := []any{slog.String("cause", reason)}
		if skipped > 0 {
			attrs = append(attrs, slog.Int("changesNotLogged", skipped))
		}
		a.log.Warn(a.outageMessage(), attrs...)
	case remind:
		a.log.Warn("redis still unreachable", slog.String("cause", reason), slog.Duration("downFor", now.Sub(h.Since).Round(time.Second)))
	}
}

// Outage announcements: what callers get while Redis is away depends on
// whether a fallback tier answers for it.
const (
	msgOutageNoFallback = "redis unreachable; requests report REDIS_UNAVAILABLE until it returns"
	msgOutageFallback   = "redis unreachable; the in-memory fallback answers until it returns"
)

// outageMessage is the WARN line that announces an outage. It says what
// serves meanwhile, so an operator reading the log knows whether callers
// see errors or fallback answers (backend MEMORY).
func (a *availability) outageMessage() string {
	if a.memory != nil && a.fallbackOff == "" {
		return msgOutageFallback
	}
	return msgOutageNoFallback
}

// stop is Close: the breaker opens for good and the probe's results no
// longer close it.
func (a *availability) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	a.state.Store(int32(open))
}

// errFallbackInactive means the fallback tier may not answer now.
var errFallbackInactive = errors.New("fallback tier not active")

// withFallback runs fn on the fallback tier when it may answer: it is
// configured, usable in this mode, and the breaker refuses Redis. The
// breaker cannot close, nor the store be emptied, while fn runs.
func (a *availability) withFallback(fn func(*memoryTier) error) error {
	if a.memory == nil {
		return errFallbackInactive
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.breaker() == closed || a.fallbackOff != "" {
		return errFallbackInactive
	}
	return fn(a.memory)
}

// confirmed is called after Redis confirmed a write or delete of key. A
// request sent before the breaker opened can be confirmed after; the
// fallback tier's copy of key, written meanwhile, is now older than what
// Redis holds, and must not be read.
func (a *availability) confirmed(key string) {
	if a.memory == nil || a.breaker() == closed {
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	a.memory.delete(key)
}

// snapshot is Health as of now: the last probe's view with the breaker's
// and the fallback tier's current state.
func (a *availability) snapshot() Health {
	h := *a.health.Load()
	b := a.breaker()
	h.Breaker = b.State()
	h.ConnectionResets = a.resets.Load()
	if t := a.lastReset.Load(); t != nil {
		h.LastConnectionResetAt = *t
	}
	if a.memory != nil {
		a.mu.RLock()
		h.Fallback.Active = b != closed && a.fallbackOff == ""
		h.Fallback.Off = a.fallbackOff
		h.Fallback.Entries, h.Fallback.Bytes = a.memory.size()
		a.mu.RUnlock()
	}
	return h
}
