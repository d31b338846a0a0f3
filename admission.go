package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/deadline"
	"github.com/school-erp/cache-service/internal/ratelimit"
)

// What a GraphQL request passes before gqlgen sees it, outermost first:
// admission (a known token), its caller's rate limit, the bound on requests
// in flight, the body's size and time bounds, and then the request
// deadline. Each refuses with an HTTP status and a GraphQL-shaped error
// carrying extensions.code, and none of them reads the body of a request
// an earlier one refused.

// Codes of refusals made here (the others are graph's and ratelimit's).
const (
	// codeOverloaded: more GraphQL requests were in flight than
	// GRAPHQL_MAX_IN_FLIGHT; retry after Retry-After.
	codeOverloaded = "OVERLOADED"
	// codeRequestTooLarge: the body is larger than GRAPHQL_MAX_BODY_BYTES.
	codeRequestTooLarge = "REQUEST_TOO_LARGE"
	// codeBodyTimeout: the body had not arrived within
	// GRAPHQL_BODY_TIMEOUT.
	codeBodyTimeout = "BODY_TIMEOUT"
	// codeDeadlineExceeded: the request's deadline (GRAPHQL_REQUEST_TIMEOUT,
	// or SHUTDOWN_TIMEOUT while stopping) passed before any field ran;
	// nothing was done.
	codeDeadlineExceeded = "DEADLINE_EXCEEDED"
)

// refusal is a GraphQL response with one error, for requests refused
// before GraphQL sees them, so that clients read every refusal alike.
type refusal struct {
	Errors [1]refusalError `json:"errors"`
}

