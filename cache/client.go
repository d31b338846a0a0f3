package cache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/valkey-io/valkey-go"
)

// Backend says where an operation was served.
type Backend string

const (
	// BackendRedis: Redis answered.
	BackendRedis Backend = "redis"
	// BackendMemory: Redis was unavailable and the in-process fallback tier
	// (Options.Fallback) answered. Its values live only in this process.
	BackendMemory Backend = "memory"
)

// Client is the cache: one valkey-go client behind a wrapper that connects
// in the background, tracks Redis's availability, and answers at once while
// Redis is down. It is safe for concurrent use. Create it with New.
type Client struct {
	opts        Options
	tlsConfig   *tls.Config
	sentinelTLS *tls.Config
	addrs       string // for logs and health
	log         *slog.Logger
	obs         Observer
	memory      *memoryTier // nil unless Options.Fallback is FallbackMemory

	// vk is nil until the first connection succeeds; valkey-go reconnects
	// by itself after that.
	vk atomic.Pointer[valkeyClient]
	// open is the request path's gate (a circuit breaker that is closed
	// while it is true): false while Redis is known to be unreachable, so
	// operations fail fast, and only the monitor's probe tries Redis.
	open atomic.Bool
	// probing is true while the monitor probes Redis with the gate shut:
	// the breaker's half-open state.
	probing atomic.Bool
	// clientCacheRefused is set when the server refused CLIENT TRACKING.
	clientCacheRefused atomic.Bool
	// epoch counts declared outages; an operation that began in an earlier
	// epoch does not count its failure again.
	epoch atomic.Uint64
	// health is the snapshot health requests read.
	health atomic.Pointer[Health]

	// Failure counters the request path feeds and the monitor reads.
	consecutiveFailures atomic.Int64
	windowFailures      atomic.Int64
	lastFailure         atomic.Pointer[failure]

	// mu serialises state changes and their log lines; nothing on the
	// request path takes it unless the state is changing.
	mu     sync.Mutex
	states stateLog
	closed bool

	rejected throttle

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// valkeyClient boxes the interface so it can sit in an atomic.Pointer.
type valkeyClient struct{ valkey.Client }

type failure struct {
	err error
	at  time.Time
}

// New returns a Client and starts connecting to Redis in the background. It
// never blocks on Redis and never fails because Redis is down: until the
// first connection succeeds, operations return ErrUnavailable at once (or
// use the fallback tier).
func New(opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	tlsConfig, err := opts.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	sentinelTLS, err := opts.Sentinel.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("cache: sentinel: %w", err)
	}
	addrs := opts.describeAddrs()
	c := &Client{
		opts:        opts,
		tlsConfig:   tlsConfig,
		sentinelTLS: sentinelTLS,
		addrs:       addrs,
		log:         opts.Logger.With(slog.String("component", "redis"), slog.String("addr", addrs)),
		obs:         opts.Observer,
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	if opts.Fallback == FallbackMemory {
		if c.memory, err = newMemoryTier(opts.FallbackMaxBytes); err != nil {
			return nil, fmt.Errorf("cache: fallback tier: %w", err)
		}
	}
	c.rejected = throttle{every: opts.OutageReminder}
	c.states = stateLog{reminder: opts.OutageReminder}
	c.health.Store(&Health{Status: StatusDisconnected, Since: time.Now(), Reason: ReasonConnecting, Addr: addrs, TLS: tlsConfig != nil})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.monitor(ctx)
	return c, nil
}

// Close stops the background monitor and closes the connections. Operations
// after Close return ErrUnavailable (or use the fallback tier).
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.open.Store(false)
	c.mu.Unlock()
	c.cancel()
	<-c.done
	if vk := c.vk.Load(); vk != nil {
		vk.Close()
	}
	if c.memory != nil {
		c.memory.close()
	}
}

// Health returns the last snapshot of Redis's availability, with the
// fallback tier's state as of now.
func (c *Client) Health() Health {
	h := *c.health.Load()
	h.Breaker = c.breaker()
	switch {
	case c.opts.DisableClientCache:
		h.ClientCache = ClientCacheOff
	case c.clientCacheRefused.Load():
		h.ClientCache = ClientCacheUnsupported
	default:
		h.ClientCache = ClientCacheOn
	}
	h.Fallback = FallbackHealth{Mode: c.opts.Fallback}
	if c.memory != nil {
		h.Fallback.Active = !c.open.Load()
		h.Fallback.Entries, h.Fallback.Bytes = c.memory.size()
	}
	return h
}

