// Package faultproxy is a TCP proxy for tests that puts faults between a
// client and a real server: added latency, connections reset mid-stream,
// and a black hole that accepts connections and never answers.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards connections from Addr to a target address.
type Proxy struct {
	// Addr is where clients connect.
	Addr   string
	target string
	l      net.Listener

	mu      sync.Mutex
	cond    *sync.Cond
	latency time.Duration
	hole    bool
	conns   map[*link]struct{}
	closed  bool
}

// link is one proxied connection: the client side and the server side.
type link struct {
	client, server net.Conn
}

// Start listens on a free loopback port and forwards to target until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[*link]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// SetLatency delays every chunk forwarded, in both directions, by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// BlackHole stops (on) or resumes (off) all forwarding. While on, new
// connections are accepted and hang like established ones: bytes are held,
// not dropped, as a network partition holds them, so that a connection
// that survives the fault is not corrupted by it.
func (p *Proxy) BlackHole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = on
	p.cond.Broadcast()
}

// Reset closes every open connection with a TCP reset, as a crashing
// middlebox would. New connections are forwarded as usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.reset()
	}
}

// Close stops the proxy and every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.hole = false
	p.cond.Broadcast()
	p.mu.Unlock()
	p.l.Close()
	p.Reset()
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	if !p.wait() {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		// The server is down: the client sees its connection reset.
		resetConn(client)
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.reset()
		return
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(server, client) })
	wg.Go(func() { p.pipe(client, server) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
	client.Close()
	server.Close()
}

// pipe copies src to dst chunk by chunk, applying the current faults to
// each chunk.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			p.mu.Lock()
			d := p.latency
			p.mu.Unlock()
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			dst.Close()
			return
		}
	}
}

// wait blocks while the black hole is on; false when the proxy closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.hole && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (l *link) reset() {
	resetConn(l.client)
	resetConn(l.server)
}

// resetConn closes c with SO_LINGER 0, which sends RST instead of FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
