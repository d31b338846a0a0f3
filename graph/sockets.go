package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"

	"github.com/school-erp/cache-service/cache"

	"github.com/school-erp/cache-service/internal/auth"
)

// WebSockets: subscriptions travel over the GraphQL over WebSocket
// protocol (graphql-transport-ws, the graphql-ws library's; the legacy
// graphql-ws subprotocol comes with gqlgen's transport at no cost). gqlgen
// runs the protocol, except the usual cacheChanged subscription, which the
// socket runs itself (live.go); this file owns what the service adds
// around it, in one registry of open sockets:
//
//   - Admission. A socket is not a request: it bypasses the request gate
//     (admission.go), whose body, in-flight and deadline bounds would end
//     it. Its token comes in connection_init (browsers cannot set headers
//     on a WebSocket) or the upgrade's header, and is checked there; a
//     socket without a known one is closed with 4403 before any
//     subscription runs. Browsers do not apply CORS to WebSockets, so the
//     upgrade's Origin is checked here (cross-site WebSocket hijacking).
//   - Bounds: sockets in all, sockets per token, subscriptions per socket,
//     keys per subscription; and connection_init within InitTimeout, or the
//     socket is closed with 4408 (the protocol's code, which gqlgen's own
//     InitTimeout does not use).
//   - Shutdown: every socket closed with 1001 (going away), so that clients
//     reconnect to another instance; and no socket, goroutine or Redis
//     watcher outlives its socket (the resolvers' goroutines end with the
//     subscription's context, the watchers with theirs, and the live
//     subscriptions are stopped when the socket is released).

// Close codes of the GraphQL over WebSocket protocol, and RFC 6455's.
const (
	CloseGoingAway        = 1001
	ClosePolicyViolation  = 1008
	CloseUnauthorized     = 4401
	CloseForbidden        = 4403
	CloseInitTimeout      = 4408
	CloseDuplicateID      = 4409
	CloseTooManyRequests  = 4429
	closeReasonMaxBytes   = 123
	codeSubscriptionLimit = "SUBSCRIPTION_LIMIT"
	codeSubscriptionsOff  = "SUBSCRIPTIONS_UNAVAILABLE"
)

// Defaults of SubscriptionOptions.
const (
	DefaultSubscriptionMaxKeys    = 100
	DefaultMaxSubscriptionsSocket = 50
	DefaultMaxSocketsPerToken     = 1000
	DefaultMaxSockets             = 10000
	DefaultKeepAlive              = 25 * time.Second
	DefaultInitTimeout            = 10 * time.Second
	DefaultSlowTimeout            = 30 * time.Second
)

// SubscriptionOptions configure the WebSocket transport. The zero value of
// each bound means its default.
type SubscriptionOptions struct {
	// Sockets is the registry of open sockets, which the caller keeps to
	// close them at shutdown; nil means no WebSocket transport at all.
	Sockets *Sockets
	// MaxKeys bounds the keys (and, separately, the tags) of one
	// cacheChanged.
	MaxKeys int
	// MaxPerSocket bounds the subscriptions running on one socket.
	MaxPerSocket int
	// MaxSocketsPerToken bounds the sockets open with one token (all
	// anonymous sockets count as one token under open access).
	MaxSocketsPerToken int
	// MaxSockets bounds the sockets open on this instance.
	MaxSockets int
	// KeepAlive is the interval of the server's pings (graphql-transport-ws
	// ping, from Sockets.keepAlive, and ka for the legacy protocol); a
	// graphql-transport-ws client that sends nothing for two of them is
	// disconnected.
	KeepAlive time.Duration
	// InitTimeout is how long after the upgrade connection_init may come.
	InitTimeout time.Duration
	// Queue is how many events a cacheChanged subscription queues before
	// what is queued is replaced by one RESYNC (cache.Options.WatchQueue
	// is the same for Watch); zero means cache.DefaultWatchQueue.
	Queue int
	// SlowTimeout is how long an event may wait to be taken by a socket
	// whose client does not read before the socket is closed with 1008.
	SlowTimeout time.Duration
	// CheckOrigin decides whether an upgrade's Origin may open a socket;
	// nil allows any.
	CheckOrigin func(r *http.Request) bool
	// Observer counts sockets, subscriptions and events; nil means none.
	Observer SubscriptionObserver
}