func (c *Client) breaker() BreakerState {
	switch {
	case c.open.Load():
		return BreakerClosed
	case c.probing.Load():
		return BreakerHalfOpen
	}
	return BreakerOpen
}

// WaitReady blocks until Redis has answered a probe or ctx is done. The
// service never calls it (it serves while Redis is down); it is for Go
// callers and tests that want Redis before they go on.
func (c *Client) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !c.open.Load() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrUnavailable, c.health.Load().Reason)
		case <-tick.C:
		}
	}
	return nil
}

// KeyPrefix is the prefix put in front of every key.
func (c *Client) KeyPrefix() string { return c.opts.KeyPrefix }

// Get returns the JSON value stored at key, and where it was found. A miss,
// including an expired key, is a nil value with a nil error. A value that is
// not valid JSON (written by something other than this service) is returned
// as a JSON string.
func (c *Client) Get(ctx context.Context, key string) (json.RawMessage, Backend, error) {
	start := time.Now()
	value, backend, err := c.get(ctx, key)
	c.observe(OpGet, readOutcome(value != nil, err), backend, start)
	return value, backend, err
}

func (c *Client) get(ctx context.Context, key string) (json.RawMessage, Backend, error) {
	if err := checkKey(key); err != nil {
		return nil, "", err
	}
	vk, epoch, err := c.acquire(ctx)
	if err != nil {
		return c.fallbackGet(key, err)
	}
	opCtx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	// DoCache answers from the local cache when it can; with client-side
	// caching off it is a plain Do.
	b, err := vk.DoCache(opCtx, vk.B().Get().Key(c.opts.KeyPrefix+key).Cache().Pin(), c.opts.ClientCacheTTL).AsBytes()
	if valkey.IsValkeyNil(err) {
		c.succeeded()
		return nil, BackendRedis, nil
	}
	if err != nil {
		return c.fallbackGet(key, c.failed(ctx, opCtx, epoch, OpGet, err))
	}
	c.succeeded()
	if !json.Valid(b) {
		b, _ = json.Marshal(string(b))
	}
	return b, BackendRedis, nil
}

// Read is one key's answer in a GetMany.
type Read struct {
	// Value is the key's JSON value; nil for a miss, and whenever Err is
	// set.
	Value json.RawMessage
	// Backend says what answered for this key; empty when nothing did.
	Backend Backend
	// Err says why this key has no answer: ErrInvalidInput (the key itself
	// is not acceptable), ErrRejected (Redis refused the read, for example
	// a key holding a hash), ErrUnavailable or ErrNoReply. Other keys are
	// not affected by it.
	Err error
}

// GetMany reads several keys in one round trip per server (per slot group in
// a cluster), from the local cache where it can. reads[i] answers keys[i];
// one key's failure (a bad key, a key Redis refuses to read) never hides
// the others' values. The error is non-nil only when the request as a
// whole is refused (more than MaxGetManyKeys keys), and then nothing was
// read.
func (c *Client) GetMany(ctx context.Context, keys []string) ([]Read, error) {
	start := time.Now()
	if len(keys) > MaxGetManyKeys {
		err := fmt.Errorf("%w: %d keys; the limit is %d", ErrInvalidInput, len(keys), MaxGetManyKeys)
		c.observe(OpGetMany, OutcomeInvalid, "", start)
		return nil, err
	}
	reads := c.getMany(ctx, keys)
	found, backend := false, Backend("")
	var firstErr error
	for _, r := range reads {
		found = found || r.Value != nil
		if backend == "" {
			backend = r.Backend
		}
		if firstErr == nil {
			firstErr = r.Err
		}
	}
	c.observe(OpGetMany, readOutcome(found, firstErr), backend, start)
	return reads, nil
}

