package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"
)

// monitor owns the connection: it dials until Redis answers, then probes it
// at ProbeInterval while it is up and at the reconnect backoff while it is
// down. It is the only goroutine that opens the request gate.
func (c *Client) monitor(ctx context.Context) {
	defer close(c.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	attempt := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.kick:
		}
		if c.check(ctx) {
			attempt = 0
			timer.Reset(c.opts.ProbeInterval)
		} else {
			timer.Reset(c.backoff(attempt))
			attempt++
		}
		// Requests that failed while this probe ran asked for a probe; it
		// has just happened.
		select {
		case <-c.kick:
		default:
		}
	}
}

// check connects if need be, probes Redis and publishes the result. It
// reports whether Redis answered.
func (c *Client) check(ctx context.Context) bool {
	if !c.open.Load() {
		c.probing.Store(true)
		defer c.probing.Store(false)
		c.obs.ObserveReconnectAttempt()
	}
	vk := c.vk.Load()
	if vk == nil {
		client, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				if c.tlsConfig != nil && isTimeout(err) {
					// A plaintext server reads a TLS ClientHello as a partial
					// command and waits: the handshake just times out.
					err = fmt.Errorf("no reply to the TLS handshake (does the server speak TLS on this port?): %w", err)
				}
				c.markDown(err)
			}
			return false
		}
		vk = &valkeyClient{client}
		c.vk.Store(vk)
	}
	start := time.Now()
	p := c.probe(ctx, vk)
	c.obs.ObserveProbe(time.Since(start), p.err)
	if p.err != nil {
		if ctx.Err() == nil {
			c.markDown(p.err)
		}
		return false
	}
	c.markUp(p)
	return true
}