func (o SubscriptionOptions) withDefaults() SubscriptionOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxKeys, DefaultSubscriptionMaxKeys)
	def(&o.MaxPerSocket, DefaultMaxSubscriptionsSocket)
	def(&o.MaxSocketsPerToken, DefaultMaxSocketsPerToken)
	def(&o.MaxSockets, DefaultMaxSockets)
	def(&o.Queue, cache.DefaultWatchQueue)
	o.Queue = max(o.Queue, 2)
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.SlowTimeout <= 0 {
		o.SlowTimeout = DefaultSlowTimeout
	}
	if o.Observer == nil {
		o.Observer = nopSubscriptionObserver{}
	}
	return o
}

// SubscriptionObserver counts what the WebSocket transport does, for
// metrics. Its methods must be fast and safe for concurrent use.
type SubscriptionObserver interface {
	// ObserveSocket reports a socket opened (+1) or closed (-1).
	ObserveSocket(delta int)
	// ObserveSocketRefused reports an upgrade or a connection_init refused,
	// by reason: origin, unauthenticated, too_many_sockets, init_timeout,
	// or closed later for being too slow (slow) or for a token a reload
	// took away (revoked).
	ObserveSocketRefused(reason string)
	// ObserveSubscription reports a subscription started (+1) or ended
	// (-1), by root field.
	ObserveSubscription(field string, delta int)
	// ObserveEvent reports one event queued for gqlgen to send on a
	// socket, by root field.
	ObserveEvent(field string)
}

type nopSubscriptionObserver struct{}

func (nopSubscriptionObserver) ObserveSocket(int)               {}
func (nopSubscriptionObserver) ObserveSocketRefused(string)     {}
func (nopSubscriptionObserver) ObserveSubscription(string, int) {}
func (nopSubscriptionObserver) ObserveEvent(string)             {}

// Sockets is the registry of open WebSockets: their count per token, and
// the way to close them all at shutdown. Make one with NewSockets and pass
// it in SubscriptionOptions.
type Sockets struct {
	opts     SubscriptionOptions // set by the handler
	mu       sync.Mutex
	open     map[*socket]struct{}
	perToken map[string]int
	closing  bool
	empty    chan struct{} // closed when closing and none is open
	// lastChange lets the queues of a change's many subscriptions share
	// one model of it (subscriptions.go).
	lastChange atomic.Pointer[convertedChange]
	// live is the compiled path of cacheChanged (live.go); nil without
	// it.
	live *liveSubscriptions
	// pinging: the keep-alive goroutine runs (while sockets are open);
	// closing stopPinging ends it.
	pinging     bool
	stopPinging chan struct{}
}

// NewSockets returns an empty registry.
func NewSockets() *Sockets {
	return &Sockets{open: map[*socket]struct{}{}, perToken: map[string]int{}}
}

// Open reports how many sockets are open.
func (s *Sockets) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Shutdown refuses new sockets, closes the open ones with 1001 (going
// away), and waits until their handlers have let them go, or ctx ends.
func (s *Sockets) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.empty == nil {
		s.empty = make(chan struct{})
	}
	open := make([]*socket, 0, len(s.open))
	for sock := range s.open {
		open = append(open, sock)
	}
	if len(s.open) == 0 {
		close(s.empty)
	}
	empty := s.empty
	s.mu.Unlock()
	for _, sock := range open {
		sock.closeWith(CloseGoingAway, "server shutting down")
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d sockets still open: %w", s.Open(), ctx.Err())
	}
}