func (c *Client) getMany(ctx context.Context, keys []string) []Read {
	reads := make([]Read, len(keys))
	// Only the keys that pass the key rules are sent; idx maps each sent
	// command back to its key's position.
	idx := make([]int, 0, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			reads[i].Err = err
			continue
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return reads
	}
	vk, epoch, err := c.acquire(ctx)
	if err != nil {
		c.fallbackGetMany(keys, idx, reads, err)
		return reads
	}
	opCtx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	cmds := make([]valkey.CacheableTTL, len(idx))
	for j, i := range idx {
		cmds[j] = valkey.CT(vk.B().Get().Key(c.opts.KeyPrefix+keys[i]).Cache().Pin(), c.opts.ClientCacheTTL)
	}
	var outage error
	for j, r := range vk.DoMultiCache(opCtx, cmds...) {
		i := idx[j]
		b, err := r.AsBytes()
		switch {
		case valkey.IsValkeyNil(err):
			reads[i].Backend = BackendRedis
		case err != nil:
			kind, classified := classify(opCtx, err)
			if kind != notAnOutage && outage == nil {
				outage = err
			}
			reads[i].Err = classified
		default:
			if !json.Valid(b) {
				b, _ = json.Marshal(string(b))
			}
			reads[i].Value, reads[i].Backend = b, BackendRedis
		}
	}
	if outage != nil {
		err := c.failed(ctx, opCtx, epoch, OpGetMany, outage)
		if errors.Is(err, ErrUnavailable) && c.memory != nil {
			var failedIdx []int
			for _, i := range idx {
				if reads[i].Err != nil && !errors.Is(reads[i].Err, ErrRejected) {
					failedIdx = append(failedIdx, i)
				}
			}
			c.fallbackGetMany(keys, failedIdx, reads, err)
		}
		return reads
	}
	c.succeeded()
	return reads
}

// fallbackGetMany answers the keys at idx from the fallback tier, or
// records cause for them when it may not answer.
func (c *Client) fallbackGetMany(keys []string, idx []int, reads []Read, cause error) {
	for _, i := range idx {
		if c.memory == nil || !errors.Is(cause, ErrUnavailable) {
			reads[i] = Read{Err: cause}
			continue
		}
		v, _ := c.memory.get(keys[i])
		reads[i] = Read{Value: v, Backend: BackendMemory}
	}
}

// Set stores value, which must be JSON text, at key. A ttl of zero keeps it
// until deleted; otherwise it expires after ttl. A nil error means the
// write was confirmed, by Redis or, when Redis is unavailable, by the
// fallback tier: the Backend says which.
func (c *Client) Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) (Backend, error) {
	start := time.Now()
	backend, err := c.set(ctx, key, value, ttl)
	c.observe(OpSet, writeOutcome(err), backend, start)
	return backend, err
}

func (c *Client) set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) (Backend, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := c.checkValue(value); err != nil {
		return "", err
	}
	if err := c.checkTTL(ttl); err != nil {
		return "", err
	}
	vk, epoch, err := c.acquire(ctx)
	if err != nil {
		return c.fallbackSet(key, value, ttl, err)
	}
	opCtx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	set := vk.B().Set().Key(c.opts.KeyPrefix + key).Value(valkey.BinaryString(value))
	var cmd valkey.Completed
	switch {
	case ttl == 0:
		cmd = set.Build()
	case ttl%time.Second == 0:
		cmd = set.Ex(ttl).Build()
	default:
		cmd = set.Px(ttl).Build()
	}
	if err := c.writeFenced(opCtx, vk, cmd, c.opts.KeyPrefix+key).Error(); err != nil {
		return c.fallbackSet(key, value, ttl, c.failed(ctx, opCtx, epoch, OpSet, err))
	}
	c.succeeded()
	return BackendRedis, nil
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string) (bool, Backend, error) {
	start := time.Now()
	deleted, backend, err := c.count(ctx, OpDelete, key, func(vk *valkeyClient, ctx context.Context, k string) valkey.ValkeyResult {
		return c.writeFenced(ctx, vk, vk.B().Del().Key(k).Build(), k)
	})
	c.observe(OpDelete, deleteOutcome(deleted, err), backend, start)
	return deleted, backend, err
}

