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
	"unicode/utf8"

	"github.com/valkey-io/valkey-go"

	"github.com/school-erp/cache-service/internal/jsontext"
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
	avail       *availability
	// waiters are the callers of Fetch waiting for another's value.
	waiters *waitList
	// changes owns the subscription and the watchers (changes.go).
	changes *changeHub
	// publisher sends the announcements of writes (publisher.go).
	publisher *publisher
	// healthWatch sends health transitions to WatchHealth's callers.
	healthWatch *healthWatch

	// vk is nil until the first connection succeeds; valkey-go reconnects
	// by itself after that.
	vk atomic.Pointer[valkeyClient]
	// clientCacheRefused is set when the server refused CLIENT TRACKING.
	clientCacheRefused atomic.Bool
	// forms spares a value the local cache answers a second scan.
	forms formMemo

	mu     sync.Mutex
	closed bool

	rejected throttle

	cancel context.CancelFunc
	done   chan struct{}
}

// valkeyClient boxes the interface so it can sit in an atomic.Pointer.
type valkeyClient struct{ valkey.Client }

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
		waiters:     newWaitList(),
		done:        make(chan struct{}),
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	var memory *memoryTier
	if opts.Fallback == FallbackMemory {
		memory = newMemoryTier(opts.FallbackMaxBytes)
	}
	c.avail = newAvailability(availabilityConfig{
		addrs: addrs, tls: tlsConfig != nil,
		degradedLatency: opts.DegradedLatency, reminder: opts.OutageReminder,
		tripAfter: failuresToTrip,
	}, c.log, c.obs, memory)
	c.rejected = throttle{every: opts.OutageReminder}
	c.changes = newChangeHub(c)
	c.publisher = newPublisher(c)
	c.healthWatch = &healthWatch{c: c}
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
	c.mu.Unlock()
	c.publisher.close()
	c.avail.stop()
	c.changes.stop()
	c.healthWatch.stop()
	c.cancel()
	<-c.done
	if vk := c.vk.Load(); vk != nil {
		vk.Close()
	}
}

// Health returns the last snapshot of Redis's availability, with the
// breaker's and the fallback tier's state as of now. It sends nothing to
// Redis.
func (c *Client) Health() Health {
	h := c.avail.snapshot()
	switch {
	case c.opts.DisableClientCache:
		h.ClientCache = ClientCacheOff
	case c.clientCacheRefused.Load():
		h.ClientCache = ClientCacheUnsupported
	case h.Status == StatusDisconnected:
		h.ClientCache = ClientCacheUnknown
	default:
		h.ClientCache = ClientCacheOn
	}
	h.Fallback.Mode = c.opts.Fallback
	h.KeyspaceNotifications = c.changes.keyspace()
	return h
}

// WaitReady blocks until Redis has answered a probe or ctx is done. The
// service never calls it (it serves while Redis is down); it is for Go
// callers and tests that want Redis before they go on.
func (c *Client) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.avail.breaker() != closed {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrUnavailable, c.avail.health.Load().Reason)
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
	r := c.GetRead(ctx, key)
	return r.Value, r.Backend, r.Err
}

// GetRead is Get, answered as a Read: besides the value, it says whether
// the value is compact (Read.Compact), which Get's callers would otherwise
// have to scan the value again to learn.
func (c *Client) GetRead(ctx context.Context, key string) Read {
	start := time.Now()
	var r Read
	r.Err = checkKey(key)
	if r.Err == nil {
		r = c.get(ctx, c.redisKey(key))
	}
	c.observe(OpGet, readOutcome(r.Value != nil, r.Err), r.Backend, start)
	return r
}