// keepAlive pings every admitted graphql-transport-ws socket each
// KeepAlive, from one goroutine for them all (gqlgen's transport would run
// one per socket: 8 KiB of stack each), and drops a socket whose client
// has sent nothing, a pong or any other message, for two intervals. It
// ends when the last socket closes; the next socket starts it again. (The
// legacy graphql-ws subprotocol keeps gqlgen's "ka" messages.)
func (s *Sockets) keepAlive(stop <-chan struct{}) {
	every := s.opts.KeepAlive
	t := time.NewTicker(every)
	defer t.Stop()
	var open []*socket
	for {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		s.mu.Lock()
		open = open[:0]
		for sock := range s.open {
			open = append(open, sock)
		}
		s.mu.Unlock()
		now := time.Now()
		for _, sock := range open {
			sock.keepAlive(now, every)
		}
		clear(open)
	}
}

var pingMessage = []byte(`{"type":"ping"}`)

// keepAlive pings the socket, or drops it when its client has been silent
// for two intervals.
func (sock *socket) keepAlive(now time.Time, every time.Duration) {
	sock.mu.Lock()
	if !sock.initOK || sock.ws == nil || sock.released || sock.ws.Subprotocol() != graphqlTransportWS {
		sock.mu.Unlock()
		return
	}
	if now.Sub(sock.heardAt) > 2*every {
		sock.mu.Unlock()
		_ = sock.ws.ws.CloseNow()
		return
	}
	if sock.pinging {
		sock.mu.Unlock()
		return
	}
	sock.pinging = true
	ws := sock.ws.ws
	sock.mu.Unlock()
	go func() { // a client that reads nothing blocks the write, not the others
		_ = ws.Write(context.Background(), websocket.MessageText, pingMessage)
		sock.mu.Lock()
		sock.pinging = false
		sock.mu.Unlock()
	}()
}

// Revoke closes with 4403, after the tokens were replaced (a reload of
// API_TOKENS_FILE), every socket admitted with a token a no longer knows
// by the same name, and reports how many. A socket not yet admitted is
// checked against the new tokens when its connection_init comes.
func (s *Sockets) Revoke(a *auth.Authenticator) int {
	if a.Open() {
		return 0
	}
	s.mu.Lock()
	open := make([]*socket, 0, len(s.open))
	for sock := range s.open {
		open = append(open, sock)
	}
	s.mu.Unlock()
	n := 0
	for _, sock := range open {
		sock.mu.Lock()
		value, token, admitted := sock.authValue, sock.token, sock.initOK
		sock.mu.Unlock()
		if admitted && a.IdentifyValue(value).Name != token {
			s.opts.Observer.ObserveSocketRefused("revoked")
			sock.closeWith(CloseForbidden, "Forbidden: the bearer token was revoked")
			n++
		}
	}
	return n
}

// socket is one WebSocket: gqlgen's connection, with what the service
// keeps for it. It is gqlgen's WebsocketConn too, so that its Close is
// seen.
type socket struct {
	reg  *Sockets
	conn transport.WebsocketConn
	ws   *wsConn // conn's connection, for live subscriptions' writes
	// hijacked is closed once the upgrade has taken the connection from
	// the HTTP server (serve's handler may return then).
	hijacked chan struct{}
	header   string      // the upgrade's Authorization header
	headers  http.Header // the upgrade's headers, as gqlgen keeps them

	mu       sync.Mutex
	initDone bool
	timer    *time.Timer
	token    string
	counted  bool // counted in reg.perToken under token
	subs     int
	released bool
	// sawInit, ops and untracked follow the protocol (protocol.go): a
	// connection_init was read; the ids of the subscribe messages read
	// whose operation has not ended; gqlgen's writes cannot be read, so
	// ops is not kept.
	sawInit   bool
	ops       map[string]struct{}
	untracked bool
	// opCtx is the context gqlgen runs the socket's operations in, with
	// the caller, once connection_init is accepted (initOK); live holds
	// the live subscriptions by id (live.go).
	opCtx  context.Context
	initOK bool
	live   map[string]*liveSub
	// authValue is the Authorization value connection_init was admitted
	// with, checked again when the tokens are reloaded (Revoke).
	authValue string
	// heardAt is when the client last sent a message (keepAlive);
	// pinging, that a ping to it is being written.
	heardAt time.Time
	pinging bool

	// The live subscriptions' write queue (live.go), under qmu: the
	// subscriptions with events queued, from head on, and whether a
	// writer is running. progressAt is atomic: the writer sets it without
	// the lock.
	qmu        sync.Mutex
	ready      []*liveSub
	head       int
	writing    bool
	progressAt atomic.Int64 // when a frame was last written (progressed)
	slowArmed  bool         // a slow check is due (armSlowLocked)
	dead       bool         // a write failed, or the socket was closed as too slow
}