// Exists reports whether key holds a value.
func (c *Client) Exists(ctx context.Context, key string) (bool, Backend, error) {
	start := time.Now()
	exists, backend, err := c.count(ctx, OpExists, key, func(vk *valkeyClient, ctx context.Context, k string) valkey.ValkeyResult {
		// valkey-go's typed EXISTS builder has no Cache(); an arbitrary
		// read-only EXISTS converts to a Cacheable, and Redis tracks the key
		// it reads like any other.
		return vk.DoCache(ctx, valkey.Cacheable(vk.B().Arbitrary("EXISTS").Keys(k).ReadOnly()).Pin(), c.opts.ClientCacheTTL)
	})
	c.observe(OpExists, readOutcome(exists, err), backend, start)
	return exists, backend, err
}

// count runs a one-key command whose integer reply counts the keys affected.
func (c *Client) count(ctx context.Context, op Op, key string, do func(*valkeyClient, context.Context, string) valkey.ValkeyResult) (bool, Backend, error) {
	if err := checkKey(key); err != nil {
		return false, "", err
	}
	vk, epoch, err := c.acquire(ctx)
	if err != nil {
		return c.fallbackCount(op, key, err)
	}
	opCtx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	n, err := do(vk, opCtx, c.opts.KeyPrefix+key).AsInt64()
	if err != nil {
		return c.fallbackCount(op, key, c.failed(ctx, opCtx, epoch, op, err))
	}
	c.succeeded()
	return n > 0, BackendRedis, nil
}

// writeFenced sends a write. With client-side caching on, Redis tells this
// client to drop its own cached copy of the key only after the write's
// reply; a read right after the write could still find the old value. So a
// harmless read of the same key (PTTL) follows in the same pipeline: by the
// time its reply arrives, the invalidation before it has been applied, and
// the caller's next read sees the write. (Being on the key's slot, the fence
// goes to the same node, and, with one pipelined connection per node, the
// same connection as cached reads of the key.)
func (c *Client) writeFenced(ctx context.Context, vk *valkeyClient, write valkey.Completed, prefixedKey string) valkey.ValkeyResult {
	if c.opts.DisableClientCache || c.clientCacheRefused.Load() {
		return vk.Do(ctx, write.Pin())
	}
	results := vk.DoMulti(ctx, write.Pin(), vk.B().Pttl().Key(prefixedKey).Build().Pin())
	return results[0]
}

// GetValue reads key and decodes its JSON value into a T: the typed getter
// for Go callers. A miss is (zero T, false, nil).
func GetValue[T any](ctx context.Context, c *Client, key string) (T, bool, error) {
	var v T
	raw, _, err := c.Get(ctx, key)
	if err != nil || raw == nil {
		return v, false, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode value of %q: %w", key, err)
	}
	return v, true, nil
}

// SetValue encodes v as JSON and stores it at key, as Set does.
func (c *Client) SetValue(ctx context.Context, key string, v any, ttl time.Duration) (Backend, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: value cannot be encoded as JSON: %w", ErrInvalidInput, err)
	}
	return c.Set(ctx, key, b, ttl)
}

// The fallback tier answers only what Redis did not execute (ErrUnavailable):
// after ErrNoReply a write may have reached Redis, and answering from
// memory would hide that.
func (c *Client) fallbackGet(key string, cause error) (json.RawMessage, Backend, error) {
	if c.memory == nil || !errors.Is(cause, ErrUnavailable) {
		return nil, "", cause
	}
	v, _ := c.memory.get(key)
	return v, BackendMemory, nil
}

func (c *Client) fallbackSet(key string, value json.RawMessage, ttl time.Duration, cause error) (Backend, error) {
	if c.memory == nil || !errors.Is(cause, ErrUnavailable) {
		return "", cause
	}
	if !c.memory.set(key, value, ttl) {
		return "", fmt.Errorf("%w; the value is also too large for the fallback tier (%d bytes)", cause, c.opts.FallbackMaxBytes)
	}
	return BackendMemory, nil
}

func (c *Client) fallbackCount(op Op, key string, cause error) (bool, Backend, error) {
	if c.memory == nil || !errors.Is(cause, ErrUnavailable) {
		return false, "", cause
	}
	if op == OpDelete {
		return c.memory.delete(key), BackendMemory, nil
	}
	_, ok := c.memory.get(key)
	return ok, BackendMemory, nil
}