// connect opens the valkey-go client. valkey.NewClient takes no context and
// can block for the whole dial timeout on a hung server, so it runs aside:
// Close need not wait for it, and a client that arrives too late is closed.
func (c *Client) connect(ctx context.Context) (valkey.Client, error) {
	type result struct {
		client valkey.Client
		err    error
	}
	done := make(chan result, 1)
	go func() {
		opt := c.clientOption()
		client, err := valkey.NewClient(opt)
		if !opt.DisableCache {
			// Refused at the handshake (ErrNoCache), or connected but a
			// cached read fails (checkClientCache); any other error is
			// the connection's, for the monitor to handle.
			var cause error
			switch {
			case err != nil && errors.Is(err, valkey.ErrNoCache):
				cause = err
			case err == nil:
				cause = c.checkClientCache(client)
			}
			if cause != nil {
				// The server speaks RESP2, refuses CLIENT TRACKING, or the
				// ACL user may not run what a cached read needs: connect
				// with plain reads rather than not at all.
				if client != nil {
					client.Close()
				}
				c.clientCacheRefused.Store(true)
				c.log.Warn("client-side caching unavailable, reads go to Redis every time: the server refused client tracking or a command a cached read needs (RESP2, a managed service without tracking, or an ACL user without CLIENT TRACKING, CLIENT CACHING, MULTI, EXEC and PTTL)", slog.String("cause", describe(cause)))
				opt.DisableCache = true
				client, err = valkey.NewClient(opt)
			}
		}
		done <- result{client, err}
	}()
	select {
	case r := <-done:
		return r.client, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.client != nil {
				r.client.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// checkClientCache makes one cached read, as Get does: the handshake only
// turns tracking on, and an ACL user may be allowed that but not the
// commands valkey-go sends for a cached read (CLIENT CACHING, MULTI, PTTL,
// EXEC). The read needs a key that exists (valkey-go answers a missing one
// without them), so a short-lived one is written first; a user that may
// not write it cannot be checked, and keeps the cache. The key is deleted
// right after. Network trouble
// returns nil: that is for the monitor to handle.
func (c *Client) checkClientCache(client valkey.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.DialTimeout+c.opts.CommandTimeout)
	defer cancel()
	key := c.opts.KeyPrefix + "cache-service:tracking-check"
	if err := client.Do(ctx, client.B().Set().Key(key).Value(`"tracking check"`).Ex(10*time.Second).Build().Pin()).Error(); err != nil {
		return nil
	}
	err := client.DoCache(ctx, client.B().Get().Key(key).Cache().Pin(), time.Second).Error()
	// Leave nothing behind (the TTL covers a user that may not delete).
	_ = client.Do(ctx, client.B().Del().Key(key).Build().Pin()).Error()
	if errors.Is(err, valkey.ErrDoCacheAborted) || err != nil && isReply(err) {
		return err
	}
	return nil
}

// isReply reports whether err is an error reply from the server (NOPERM,
// ERR unknown command, ...), as opposed to a network failure.
func isReply(err error) bool {
	_, ok := valkey.IsValkeyErr(err)
	return ok
}

func (c *Client) clientOption() valkey.ClientOption {
	o := c.opts
	opt := valkey.ClientOption{
		InitAddress: []string{o.Addr},
		Username:    o.Username,
		Password:    o.Password,
		SelectDB:    o.DB,
		TLSConfig:   c.tlsConfig,
		ClientName:  o.ClientName,
		Dialer:      netDialer(o.DialTimeout),
		// A silent connection is detected after this long even when the
		// kernel's keepalive would take far longer.
		ConnWriteTimeout:  o.DialTimeout + o.CommandTimeout,
		DisableCache:      o.DisableClientCache || c.clientCacheRefused.Load(),
		CacheSizeEachConn: o.ClientCacheBytes,
		// One pipelined connection per server: cached reads and writes of a
		// key then share a connection, which writeFenced relies on (and
		// valkey-go's auto-pipelining keeps one connection busy enough).
		PipelineMultiplex: -1,
		RetryDelay:        c.retryDelay,
		DisableRetry:      o.MaxRetries < 0,
	}
	switch {
	case len(o.ClusterAddrs) > 0:
		opt.InitAddress = o.ClusterAddrs
		// Follow topology changes (failover, resharding) without waiting
		// for a MOVED reply to reveal them.
		opt.ClusterOption.ShardsRefreshInterval = o.ProbeInterval
	case len(o.Sentinel.Addrs) > 0:
		opt.InitAddress = o.Sentinel.Addrs
		opt.Sentinel = valkey.SentinelOption{
			MasterSet:  o.Sentinel.MasterSet,
			Username:   o.Sentinel.Username,
			Password:   o.Sentinel.Password,
			TLSConfig:  c.sentinelTLS,
			Dialer:     netDialer(o.DialTimeout),
			ClientName: o.ClientName,
		}
	}
	return opt
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: valkey.DefaultTCPKeepAlive}
}

// retryDelay is valkey-go's retry policy for read-only commands: at most
// MaxRetries retries, spaced like reconnects. valkey-go itself stops when
// the next wait would pass the command's deadline.
func (c *Client) retryDelay(attempts int, _ valkey.Completed, _ error) time.Duration {
	if attempts > c.opts.MaxRetries {
		return -1
	}
	return c.backoff(attempts - 1)
}

// backoff is the wait before reconnect attempt n (from 0): exponential from
// ReconnectMinBackoff, capped at ReconnectMaxBackoff, with equal jitter so
// that many instances do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.ReconnectMaxBackoff
	if n < 30 {
		d = min(d, c.opts.ReconnectMinBackoff<<n)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// markUp publishes a successful probe: connected, or degraded when the PING
// was slow or operations failed since the last probe.
func (c *Client) markUp(p probeResult) {
	failures := c.windowFailures.Swap(0)
	c.consecutiveFailures.Store(0)
	status, reason := StatusConnected, ""
	switch {
	case p.latency > c.opts.DegradedLatency:
		status, reason = StatusDegraded, "slow: PING took "+p.latency.Round(time.Microsecond).String()+", above "+c.opts.DegradedLatency.String()
	case p.partial != "":
		status, reason = StatusDegraded, p.partial
	case failures > 0:
		status, reason = StatusDegraded, "operations failed since the last probe"
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.health.Load()
	now := time.Now()
	h := &Health{
		Status: status, Since: prev.Since, CheckedAt: now, Latency: p.latency,
		Reason: reason, Addr: p.addr, Server: p.server,
		Mode: p.mode, TLS: c.tlsConfig != nil, RESP: p.resp, Cluster: p.cluster,
		LastError: prev.LastError, LastErrorAt: prev.LastErrorAt,
	}
	if f := c.lastFailure.Load(); f != nil && f.at.After(h.LastErrorAt) {
		h.LastError, h.LastErrorAt = f.err.Error(), f.at
	}
	changed := status != prev.Status || !c.states.started
	if changed {
		h.Since = now
	}
	c.health.Store(h)
	if c.closed {
		return
	}
	if prev.Status == StatusDisconnected && c.memory != nil {
		// Redis is back: what the fallback held is not merged back, and
		// must not be served in a later outage either.
		c.memory.clear()
	}
	c.open.Store(true)

	attrs := []any{slog.Duration("latency", p.latency)}
	if p.server != nil {
		attrs = append(attrs, slog.String("server", p.server.Version))
	}
	var log bool
	var skipped int
	if changed {
		c.obs.ObserveTransition(prev.Status, status)
		log, skipped = c.states.change(prev.Status, status, now)
	} else if status == StatusDegraded {
		log, _, skipped = c.states.ongoing(status, now)
	}
	if !log {
		return
	}
	if skipped > 0 {
		attrs = append(attrs, slog.Int("changesNotLogged", skipped))
	}
	switch status {
	case StatusConnected:
		if prev.Status == StatusDisconnected && prev.Reason != ReasonConnecting {
			attrs = append(attrs, slog.Duration("downFor", now.Sub(prev.Since).Round(time.Millisecond)))
		}
		c.log.Info("redis connected", attrs...)
	case StatusDegraded:
		c.log.Warn("redis degraded", append(attrs, slog.String("reason", reason))...)
	}
}

// markDown closes the request gate and publishes the outage. It is logged
// once (unless Redis is flapping: see stateLog), then at most once per
// OutageReminder while it lasts.
func (c *Client) markDown(cause error) {
	now := time.Now()
	reason := describe(cause)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.open.Store(false)
	// Failures that led here belong to this outage; operations still in
	// flight from before must not count again, nor make the first probe
	// after recovery report "degraded".
	c.epoch.Add(1)
	c.windowFailures.Store(0)
	prev := c.health.Load()
	h := &Health{
		Status: StatusDisconnected, Since: prev.Since, CheckedAt: now,
		Reason: reason, Addr: c.addrs, Mode: prev.Mode, TLS: prev.TLS,
		LastError: reason, LastErrorAt: now,
	}
	changed := prev.Status != StatusDisconnected || !c.states.started
	if prev.Status != StatusDisconnected {
		h.Since = now
		c.obs.ObserveTransition(prev.Status, StatusDisconnected)
		if c.memory != nil {
			// Start each outage empty: entries from an earlier one are
			// older than what Redis has had since.
			c.memory.clear()
		}
	}
	c.health.Store(h)

	var announce, remind bool
	var skipped int
	if changed {
		announce, skipped = c.states.change(prev.Status, StatusDisconnected, now)
	} else {
		announce, remind, skipped = c.states.ongoing(StatusDisconnected, now)
	}
	switch {
	case announce:
		attrs := []any{slog.String("cause", reason)}
		if skipped > 0 {
			attrs = append(attrs, slog.Int("changesNotLogged", skipped))
		}
		c.log.Warn("redis unreachable; serving without cache until it returns", attrs...)
	case remind:
		c.log.Warn("redis still unreachable", slog.String("cause", reason), slog.Duration("downFor", now.Sub(h.Since).Round(time.Second)))
	}
}

// describe renders an error for logs and health: one line, and free of
// credentials, which valkey-go never puts in its errors.
func describe(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		msg = "authentication failed: " + msg
	case strings.Contains(msg, "DB index is out of range"):
		msg = "database number is out of range for this server (a configuration mistake, not an outage): " + msg
	case tlsCause(msg) != "":
		msg = tlsCause(msg) + ": " + msg
	case errors.Is(err, context.DeadlineExceeded):
		msg = "no reply within the deadline: " + msg
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		msg = "connection closed by the server (does it require TLS, or refuse this client?): " + msg
	}
	return strings.Join(strings.Fields(msg), " ")
}

// throttle lets one log line through per kind of error per interval and
// counts the ones it held back, so a storm of rejected commands (an
// out-of-memory Redis, say) costs a line a minute, not a line a request.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

func (t *throttle) log(log *slog.Logger, op string, err error) {
	kind, _, _ := strings.Cut(err.Error(), " ")
	t.mu.Lock()
	if t.seen == nil {
		t.seen = map[string]*throttled{}
	}
	s := t.seen[kind]
	if s == nil {
		s = &throttled{}
		t.seen[kind] = s
	}
	now := time.Now()
	if !s.last.IsZero() && now.Sub(s.last) < t.every {
		s.suppressed++
		t.mu.Unlock()
		return
	}
	suppressed := s.suppressed
	s.last, s.suppressed = now, 0
	t.mu.Unlock()
	log.Warn("redis rejected a command", slog.String("op", op), slog.String("error", describe(err)), slog.Int("similarSinceLastLog", suppressed))
}