type socketKey struct{}

func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

// serve admits an upgrade (origin, the bound on sockets) and hands it to
// gqlgen's transport.
func (s *Sockets) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	o := s.opts
	if o.CheckOrigin != nil && !o.CheckOrigin(r) {
		o.Observer.ObserveSocketRefused("origin")
		refuseUpgrade(w, http.StatusForbidden, CodeForbidden, "this Origin may not open a WebSocket here (CORS_ALLOWED_ORIGINS)")
		return
	}
	sock := &socket{reg: s, header: r.Header.Get("Authorization"), headers: r.Header}
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		refuseUpgrade(w, http.StatusServiceUnavailable, codeOverloadedSockets, "this instance is shutting down")
		return
	case len(s.open) >= o.MaxSockets:
		s.mu.Unlock()
		o.Observer.ObserveSocketRefused("too_many_sockets")
		w.Header().Set("Retry-After", "1")
		refuseUpgrade(w, http.StatusServiceUnavailable, codeOverloadedSockets, fmt.Sprintf("this instance holds its limit of %d WebSockets (SUBSCRIPTION_MAX_SOCKETS)", o.MaxSockets))
		return
	}
	s.open[sock] = struct{}{}
	if !s.pinging {
		s.pinging, s.stopPinging = true, make(chan struct{})
		go s.keepAlive(s.stopPinging)
	}
	s.mu.Unlock()
	o.Observer.ObserveSocket(1)
	// The server's read and write deadlines were set for a request; a
	// socket lives on. Keep-alive pings find a dead peer instead.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// gqlgen runs the socket in the handler that upgraded it, for as long
	// as the socket lives, and the server's connection (its goroutine's
	// deep stack, its buffers and the request) would live on with it:
	// about 10 KiB a socket that does nothing. So the upgrade runs on a
	// goroutine of its own, and this handler returns once the connection
	// is hijacked (then the server lets go of it), or once gqlgen has
	// answered an upgrade it refused. The socket's context is not the
	// request's, which ends when this handler returns; the socket ends by
	// its close, and Shutdown closes every one.
	// Nor is anything of the server's connection kept by what gqlgen
	// holds for the socket's life: the request it is given has no body
	// (the body reads from the connection), and the writer lets go of the
	// server's once hijacked (acceptWS).
	sock.hijacked = make(chan struct{})
	done := make(chan struct{})
	ctx := context.WithValue(context.WithoutCancel(r.Context()), socketKey{}, sock)
	req := r.WithContext(ctx)
	req.Body, req.GetBody = http.NoBody, nil
	uw := &corkingWriter{ResponseWriter: w}
	go func() {
		defer close(done)
		defer sock.release()
		next.ServeHTTP(uw, req)
	}()
	select {
	case <-sock.hijacked:
	case <-done:
	}
}

const codeOverloadedSockets = "OVERLOADED"