// Every command is pinned (valkey-go then never returns it to its pool).
// When a connection breaks, valkey-go retries a read-only command on a new
// connection while the dead connection's writer may still be reading it; a
// pooled command could be handed to another request meanwhile. The race
// detector caught this under the connection-reset fault test.

// acquire returns the client to send a command with and the current outage
// epoch, or ErrUnavailable at once while Redis is known to be down, or
// ErrNoReply when the caller's context is already done.
func (c *Client) acquire(ctx context.Context) (*valkeyClient, uint64, error) {
	if err := ctx.Err(); err != nil {
		// The caller has given up (its request's deadline passed, or it
		// went away): send nothing, and let no fallback answer either.
		return nil, 0, fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	epoch := c.epoch.Load()
	if !c.open.Load() {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnavailable, c.health.Load().Reason)
	}
	return c.vk.Load(), epoch, nil
}

func (c *Client) succeeded() {
	// Load before store: under load most calls find zero and skip the write,
	// which keeps the cache line shared across cores.
	if c.consecutiveFailures.Load() != 0 {
		c.consecutiveFailures.Store(0)
	}
}

// failed classifies err and feeds the availability counters. A run of
// connection failures closes the gate at once; a run of timeouts asks the
// monitor to probe now, and the probe tells a slow Redis (degraded, gate
// stays open) from a hung one (disconnected).
func (c *Client) failed(caller, opCtx context.Context, epoch uint64, op Op, err error) error {
	kind, classified := classify(opCtx, err)
	if caller.Err() != nil {
		// The caller's own deadline or cancellation, not ours: it says
		// nothing about Redis.
		kind = notAnOutage
	}
	switch {
	case kind == notAnOutage:
		if errors.Is(classified, ErrRejected) {
			c.rejected.log(c.log, string(op), err)
		}
		return classified
	case epoch != c.epoch.Load():
		// The outage this belongs to was already declared while the
		// command was in flight or retrying: it adds nothing.
		return classified
	}
	c.windowFailures.Add(1)
	c.lastFailure.Store(&failure{err: err, at: time.Now()})
	if c.consecutiveFailures.Add(1) < failuresToTrip {
		return classified
	}
	// A cluster is not down because one node is: its other slots keep
	// working, so there only the probe (which sees every node) decides.
	if kind == connectionLost && c.health.Load().Mode != ModeCluster {
		c.markDown(err)
	}
	c.poke()
	return classified
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) observe(op Op, outcome Outcome, backend Backend, start time.Time) {
	c.obs.ObserveOperation(op, outcome, backend, time.Since(start))
}

func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key must not be empty", ErrInvalidInput)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes; the limit is %d", ErrInvalidInput, len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidInput)
	}
	// Printable characters other than whitespace: no control characters
	// (which could confuse logs and tools reading keys), no invisible
	// format characters, no spaces.
	for i, r := range key {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: key has a control, whitespace or invisible character (%U) at byte %d", ErrInvalidInput, r, i)
		}
	}
	return nil
}

func (c *Client) checkTTL(ttl time.Duration) error {
	switch {
	case ttl < 0:
		return fmt.Errorf("%w: ttl must not be negative", ErrInvalidInput)
	case ttl > 0 && ttl < time.Millisecond:
		return fmt.Errorf("%w: ttl must be at least 1ms", ErrInvalidInput)
	case ttl > c.opts.MaxTTL:
		// Whole seconds, the unit GraphQL clients pass.
		return fmt.Errorf("%w: ttl of %s is above the limit of %s", ErrInvalidInput, seconds(ttl), seconds(c.opts.MaxTTL))
	}
	return nil
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func (c *Client) checkValue(value json.RawMessage) error {
	switch {
	case len(value) > c.opts.MaxValueBytes:
		return fmt.Errorf("%w: value is %d bytes of JSON; the limit is %d", ErrInvalidInput, len(value), c.opts.MaxValueBytes)
	case !json.Valid(value):
		return fmt.Errorf("%w: value is not valid JSON", ErrInvalidInput)
	}
	return nil
}
