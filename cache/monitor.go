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
// at ProbeInterval while it is connected, soon again while it is degraded,
// and at the reconnect backoff while it is down. Its results go to the
// availability owner, the only thing that closes the breaker.
func (c *Client) monitor(ctx context.Context) {
	defer close(c.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	attempt := 0
	var swept time.Time
	for checks := 0; ; checks++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.avail.kick:
		}
		switch v := c.check(ctx, checks > 0); v {
		case probeStale:
			timer.Reset(0)
		case probeConnected:
			attempt = 0
			timer.Reset(c.opts.ProbeInterval)
			if time.Since(swept) >= tagSweepEvery {
				swept = time.Now()
				c.sweep(ctx)
			}
		case probeDegradedByRequests:
			// Requests failed since the last probe, but Redis answers: look
			// again soon, so that once they stop failing Health says so
			// within a backoff, not a probe interval.
			attempt = 0
			timer.Reset(c.backoff(0))
		default: // slow, partly down, or down
			timer.Reset(c.backoff(attempt))
			attempt++
		}
		// Requests that failed while this probe ran asked for a probe; it
		// has just happened.
		select {
		case <-c.avail.kick:
		default:
		}
	}
}

// tagSweepEvery is how often the monitor prunes dead entries from the tag
// index, a few sets at a time (see tags.go).
const tagSweepEvery = time.Minute

func (c *Client) sweep(ctx context.Context) {
	vk := c.vk.Load()
	if vk == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout+c.opts.CommandTimeout)
	defer cancel()
	c.sweepTags(ctx, vk, 20)
}

// probeVerdict is what one round of check came to, for scheduling the next.
type probeVerdict int

const (
	probeConnected probeVerdict = iota
	probeDegradedByRequests
	probeDegraded
	probeDown
	// probeStale: the breaker tripped while the probe ran; its answer says
	// nothing about Redis now.
	probeStale
)

// check connects if need be, probes Redis and hands the result to the
// availability owner. again says an earlier check ran: the first connection
// at start is not a reconnect, even though the breaker is not closed yet.
func (c *Client) check(ctx context.Context, again bool) probeVerdict {
	ticket := c.avail.probeStarted()
	if again && c.avail.breaker() != closed {
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
				c.avail.probeFailed(ticket, err)
			}
			return probeDown
		}
		vk = &valkeyClient{client}
		c.vk.Store(vk)
	}
	start := time.Now()
	p := c.probe(ctx, vk)
	c.obs.ObserveProbe(time.Since(start), p.err)
	if p.err != nil {
		if ctx.Err() == nil {
			c.avail.probeFailed(ticket, p.err)
		}
		return probeDown
	}
	if !c.avail.probeSucceeded(ticket, p) {
		return probeStale
	}
	h := c.avail.health.Load()
	switch {
	case h.Status == StatusConnected:
		return probeConnected
	case h.Reason == reasonRequestsFailed:
		return probeDegradedByRequests
	}
	return probeDegraded
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
	key := c.internalKey(trackingCheckKey)
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

// connBuffer is the read and write buffer of each connection to Redis.
const connBuffer = 64 << 10

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
		DialCtxFn:   c.dial,
		// A silent connection is detected after this long even when the
		// kernel's keepalive would take far longer.
		ConnWriteTimeout:  o.DialTimeout + o.CommandTimeout,
		DisableCache:      o.DisableClientCache || c.clientCacheRefused.Load(),
		CacheSizeEachConn: o.ClientCacheBytes,
		// Redis's invalidations wake the callers of Fetch waiting for a
		// key to be written.
		OnInvalidations: c.waiters.invalidated,
		// One pipelined connection per server: cached reads and writes of a
		// key then share a connection, which writeFenced relies on (and
		// valkey-go's auto-pipelining keeps one connection busy enough).
		PipelineMultiplex: -1,
		// valkey-go's default is 0.5 MiB each way per connection, which
		// was a third of the service's heap under load (and counts
		// towards the GC's goal, so garbage grows with it). 64 KiB holds
		// hundreds of pipelined commands; a larger value passes through
		// bufio without being buffered.
		ReadBufferEachConn:  connBuffer,
		WriteBufferEachConn: connBuffer,
		RetryDelay:          c.retryDelay,
		DisableRetry:        o.MaxRetries < 0,
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
			// Sentinel's +switch-master events are the fast path; this
			// catches a missed one, which would otherwise leave the client
			// on a demoted master (every write READONLY) until restarted.
			TopologyRefreshInterval: o.ProbeInterval,
		}
	}
	return opt
}

func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: valkey.DefaultTCPKeepAlive}
}

// retryDelay is valkey-go's retry policy for read-only commands: at most
// MaxRetries retries. The first is at once (a read that failed because its
// connection closed goes out on a fresh one), later ones are spaced like
// reconnects. valkey-go itself stops when the next wait would pass the
// command's deadline.
func (c *Client) retryDelay(attempts int, _ valkey.Completed, _ error) time.Duration {
	switch {
	case attempts > c.opts.MaxRetries:
		return -1
	case attempts <= 1:
		return 0
	}
	return c.backoff(attempts - 2)
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

// describe renders an error for logs and health: one line, and free of
// credentials, which valkey-go never puts in its errors.
func describe(err error) string {
	msg := err.Error()
	code := replyCode(err)
	switch {
	case code == "NOAUTH":
		// Redis's own text (HELLO must be called with the client already
		// authenticated...) speaks of commands, not of configuration.
		msg = "authentication failed: the server requires a password and none was sent (set REDIS_PASSWORD, with REDIS_USERNAME for an ACL user): " + msg
	case code == "WRONGPASS":
		msg = "authentication failed: the server refused the user name or password (check REDIS_PASSWORD and REDIS_USERNAME): " + msg
	case code == "ERR" && strings.Contains(msg, "DB index is out of range"):
		// Redis gives this reply no code of its own.
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