// refuseUpgrade answers an upgrade that is not accepted, as the request
// gate answers a refused request.
func refuseUpgrade(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"message": msg, "extensions": map[string]string{"code": code}}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// release takes the socket out of the registry, once.
func (sock *socket) release() {
	sock.mu.Lock()
	if sock.released {
		sock.mu.Unlock()
		return
	}
	sock.released = true
	if sock.timer != nil {
		sock.timer.Stop()
	}
	token, counted := sock.token, sock.counted
	sock.mu.Unlock()
	sock.stopAllLive()
	s := sock.reg
	s.mu.Lock()
	delete(s.open, sock)
	if len(s.open) == 0 && s.pinging {
		s.pinging = false
		close(s.stopPinging)
	}
	if counted {
		if s.perToken[token]--; s.perToken[token] <= 0 {
			delete(s.perToken, token)
		}
	}
	if s.closing && len(s.open) == 0 && s.empty != nil {
		select {
		case <-s.empty:
		default:
			close(s.empty)
		}
	}
	s.mu.Unlock()
	s.opts.Observer.ObserveSocket(-1)
}

// accepted: the upgrade is done; connection_init must follow within the
// init timeout.
func (sock *socket) accepted(conn *wsConn) {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	sock.conn, sock.ws = conn, conn
	close(sock.hijacked)
	sock.timer = time.AfterFunc(sock.reg.opts.InitTimeout, func() {
		sock.mu.Lock()
		late := !sock.initDone
		sock.mu.Unlock()
		if late {
			sock.reg.opts.Observer.ObserveSocketRefused("init_timeout")
			sock.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
}

// closeWith closes the socket with code and reason.
func (sock *socket) closeWith(code int, reason string) {
	sock.mu.Lock()
	conn := sock.conn
	sock.mu.Unlock()
	if conn == nil {
		return
	}
	_ = conn.WriteClose(code, reason)
	_ = conn.Close()
}

// init admits connection_init: the token, then the bound on sockets per
// token. It returns the close code and reason of a refusal; on success,
// ctx is where the socket's operations run.
func (sock *socket) init(ctx context.Context, authValue string, caller auth.Caller, open bool) (int, string) {
	sock.mu.Lock()
	if sock.initDone {
		sock.mu.Unlock()
		return CloseTooManyRequests, "Too many initialisation requests"
	}
	sock.initDone = true
	if sock.timer != nil {
		sock.timer.Stop()
	}
	sock.mu.Unlock()
	o := sock.reg.opts
	if !open && !caller.Authenticated() {
		o.Observer.ObserveSocketRefused("unauthenticated")
		if caller.Presented {
			return CloseForbidden, "Forbidden: the bearer token is not valid"
		}
		return CloseForbidden, `Forbidden: send {"Authorization": "Bearer <token>"} in connection_init`
	}
	s := sock.reg
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perToken[caller.Name] >= o.MaxSocketsPerToken {
		o.Observer.ObserveSocketRefused("too_many_sockets")
		return CloseTooManyRequests, fmt.Sprintf("Too many sockets: this token holds its limit of %d (SUBSCRIPTION_MAX_SOCKETS_PER_TOKEN)", o.MaxSocketsPerToken)
	}
	s.perToken[caller.Name]++
	sock.mu.Lock()
	sock.token, sock.counted = caller.Name, true
	sock.opCtx, sock.initOK, sock.authValue = ctx, true, authValue
	sock.heardAt = time.Now()
	sock.mu.Unlock()
	return 0, ""
}

// hold counts one more subscription on the socket, or refuses it beyond
// the bound; the function returned ends it.
func (sock *socket) hold(field string) (func(), error) {
	o := sock.reg.opts
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if sock.subs >= o.MaxPerSocket {
		return nil, coded(codeSubscriptionLimit, "this socket runs its limit of %d subscriptions (SUBSCRIPTION_MAX_PER_SOCKET); complete one first", o.MaxPerSocket)
	}
	sock.subs++
	o.Observer.ObserveSubscription(field, 1)
	var once sync.Once
	return func() {
		once.Do(func() {
			sock.mu.Lock()
			sock.subs--
			sock.mu.Unlock()
			o.Observer.ObserveSubscription(field, -1)
		})
	}, nil
}

// tooSlow closes a socket whose client has not taken an event for the
// slow timeout: its subscriptions have been getting RESYNC in place of
// what they could not take, and a client that reads nothing at all should
// reconnect and read again rather than hold a socket and its queues.
func (sock *socket) tooSlow() {
	sock.reg.opts.Observer.ObserveSocketRefused("slow")
	sock.closeWith(ClosePolicyViolation, fmt.Sprintf("Too slow: no event taken for %s (SUBSCRIPTION_SLOW_TIMEOUT)", sock.reg.opts.SlowTimeout))
}

// WebsocketConn, forwarded to gqlgen's connection; Close releases the
// socket too.
func (sock *socket) NextReader() (int, io.Reader, error) {
	for {
		typ, r, err := sock.conn.NextReader()
		if err != nil || sock.conn.Subprotocol() != graphqlTransportWS {
			return typ, r, err
		}
		// A message the socket ran itself (a live subscription's
		// subscribe or complete) is not gqlgen's: read the next.
		if typ, r, ran, err := sock.read(typ, r); !ran {
			return typ, r, err
		}
	}
}
func (sock *socket) WriteJSON(v any) error {
	sock.wrote(v)
	return sock.conn.WriteJSON(v)
}
func (sock *socket) WriteClose(code int, msg string) error {
	return sock.conn.WriteClose(code, msg)
}
func (sock *socket) Subprotocol() string { return sock.conn.Subprotocol() }
func (sock *socket) Close() error {
	err := sock.conn.Close()
	sock.release()
	return err
}
func (sock *socket) SetReadLimit(limit int64) {
	if l, ok := sock.conn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}
func (sock *socket) SetReadDeadline(t time.Time) error {
	if d, ok := sock.conn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

var (
	_ transport.WebsocketConn          = (*socket)(nil)
	_ transport.WebsocketReadLimiter   = (*socket)(nil)
	_ transport.WebsocketReadDeadliner = (*socket)(nil)
)

// wsAccept upgrades to a coder/websocket connection (wsconn.go), with the
// socket told of it. Origin is checked by serve, against the service's own
// list, so coder/websocket's same-host check is off.
type wsAccept struct {
	options websocket.AcceptOptions
}

func (a wsAccept) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	sock := socketFrom(r.Context())
	if sock == nil {
		return nil, errors.New("websocket upgrade outside the socket registry")
	}
	conn, err := acceptWS(w, r, o, a.options)
	if err != nil {
		return nil, err
	}
	sock.accepted(conn)
	return sock, nil
}

// websocketTransport is gqlgen's WebSocket transport with the service's
// admission (see the top of this file).
func websocketTransport(o SubscriptionOptions, a *auth.Authenticator) transport.Websocket {
	accept := wsAccept{options: websocket.AcceptOptions{InsecureSkipVerify: true}} // Origin: see wsAccept
	return transport.Websocket{
		Implementation:        accept,
		KeepAlivePingInterval: o.KeepAlive, // the legacy protocol's "ka"
		// No PingPongInterval: Sockets.keepAlive pings graphql-transport-ws
		// sockets, all from one goroutine.
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			sock := socketFrom(ctx)
			value := payload.Authorization()
			if value == "" && sock != nil {
				value = sock.header
			}
			ctx, caller := a.AttachValue(ctx, value)
			if sock == nil {
				return ctx, nil, nil
			}
			if code, reason := sock.init(ctx, value, caller, a.Open()); code != 0 {
				if len(reason) > closeReasonMaxBytes {
					reason = reason[:closeReasonMaxBytes]
				}
				ctx = transport.WithWebsocketCloseCode(ctx, code)
				ctx = transport.AppendCloseReason(ctx, reason)
				return ctx, nil, errors.New(reason)
			}
			return ctx, nil, nil
		},
	}
}