func (c *Client) get(ctx context.Context, rk string) Read {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return fallbackRead(c.fallbackGet(rk, *refused))
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	res := c.cachedRead(opCtx, vk, vk.B().Get().Key(rk).Cache().Pin(), func() valkey.Completed { return vk.B().Get().Key(rk).Build().Pin() })
	b, err := res.AsBytes() // no copy: the reply's string, which nothing writes to
	switch {
	case valkey.IsValkeyNil(err):
		c.answered(res)
		return Read{Backend: BackendRedis}
	case err != nil:
		return fallbackRead(c.fallbackGet(rk, c.failed(ctx, opCtx, epoch, OpGet, err)))
	}
	c.answered(res)
	if err := c.checkStored(b); err != nil {
		return Read{Err: err}
	}
	v, compact := c.forms.scanJSON(b, !c.clientCacheOff())
	return Read{Value: v, Backend: BackendRedis, Compact: compact}
}

// fallbackRead is fallbackGet's answer as a Read (not known to be
// compact).
func fallbackRead(v json.RawMessage, backend Backend, err error) Read {
	return Read{Value: v, Backend: backend, Err: err}
}

// validJSON reports whether b is JSON text: valid syntax (json.Valid's
// answer, from jsontext.Valid, which finds it several times faster) made of
// UTF-8 (which json.Valid does not check inside strings, and a response
// carrying other bytes would not be JSON).
func validJSON(b []byte) bool {
	return utf8.Valid(b) && jsontext.Valid(b)
}

// checkStored refuses a value Redis holds that is larger than any this
// service would have stored (another program wrote it).
func (c *Client) checkStored(b []byte) error {
	if len(b) > c.opts.MaxValueBytes {
		return fmt.Errorf("%w: the value stored is %d bytes; the limit is %d (CACHE_MAX_VALUE_BYTES)", ErrValueTooLarge, len(b), c.opts.MaxValueBytes)
	}
	return nil
}

// cachedRead sends a read through the local cache. Two refusals get one
// plain read instead: an error reply to the cached read's wrapper (Redis
// out of memory refuses the commands queued in the MULTI that valkey-go
// wraps a tracked read in, though a plain GET is allowed), and
// valkey.ErrDoCacheAborted, which valkey-go gives a read waiting on
// another's fetch when the connection closes, and does not retry.
func (c *Client) cachedRead(ctx context.Context, vk *valkeyClient, cached valkey.Cacheable, plain func() valkey.Completed) valkey.ValkeyResult {
	res := vk.DoCache(ctx, cached, c.opts.ClientCacheTTL)
	err := res.Error()
	if err == nil || valkey.IsValkeyNil(err) || c.clientCacheOff() {
		return res
	}
	if _, isReply := valkey.IsValkeyErr(err); isReply || errors.Is(err, valkey.ErrDoCacheAborted) {
		return vk.Do(ctx, plain()) // built only when needed: the hot path builds one command
	}
	return res
}

func (c *Client) clientCacheOff() bool {
	return c.opts.DisableClientCache || c.clientCacheRefused.Load()
}

