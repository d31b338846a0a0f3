package cache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valkey-io/valkey-go"
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

	// vk is nil until the first connection succeeds; valkey-go reconnects
	// by itself after that.
	vk atomic.Pointer[valkeyClient]
	// open is the request path's gate: false while Redis is known to be
	// unreachable, so operations fail fast instead of waiting on it.
	open atomic.Bool
	// health is the snapshot health requests read.
	health atomic.Pointer[Health]

	// Failure counters the request path feeds and the monitor reads.
	consecutiveFailures atomic.Int64
	windowFailures      atomic.Int64
	lastFailure         atomic.Pointer[failure]

	// mu serialises state changes and their log lines; nothing on the
	// request path takes it unless the state is changing.
	mu           sync.Mutex
	lastReminder time.Time
	announced    bool

	rejected throttle

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

// valkeyClient boxes the interface so it can sit in an atomic.Pointer.
type valkeyClient struct{ valkey.Client }

type failure struct {
	err error
	at  time.Time
}

// New returns a Client and starts connecting to Redis in the background. It
// never blocks on Redis and never fails because Redis is down: until the
// first connection succeeds, operations return ErrUnavailable at once.
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
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	c.rejected = throttle{every: opts.OutageReminder}
	c.health.Store(&Health{Status: StatusDisconnected, Since: time.Now(), Reason: "connecting", Addr: addrs, TLS: tlsConfig != nil})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.monitor(ctx)
	return c, nil
}

// Close stops the background monitor and closes the connections. Operations
// after Close return ErrUnavailable.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.open.Store(false)
	c.cancel()
	<-c.done
	if vk := c.vk.Load(); vk != nil {
		vk.Close()
	}
}

// Health returns the last snapshot of Redis's availability.
func (c *Client) Health() Health {
	return *c.health.Load()
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

// Get returns the JSON value stored at key. A miss, including an expired
// key, is (nil, false, nil). A value that is not valid JSON (written by
// something other than this service) is returned as a JSON string.
func (c *Client) Get(ctx context.Context, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	vk, err := c.acquire()
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	b, err := vk.Do(ctx, vk.B().Get().Key(c.opts.KeyPrefix+key).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		c.succeeded()
		return nil, false, nil
	}
	if err != nil {
		return nil, false, c.failed(ctx, "get", err)
	}
	c.succeeded()
	if !json.Valid(b) {
		b, _ = json.Marshal(string(b))
	}
	return b, true, nil
}

// Set stores value, which must be JSON text, at key. A ttl of zero keeps it
// until deleted; otherwise it expires after ttl. A nil error means Redis
// confirmed the write.
func (c *Client) Set(ctx context.Context, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := c.checkValue(value); err != nil {
		return err
	}
	if err := c.checkTTL(ttl); err != nil {
		return err
	}
	vk, err := c.acquire()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
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
	if err := vk.Do(ctx, cmd).Error(); err != nil {
		return c.failed(ctx, "set", err)
	}
	c.succeeded()
	return nil
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string) (bool, error) {
	return c.count(ctx, "delete", key, func(b valkey.Builder, k string) valkey.Completed { return b.Del().Key(k).Build() })
}

// Exists reports whether key holds a value.
func (c *Client) Exists(ctx context.Context, key string) (bool, error) {
	return c.count(ctx, "exists", key, func(b valkey.Builder, k string) valkey.Completed { return b.Exists().Key(k).Build() })
}

// count runs a one-key command whose integer reply counts the keys affected.
func (c *Client) count(ctx context.Context, op, key string, build func(valkey.Builder, string) valkey.Completed) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	vk, err := c.acquire()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	n, err := vk.Do(ctx, build(vk.B(), c.opts.KeyPrefix+key)).AsInt64()
	if err != nil {
		return false, c.failed(ctx, op, err)
	}
	c.succeeded()
	return n > 0, nil
}

// GetValue reads key and decodes its JSON value into a T: the typed getter
// for Go callers. A miss is (zero T, false, nil).
func GetValue[T any](ctx context.Context, c *Client, key string) (T, bool, error) {
	var v T
	raw, ok, err := c.Get(ctx, key)
	if err != nil || !ok {
		return v, false, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode value of %q: %w", key, err)
	}
	return v, true, nil
}

// SetValue encodes v as JSON and stores it at key, as Set does.
func (c *Client) SetValue(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: value cannot be encoded as JSON: %w", ErrInvalidInput, err)
	}
	return c.Set(ctx, key, b, ttl)
}

// acquire returns the client to send a command with, or ErrUnavailable at
// once while Redis is known to be down.
func (c *Client) acquire() (*valkeyClient, error) {
	if !c.open.Load() {
		if c.closed.Load() {
			return nil, fmt.Errorf("%w: cache client closed", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, c.health.Load().Reason)
	}
	return c.vk.Load(), nil
}

func (c *Client) succeeded() {
	// Load before store: under load most calls find zero and skip the write,
	// which keeps the cache line shared across cores.
	if c.consecutiveFailures.Load() != 0 {
		c.consecutiveFailures.Store(0)
	}
}

// failed classifies err, feeds the availability counters, and closes the
// gate once enough operations in a row failed for lack of Redis.
func (c *Client) failed(ctx context.Context, op string, err error) error {
	classified, outage := classify(ctx, err)
	if !outage {
		if errors.Is(classified, ErrRejected) {
			c.rejected.log(c.log, op, err)
		}
		return classified
	}
	if !c.open.Load() {
		// Redis is already known to be down (this command was in flight, or
		// retrying, when the outage was declared): it adds nothing.
		return classified
	}
	c.windowFailures.Add(1)
	c.lastFailure.Store(&failure{err: err, at: time.Now()})
	// A cluster is not down because one node is: its other slots keep
	// working, so only the probe (which sees every node) closes the gate.
	if c.consecutiveFailures.Add(1) >= failuresToTrip && c.health.Load().Mode != ModeCluster {
		c.markDown(err)
		c.poke()
	}
	return classified
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
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
	return nil
}

func (c *Client) checkTTL(ttl time.Duration) error {
	switch {
	case ttl < 0:
		return fmt.Errorf("%w: ttl must not be negative", ErrInvalidInput)
	case ttl > 0 && ttl < time.Millisecond:
		return fmt.Errorf("%w: ttl must be at least 1ms", ErrInvalidInput)
	case ttl > c.opts.MaxTTL:
		// Seconds, because that is the unit GraphQL clients pass.
		return fmt.Errorf("%w: ttl of %gs is above the limit of %gs", ErrInvalidInput, ttl.Seconds(), c.opts.MaxTTL.Seconds())
	}
	return nil
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
