package cache

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// dial opens every connection valkey-go makes (valkey.ClientOption's
// DialCtxFn). It does what valkey-go's own dialer does (TCP, then TLS when
// configured) and two things more, both for telling a dropped connection
// from an outage:
//   - a failure to connect comes back as a *dialError, so a command that
//     waited for this connection is known never to have been sent;
//   - the connection reports, once, when the server or the network closes
//     it under the client (a reset, an EOF): the availability owner counts
//     it and asks the probe whether Redis is still there, instead of
//     treating the commands that were in flight as an outage.
func (c *Client) dial(ctx context.Context, dst string, dialer *net.Dialer, cfg *tls.Config) (net.Conn, error) {
	if dialer.Timeout > 0 {
		// As tls.Dialer does: the timeout covers the handshake too (a
		// plaintext server reads a ClientHello as a partial command and
		// waits for the rest).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialer.Timeout)
		defer cancel()
	}
	raw, err := dialer.DialContext(ctx, "tcp", dst)
	if err != nil {
		return nil, &dialError{err: err}
	}
	conn := &watchedConn{Conn: raw, onBreak: c.avail.connectionReset}
	if cfg == nil {
		return conn, nil
	}
	if cfg.ServerName == "" {
		// As tls.Dialer does: verify the host that was dialled.
		host, _, err := net.SplitHostPort(dst)
		if err != nil {
			raw.Close()
			return nil, &dialError{err: err}
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.closeQuietly()
		return nil, &dialError{err: err}
	}
	return tc, nil
}

// watchedConn is a connection that reports the first time a read fails
// because the peer or the network closed it. A read that fails after this
// process closed the connection is not reported.
type watchedConn struct {
	net.Conn
	onBreak  func()
	done     atomic.Bool // closed here, or a break already reported
	reported atomic.Bool
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil && !w.done.Load() && isConnectionBreak(err) && w.reported.CompareAndSwap(false, true) {
		w.done.Store(true)
		w.onBreak()
	}
	return n, err
}

func (w *watchedConn) Close() error {
	w.done.Store(true)
	return w.Conn.Close()
}

// closeQuietly closes a connection that never carried a command.
func (w *watchedConn) closeQuietly() { _ = w.Close() }