// answered records that Redis answered a read; a read the local cache
// answered tells nothing about Redis, and is not counted.
func (c *Client) answered(res valkey.ValkeyResult) {
	if !res.IsCacheHit() {
		c.avail.succeeded()
	}
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
	// Compact says Value is known to have no space outside its strings
	// (what a compacting encoder writes for it, byte for byte); false says
	// nothing either way.
	Compact bool
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
	// Only keys that pass the key rules are sent; idx maps each sent
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
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		c.fallbackGetMany(keys, idx, reads, *refused)
		return reads
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	cmds := make([]valkey.CacheableTTL, len(idx))
	for j, i := range idx {
		cmds[j] = valkey.CT(vk.B().Get().Key(c.redisKey(keys[i])).Cache().Pin(), c.opts.ClientCacheTTL)
	}
	results := vk.DoMultiCache(opCtx, cmds...)
	// As in cachedRead: keys whose cached read was refused are read once
	// more, plainly.
	var again []int
	for j, r := range results {
		err := r.Error()
		if err == nil || valkey.IsValkeyNil(err) || c.clientCacheOff() {
			continue
		}
		if _, isReply := valkey.IsValkeyErr(err); isReply || errors.Is(err, valkey.ErrDoCacheAborted) {
			again = append(again, j)
		}
	}
	if len(again) > 0 {
		plain := make([]valkey.Completed, len(again))
		for n, j := range again {
			plain[n] = vk.B().Get().Key(c.redisKey(keys[idx[j]])).Build().Pin()
		}
		for n, r := range vk.DoMulti(opCtx, plain...) {
			results[again[n]] = r
		}
	}
	var outage error
	var unanswered []int
	hitOnly := true
	for j, r := range results {
		i := idx[j]
		b, err := r.AsBytes()
		switch {
		case valkey.IsValkeyNil(err):
			reads[i].Backend = BackendRedis
		case err != nil:
			if _, isReply := valkey.IsValkeyErr(err); !isReply && outage == nil {
				outage = err
			}
			o := classify(ctx, opCtx, err)
			if errors.Is(o.err, ErrRejected) {
				c.rejected.log(c.log, string(OpGetMany), err)
			}
			reads[i].Err = o.err
			if !errors.Is(o.err, ErrRejected) {
				unanswered = append(unanswered, i)
			}
			continue
		default:
			if err := c.checkStored(b); err != nil {
				reads[i].Err = err
				break
			}
			reads[i].Value, reads[i].Compact = c.forms.scanJSON(b, !c.clientCacheOff())
			reads[i].Backend = BackendRedis
		}
		hitOnly = hitOnly && r.IsCacheHit()
	}
	if outage != nil {
		o := c.failed(ctx, opCtx, epoch, OpGetMany, outage)
		if o.fallback {
			c.fallbackGetMany(keys, unanswered, reads, o)
		}
		return reads
	}
	if !hitOnly {
		c.avail.succeeded()
	}
	return reads
}

// fallbackGetMany answers the keys at idx from the fallback tier, or gives
// them the refusal when it may not answer.
func (c *Client) fallbackGetMany(keys []string, idx []int, reads []Read, refused outcome) {
	for _, i := range idx {
		v, backend, err := c.fallbackGet(c.redisKey(keys[i]), refused)
		reads[i] = Read{Value: v, Backend: backend, Err: err}
	}
}

// Set stores value, which must be JSON text, at key. A ttl of zero keeps it
// until deleted; otherwise it expires after ttl. A nil error means the
// write was confirmed, by Redis or, when Redis is unavailable, by the
// fallback tier: the Backend says which.
func (c *Client) Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) (Backend, error) {
	start := time.Now()
	var backend Backend
	err := c.checkSet(key, value, ttl)
	if err == nil {
		backend, err = c.set(ctx, c.redisKey(key), value, ttl)
	}
	c.observe(OpSet, writeOutcome(err), backend, start)
	return backend, err
}

func (c *Client) checkSet(key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := c.checkValue(value); err != nil {
		return err
	}
	return c.checkTTL(ttl)
}

func (c *Client) set(ctx context.Context, rk string, value json.RawMessage, ttl time.Duration) (Backend, error) {
	r, err := c.setWith(ctx, rk, value, SetOptions{TTL: ttl})
	return r.Backend, err
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string) (bool, Backend, error) {
	start := time.Now()
	var deleted bool
	var backend Backend
	err := checkKey(key)
	if err == nil {
		deleted, backend, err = c.del(ctx, c.redisKey(key))
	}
	c.observe(OpDelete, deleteOutcome(deleted, err), backend, start)
	return deleted, backend, err
}