type refusalError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// refuse answers status with a GraphQL error of code and msg.
func refuse(w http.ResponseWriter, status int, code, msg string) {
	var body refusal
	body.Errors[0].Message = msg
	body.Errors[0].Extensions.Code = code
	b, _ := json.Marshal(body) // strings only: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// gateOptions are the bounds a GraphQL request passes (see gate).
type gateOptions struct {
	auth    *auth.Authenticator
	limiter *ratelimit.Limiter // nil: no rate limits
	// maxInFlight bounds the requests being worked on at once.
	maxInFlight int
	// bodyLimit and bodyTimeout bound the body's size and the time it
	// may take to arrive; requestTimeout the rest of the request.
	bodyLimit                   int64
	bodyTimeout, requestTimeout time.Duration
}

// gate is everything a GraphQL request passes before the endpoint, in the
// order of the comment at the top of this file, in one handler: each step
// is a few lines, and as separate middlewares they cost a context, a
// request copy or a wrapper each, on every request.
type gate struct {
	opts                          gateOptions
	next                          http.Handler
	running                       atomic.Int64
	overloaded, tooLarge, tooSlow string
	requests                      sync.Pool // *gateRequest
}

// gateRequest is what the gate keeps for one request, reused by the next
// one once ServeHTTP has returned (nothing keeps the body, the writer or
// the Body longer: handlers must not).
type gateRequest struct {
	buf  []byte
	body graph.Body
	w    outOfTime
}

// maxPooledBody is the largest body buffer kept for reuse: a rare large
// request should not pin its buffer for ever.
const maxPooledBody = 64 << 10

func newGate(opts gateOptions, next http.Handler) *gate {
	return &gate{
		opts:       opts,
		next:       next,
		overloaded: fmt.Sprintf("this instance is working on its limit of %d requests; retry shortly", opts.maxInFlight),
		tooLarge:   fmt.Sprintf("request body is larger than %d bytes", opts.bodyLimit),
		tooSlow:    fmt.Sprintf("the request body did not arrive within %v", opts.bodyTimeout),
		requests:   sync.Pool{New: func() any { return new(gateRequest) }},
	}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Admission: identify the caller and refuse one without a known bearer
	// token with 401 before anything reads the request's body, so that an
	// anonymous request costs a header lookup and a hash, never parsing,
	// validation or room in the parsed-query cache. Scopes are still
	// decided per field, by @auth. With auth.OpenAccess (development
	// without tokens) every caller is admitted, as anonymous.
	ctx, caller := g.opts.auth.Attach(r)
	if !g.opts.auth.Open() && !caller.Authenticated() {
		// RFC 6750: a challenge without an error code when no credentials
		// came, invalid_token when the token is not one we know.
		challenge, msg := "Bearer", "this API needs a bearer token (Authorization: Bearer <token>)"
		if caller.Presented {
			challenge, msg = `Bearer error="invalid_token"`, "the bearer token is not valid"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		refuse(w, http.StatusUnauthorized, graph.CodeUnauthenticated, msg)
		return
	}
	if g.opts.limiter.Refused(w, caller.Name, r) {
		return
	}
	// The in-flight bound: one beyond it is refused at once, 503
	// OVERLOADED with Retry-After, rather than queued: past the point
	// where the CPUs are busy, waiting only adds latency for everyone and
	// memory for each body held, and a client (or its load balancer) can
	// try another instance. A request counts from before its body is read
	// until its answer is written.
	if g.running.Add(1) > int64(g.opts.maxInFlight) {
		g.running.Add(-1)
		w.Header().Set("Retry-After", "1")
		refuse(w, http.StatusServiceUnavailable, codeOverloaded, g.overloaded)
		return
	}
	defer g.running.Add(-1)
	if r.ContentLength > g.opts.bodyLimit {
		refuse(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, g.tooLarge)
		return
	}
	gr := g.requests.Get().(*gateRequest)
	defer g.release(gr)
	if r.Body != nil && r.Body != http.NoBody && !g.readBody(w, r, gr) {
		return
	}
	// The request's deadline, from when its body is in: mutation fields
	// run one after another, and each cache operation has its own
	// deadline, so without this a request of many fields could wait many
	// deadlines. The write deadline moves with it, so that the time the
	// body took is not taken from writing the answer. Its timer starts
	// only when something waits on it (deadline.Lazy): a read the local
	// cache answers waits on nothing.
	lazy := deadline.New(ctx, time.Now().Add(g.opts.requestTimeout))
	defer lazy.Cancel()
	ctx = lazy
	setWriteDeadline(w, time.Now().Add(g.opts.requestTimeout+writeAllowance))
	gr.w = outOfTime{ResponseWriter: w, ctx: ctx}
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		gr.body.Set(gr.buf)
		r.Body, r.ContentLength = &gr.body, int64(len(gr.buf))
	}
	g.next.ServeHTTP(&gr.w, r)
}

// readBody reads the whole body into gr.buf before the request's deadline
// starts, so that a slow client spends its own time, not the request's:
// within the body limit (413 REQUEST_TOO_LARGE beyond) and the body
// timeout from now (408 BODY_TIMEOUT beyond). It answers and returns false
// when the body is refused.
func (g *gate) readBody(w http.ResponseWriter, r *http.Request, gr *gateRequest) bool {
	// The connection's read deadline bounds the wait for each piece
	// (where the writer cannot set it, as under httptest, the server's
	// ReadTimeout still does).
	setReadDeadline(w, time.Now().Add(g.opts.bodyTimeout))
	// A declared length is read into room made once; one byte more lets
	// the end of the body be seen without growing.
	if want := int(r.ContentLength) + 1; r.ContentLength >= 0 && cap(gr.buf) < want {
		gr.buf = make([]byte, 0, want)
	}
	var err error
	gr.buf, err = readBounded(r.Body, gr.buf[:0], g.opts.bodyLimit)
	switch {
	case errors.Is(err, errBodyTooLarge):
		// The rest of the body is not read: the connection cannot carry
		// another request.
		w.Header().Set("Connection", "close")
		refuse(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, g.tooLarge)
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		refuse(w, http.StatusRequestTimeout, codeBodyTimeout, g.tooSlow)
		return false
	case err != nil:
		refuse(w, http.StatusBadRequest, graph.CodeBadRequest, "could not read the request body")
		return false
	}
	// The body is in. Lift the deadline: left to pass while the request
	// runs, it would make the server's read of the idle connection fail
	// and cancel the request's context.
	setReadDeadline(w, time.Time{})
	return true
}

func (g *gate) release(gr *gateRequest) {
	if cap(gr.buf) > maxPooledBody {
		gr.buf = nil
	}
	gr.body.Set(nil)
	gr.w = outOfTime{}
	g.requests.Put(gr)
}

var errBodyTooLarge = errors.New("request body too large")

// readBounded appends what r holds to buf, up to limit bytes; beyond them
// it stops with errBodyTooLarge.
func readBounded(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // room to grow
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// The connection deadlines, set directly where the writer is net/http's
// own (as it is here, the gate being the outermost handler but CORS),
// through a ResponseController otherwise (a wrapper that unwraps).
type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func setReadDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(readDeadliner); ok {
		_ = d.SetReadDeadline(t)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(t)
}

func setWriteDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(writeDeadliner); ok {
		_ = d.SetWriteDeadline(t)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(t)
}

// writeAllowance is how long a response may take to be written once the
// request's deadline has passed: a slow reader cannot hold the connection
// (and the response in memory) for longer.
const writeAllowance = 30 * time.Second

// outOfTime stands between gqlgen and the client for one case: gqlgen's
// executor answers an operation whose context ended before any field ran
// with a nil response (its end-of-stream signal for streaming transports),
// and its transports, ours included, write that as the body null with
// HTTP 200. That answer, first and alone, after the context ended, becomes
// 503 DEADLINE_EXCEEDED with Retry-After; nothing else is touched. (A
// GraphQL response is always an object, so null is never a real one.)
type outOfTime struct {
	http.ResponseWriter
	ctx     context.Context
	started bool
}

func (w *outOfTime) WriteHeader(code int) {
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *outOfTime) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		if bytes.Equal(bytes.TrimSpace(p), []byte("null")) && w.ctx.Err() != nil {
			w.Header().Set("Retry-After", "1")
			refuse(w.ResponseWriter, http.StatusServiceUnavailable, codeDeadlineExceeded, "the request ran out of time before it could run; nothing was done")
			return len(p), nil
		}
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *outOfTime) Unwrap() http.ResponseWriter { return w.ResponseWriter }
