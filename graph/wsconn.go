package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
)

// wsConn is gqlgen's WebsocketConn on a coder/websocket connection, as
// gqlgen's own adapter (transport.CoderWebsocketImplementation) makes it,
// with one thing more: the connection itself, which live subscriptions
// (live.go) write their events to without going through gqlgen's message
// encoding. coder/websocket's writes are safe for concurrent use, so
// gqlgen's writes and theirs interleave whole messages.
type wsConn struct {
	ws   *websocket.Conn
	cork *corkConn // ws's network connection

	mu       sync.Mutex
	deadline *time.Timer
	closing  chan struct{} // set once WriteClose has begun the handshake
}

var (
	_ transport.WebsocketConn          = (*wsConn)(nil)
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)

// acceptWS upgrades the request, offering the subprotocols gqlgen speaks.
func acceptWS(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions, base websocket.AcceptOptions) (*wsConn, error) {
	for key, values := range o.ResponseHeader {
		for _, v := range values {
			w.Header().Add(key, v)
		}
	}
	for _, p := range o.Subprotocols {
		if !slices.Contains(base.Subprotocols, p) {
			base.Subprotocols = append(base.Subprotocols, p)
		}
	}
	hw, ok := w.(*corkingWriter)
	if !ok {
		hw = &corkingWriter{ResponseWriter: w}
	}
	ws, err := websocket.Accept(hw, r, &base)
	if err != nil {
		return nil, err
	}
	// Hijacked: the server's writer is not used again, and gqlgen keeps
	// the one it upgraded through for the socket's life; let go of the
	// server's, and with it the server's connection and its buffers.
	hw.ResponseWriter = nil
	if hw.conn == nil { // not hijacked through hw: no corking
		hw.conn = &corkConn{}
	}
	return &wsConn{ws: ws, cork: hw.conn}, nil
}

// coder/websocket flushes every message to the network as it is written:
// a change fanned out to a socket's 100 subscriptions would be 100 write
// system calls, each waking the peer. A live subscriptions' writer writes
// its whole batch corked instead (corkConn.hold, then release), so that
// the batch leaves in one write. gqlgen's own messages, pings and pongs
// that come meanwhile wait in the batch too, and leave with it.

// corkingWriter is the upgrade's ResponseWriter (Sockets.serve hands it
// to gqlgen): its Hijack hands coder/websocket the connection as a
// corkConn, with buffers of its own over it (the server's writer, which
// holds the 101 response, is flushed first).
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (h *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	// Buffers of the socket's own, smaller than the server's 4 KiB each
	// (client messages are small; a batch leaves through the cork): what
	// the server's reader had read ahead is read first.
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	h.conn = &corkConn{Conn: nc, ahead: bytes.Clone(ahead)}
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(h.conn, socketBuffer), bufio.NewWriterSize(h.conn, socketBuffer)), nil
}

// socketBuffer is the size of a socket's read and write buffers.
const socketBuffer = 1024

func (h *corkingWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// corkMax is the most a cork holds: past it, what is held is written (a
// client that reads nothing then blocks the writer, as it would anyway).
const corkMax = 64 << 10

// corkConn is a network connection whose writes can be held (corked) and
// sent as one. Writes are in order: coder/websocket writes one frame at a
// time, and release writes under the same lock.
type corkConn struct {
	net.Conn        // nil when the upgrade was not hijacked through corkingWriter
	ahead    []byte // read by the server before the hijack: Read's first
	mu       sync.Mutex
	corked   bool
	held     []byte
	err      error // a failed write of what was held
}

// Read gives what the server had read ahead first. Reads come from one
// goroutine at a time (coder/websocket's reader).
func (c *corkConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		if c.ahead = c.ahead[n:]; len(c.ahead) == 0 {
			c.ahead = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.corked {
		c.held = append(c.held, p...)
		if len(c.held) >= corkMax {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Close sends what is held first, if the connection can take it at once:
// coder/websocket closes the connection straight after answering a
// client's close frame, and that answer may be held. A writer blocked on a
// full connection holds the lock; then nothing more is sent.
func (c *corkConn) Close() error {
	if c.Conn == nil {
		return nil
	}
	if c.mu.TryLock() {
		if c.err == nil && len(c.held) > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_ = c.flushLocked()
		}
		c.err = net.ErrClosed
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// hold corks the connection (if it can be).
func (c *corkConn) hold() {
	if c.Conn == nil {
		return
	}
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// release writes what was held in one write, and uncorks.
func (c *corkConn) release() error {
	if c.Conn == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if c.err != nil || len(c.held) == 0 {
		return c.err
	}
	_, err := c.Conn.Write(c.held)
	if cap(c.held) > corkMax*2 {
		c.held = nil
	} else {
		c.held = c.held[:0]
	}
	if err != nil {
		c.err = err
	}
	return err
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.ws.Read(context.Background())
	if err != nil {
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusNoStatusRcvd:
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.ws.Write(context.Background(), websocket.MessageText, data)
}

// WriteClose begins the close handshake in the background: coder's Close
// waits up to 5 s for the peer's close frame, and gqlgen's teardown should
// not wait with it.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.stopDeadline()
	c.mu.Lock()
	if c.closing != nil {
		c.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.closing = done
	c.mu.Unlock()
	go func() {
		defer close(done)
		_ = c.ws.Close(websocket.StatusCode(code), reason)
	}()
	return nil
}

// Close drops the connection, unless WriteClose's handshake owns that.
func (c *wsConn) Close() error {
	c.stopDeadline()
	c.mu.Lock()
	handshake := c.closing != nil
	c.mu.Unlock()
	if handshake {
		return nil
	}
	return c.ws.CloseNow()
}

func (c *wsConn) Subprotocol() string      { return c.ws.Subprotocol() }
func (c *wsConn) SetReadLimit(limit int64) { c.ws.SetReadLimit(limit) }

// SetReadDeadline: coder/websocket has none; a timer drops the connection
// instead, which ends the read.
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	now := false
	if !t.IsZero() {
		if d := time.Until(t); d <= 0 {
			now = true
		} else {
			c.deadline = time.AfterFunc(d, func() { _ = c.ws.CloseNow() })
		}
	}
	c.mu.Unlock()
	if now {
		return c.ws.CloseNow()
	}
	return nil
}

func (c *wsConn) stopDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
}