func (c *Client) del(ctx context.Context, rk string) (bool, Backend, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackDelete(rk, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	res, failed := c.write(ctx, opCtx, epoch, OpDelete, vk, rk, c.revoking(vk, rk, vk.B().Del().Key(rk).Build().Pin()))
	if failed != nil {
		return c.fallbackDelete(rk, *failed)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return false, "", fmt.Errorf("%w: unexpected reply to DEL: %w", ErrRejected, err)
	}
	if key, ok := c.clientKey(rk); ok && n > 0 {
		c.publish(opCtx, vk, Change{Key: key, Kind: ChangeDelete})
	}
	return n > 0, BackendRedis, nil
}

// Exists reports whether key holds a value.
func (c *Client) Exists(ctx context.Context, key string) (bool, Backend, error) {
	start := time.Now()
	var found bool
	var backend Backend
	err := checkKey(key)
	if err == nil {
		found, backend, err = c.exists(ctx, c.redisKey(key))
	}
	c.observe(OpExists, readOutcome(found, err), backend, start)
	return found, backend, err
}

func (c *Client) exists(ctx context.Context, rk string) (bool, Backend, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackExists(rk, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	// valkey-go's typed EXISTS builder has no Cache(); an arbitrary
	// read-only EXISTS converts to a Cacheable, and Redis tracks the key it
	// reads like any other.
	cached := valkey.Cacheable(vk.B().Arbitrary("EXISTS").Keys(rk).ReadOnly()).Pin()
	res := c.cachedRead(opCtx, vk, cached, func() valkey.Completed { return vk.B().Exists().Key(rk).Build().Pin() })
	n, err := res.AsInt64()
	if err != nil {
		return c.fallbackExists(rk, c.failed(ctx, opCtx, epoch, OpExists, err))
	}
	c.answered(res)
	return n > 0, BackendRedis, nil
}

// maxResends bounds how often a write Redis certainly did not execute is
// sent again within its deadline.
const maxResends = 10

// writeCmds are the commands of one write, sent together in one pipeline.
// eval, when set, is the same with EVAL in place of EVALSHA, for a server
// that does not hold the script yet (NOSCRIPT: not executed).
type writeCmds struct {
	cmds []valkey.Completed
	eval []valkey.Completed
}

func one(cmd valkey.Completed) writeCmds { return writeCmds{cmds: []valkey.Completed{cmd}} }

// write sends a write, and sends it again, within the operation's
// deadline, while Redis certainly did not execute it and may on another
// try: the connection could not be opened (valkey-go opens a new one for
// the next command), or the server said it cannot serve now (a replica
// during a failover, a server loading its data). valkey-go retries only
// read-only commands; a write it gave up on may have been applied, and is
// never sent again here either: a second SET could overwrite a newer value
// written by someone else in between. It returns the replies of w.cmds.
func (c *Client) write(caller, opCtx context.Context, epoch uint64, op Op, vk *valkeyClient, rk string, w writeCmds) ([]valkey.ValkeyResult, *outcome) {
	cmds, evaluated := w.cmds, false
	for attempt := 0; ; attempt++ {
		res := c.writeFenced(opCtx, vk, rk, cmds...)
		err := firstError(res)
		if err == nil {
			c.avail.succeeded()
			c.avail.confirmed(rk)
			return res, nil
		}
		if replyCode(err) == "NOSCRIPT" && w.eval != nil && !evaluated {
			cmds, evaluated = w.eval, true // not executed: send the script itself
			continue
		}
		o := c.failed(caller, opCtx, epoch, op, err)
		if !o.resend || o.fallback || attempt >= maxResends || attempt >= 1 && o.kind == unreachable && isDialFailure(err) {
			// A second connection that cannot be opened is an outage, or a
			// node down: waiting out the deadline would not help.
			return res, &o
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-opCtx.Done():
			return res, &o
		}
		if e, ok := c.avail.allow(); !ok {
			// The breaker opened meanwhile: not executed, and the fallback
			// may answer.
			o.fallback = true
			return res, &o
		} else {
			epoch = e
		}
	}
}

// firstError is the first error among replies (a nil reply is not one).
func firstError(res []valkey.ValkeyResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil && !valkey.IsValkeyNil(err) {
			return err
		}
	}
	return nil
}

// writeFenced sends a write. With client-side caching on, Redis tells this
// client to drop its own cached copy of the key only after the write's
// reply; a read right after the write could still find the old value. So a
// harmless read of the same key (PTTL) follows in the same pipeline: by the
// time its reply arrives, the invalidation before it has been applied, and
// the caller's next read sees the write. (Being on the key's slot, the fence
// goes to the same node, and, with one pipelined connection per node, the
// same connection as cached reads of the key.) It returns the write's
// replies, without the fence's.
func (c *Client) writeFenced(ctx context.Context, vk *valkeyClient, rk string, write ...valkey.Completed) []valkey.ValkeyResult {
	if c.clientCacheOff() {
		if len(write) == 1 {
			return []valkey.ValkeyResult{vk.Do(ctx, write[0])}
		}
		return vk.DoMulti(ctx, write...)
	}
	results := vk.DoMulti(ctx, append(write, vk.B().Pttl().Key(rk).Build().Pin())...)
	return results[:len(write)]
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

// The fallback tier answers only a command Redis did not execute, while the
// breaker refuses Redis (see fallback.go); otherwise the refusal stands.

func (c *Client) fallbackGet(rk string, refused outcome) (json.RawMessage, Backend, error) {
	var v json.RawMessage
	if !refused.fallback || c.avail.withFallback(func(m *memoryTier) error {
		v, _ = m.get(rk)
		return nil
	}) != nil {
		return nil, "", refused.err
	}
	return v, BackendMemory, nil
}

func (c *Client) fallbackExists(rk string, refused outcome) (bool, Backend, error) {
	v, backend, err := c.fallbackGet(rk, refused)
	return v != nil, backend, err
}

func (c *Client) fallbackDelete(rk string, refused outcome) (bool, Backend, error) {
	var deleted bool
	if !refused.fallback || c.avail.withFallback(func(m *memoryTier) error {
		deleted = m.delete(rk)
		return nil
	}) != nil {
		return false, "", refused.err
	}
	return deleted, BackendMemory, nil
}

// Every command is pinned (valkey-go then never returns it to its pool).
// When a connection breaks, valkey-go retries a read-only command on a new
// connection while the dead connection's writer may still be reading it; a
// pooled command could be handed to another request meanwhile. The race
// detector caught this under the connection-reset fault test.

// acquire returns the client to send a command with and the current outage
// epoch, or the refusal when nothing may be sent: the breaker refuses Redis
// (the fallback may answer), or the caller's context is already done
// (nothing was sent, and no fallback answers for a caller that has gone).
func (c *Client) acquire(ctx context.Context) (*valkeyClient, uint64, *outcome) {
	if err := ctx.Err(); err != nil {
		return nil, 0, &outcome{err: fmt.Errorf("%w: %w: %w", ErrUnavailable, errDeadlineBeforeSend, err)}
	}
	epoch, ok := c.avail.allow()
	if !ok {
		return nil, 0, &outcome{err: fmt.Errorf("%w: %s", ErrUnavailable, c.avail.health.Load().Reason), fallback: true}
	}
	return c.vk.Load(), epoch, nil
}

// failed classifies a failed command, tells the availability owner, and
// says whether the fallback may answer instead: only when Redis did not
// execute the command and the breaker now refuses it.
func (c *Client) failed(caller, opCtx context.Context, epoch uint64, op Op, err error) outcome {
	o := classify(caller, opCtx, err)
	if errors.Is(o.err, ErrRejected) {
		c.rejected.log(c.log, string(op), err)
	}
	refusing := c.avail.failed(epoch, o.kind, err, c.cluster())
	o.fallback = refusing && errors.Is(o.err, ErrUnavailable) && caller.Err() == nil
	return o
}

func (c *Client) cluster() bool {
	if len(c.opts.ClusterAddrs) > 0 {
		return true
	}
	return c.avail.health.Load().Mode == ModeCluster
}

func (c *Client) observe(op Op, outcome Outcome, backend Backend, start time.Time) {
	c.obs.ObserveOperation(op, outcome, backend, time.Since(start))
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
	case !validJSON(value):
		return fmt.Errorf("%w: value is not valid JSON (UTF-8)", ErrInvalidInput)
	}
	return nil
}
