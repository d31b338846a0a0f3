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
// dial and command timeouts), and reports what was negotiated. It is for
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
	for !c.open.Load() {
		if h := c.Health(); h.Reason != ReasonConnecting {
			return CheckReport{Health: h}, fmt.Errorf("%w: %s", ErrUnavailable, h.Reason)
		}
		select {
		case <-ctx.Done():
			return CheckReport{Health: c.Health()}, fmt.Errorf("%w: no answer within %s", ErrUnavailable, wait)
		case <-time.After(10 * time.Millisecond):
		}
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
