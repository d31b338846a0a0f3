package cache

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// CheckReport is what a one-off connection check found.
type CheckReport struct {
	Health Health
	// TLSVersion is the version a TLS handshake with the first server
	// negotiated, such as "TLS 1.3"; empty without TLS.
	TLSVersion string
}

// Check connects with opts once, waits for Redis to answer (bounded by the
// dial and command timeouts), writes, reads and deletes a test key under the
// prefix (so credentials that connect but may not do the service's work
// fail), and reports what was negotiated. It is for
// checking a configuration before rolling it out, not for the service's
// request path. The error says why Redis could not be used.
func Check(ctx context.Context, opts Options) (CheckReport, error) {
	c, err := New(opts)
	if err != nil {
		return CheckReport{}, err
	}
	defer c.Close()
	o := c.opts
	wait := o.DialTimeout + o.CommandTimeout + time.Second
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// One attempt: it ends with Redis answering (the gate opens) or with
	// its cause recorded in place of "connecting".
	for c.avail.breaker() != closed {
		if h := c.Health(); h.Reason != ReasonConnecting {
			return CheckReport{Health: h}, fmt.Errorf("%w: %s", ErrUnavailable, h.Reason)
		}
		select {
		case <-ctx.Done():
			return CheckReport{Health: c.Health()}, fmt.Errorf("%w: no answer within %s", ErrUnavailable, wait)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Connected is not enough: the credentials must allow what the service
	// does. A throwaway key under the prefix is written, read and deleted:
	// an internal key, which no client's key can be (see internalKey).
	key := c.internalKey(checkConfigKey)
	if _, err := c.set(ctx, key, []byte(`"check"`), 10*time.Second); err != nil {
		return CheckReport{Health: c.Health()}, fmt.Errorf("write a test key under the prefix: %w", err)
	}
	if r := c.get(ctx, key); r.Err != nil || string(r.Value) != `"check"` {
		return CheckReport{Health: c.Health()}, fmt.Errorf("read the test key back: got %q, %v", r.Value, r.Err)
	}
	if _, _, err := c.exists(ctx, key); err != nil {
		return CheckReport{Health: c.Health()}, fmt.Errorf("check the test key exists: %w", err)
	}
	if _, _, err := c.del(ctx, key); err != nil {
		return CheckReport{Health: c.Health()}, fmt.Errorf("delete the test key: %w", err)
	}
	r := CheckReport{Health: c.Health()}
	if c.tlsConfig != nil {
		r.TLSVersion, err = tlsVersion(ctx, c.firstAddr(), c.tlsConfig, o.DialTimeout)
		if err != nil {
			return r, fmt.Errorf("TLS handshake for the version check: %w", err)
		}
	}
	return r, nil
}

func (c *Client) firstAddr() string {
	switch {
	case len(c.opts.ClusterAddrs) > 0:
		return c.opts.ClusterAddrs[0]
	case len(c.opts.Sentinel.Addrs) > 0:
		return c.Health().Addr // the master, once known
	}
	return c.opts.Addr
}

func tlsVersion(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (string, error) {
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return "", err
		}
		cfg.ServerName = host
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return tls.VersionName(conn.(*tls.Conn).ConnectionState().Version), nil
}
