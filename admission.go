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
	"sync/atomic"
	"time"

	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
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

// admit identifies the caller and refuses one without a known bearer token
// with 401 before anything reads the request's body: an anonymous request
// costs a header lookup and a hash, never parsing, validation or room in
// the parsed-query cache. Scopes are still decided per field, by @auth.
// With auth.OpenAccess (development without tokens) every caller is
// admitted, as anonymous.
func admit(a *auth.Authenticator, next http.Handler) http.Handler {
	return a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := auth.FromContext(r.Context())
		if a.Open() || caller.Authenticated() {
			next.ServeHTTP(w, r)
			return
		}
		// RFC 6750: a challenge without an error code when no credentials
		// came, invalid_token when the token is not one we know.
		challenge, msg := "Bearer", "this API needs a bearer token (Authorization: Bearer <token>)"
		if caller.Presented {
			challenge, msg = `Bearer error="invalid_token"`, "the bearer token is not valid"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		refuse(w, http.StatusUnauthorized, graph.CodeUnauthenticated, msg)
	}))
}

// limitInFlight bounds the GraphQL requests being worked on at once. One
// beyond max is refused at once, 503 OVERLOADED with Retry-After, rather
// than queued: past the point where the CPUs are busy, waiting only adds
// latency for everyone and memory for each body held, and a client (or
// its load balancer) can try another instance. A request counts from
// before its body is read until its answer is written.
func limitInFlight(max int, next http.Handler) http.Handler {
	var running atomic.Int64
	msg := fmt.Sprintf("this instance is working on its limit of %d requests; retry shortly", max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if running.Add(1) > int64(max) {
			running.Add(-1)
			w.Header().Set("Retry-After", "1")
			refuse(w, http.StatusServiceUnavailable, codeOverloaded, msg)
			return
		}
		defer running.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// readBody reads the whole body before the request's deadline starts, so
// that a slow client spends its own time, not the request's: within limit
// bytes (413 REQUEST_TOO_LARGE beyond; a declared length is checked at
// once) and timeout from now (408 BODY_TIMEOUT beyond). What follows reads
// the body from memory. A request without a body goes straight through.
func readBody(limit int64, timeout time.Duration, next http.Handler) http.Handler {
	tooLarge := fmt.Sprintf("request body is larger than %d bytes", limit)
	tooSlow := fmt.Sprintf("the request body did not arrive within %v", timeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			refuse(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, tooLarge)
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// The connection's read deadline bounds the wait for each piece
		// (where the writer cannot set it, as under httptest, the
		// server's ReadTimeout still does).
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			refuse(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, tooLarge)
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			refuse(w, http.StatusRequestTimeout, codeBodyTimeout, tooSlow)
			return
		case err != nil:
			refuse(w, http.StatusBadRequest, graph.CodeBadRequest, "could not read the request body")
			return
		}
		// The body is in. Lift the deadline: left to pass while the
		// request runs, it would make the server's read of the idle
		// connection fail and cancel the request's context.
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = graph.BufferedBody(body) // the endpoint reads it without a copy
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// writeAllowance is how long a response may take to be written once the
// request's deadline has passed: a slow reader cannot hold the connection
// (and the response in memory) for longer.
const writeAllowance = 30 * time.Second

// requestDeadline bounds a GraphQL request from when its body is in:
// mutation fields run one after another, and each cache operation has its
// own deadline, so without this a request of many fields could wait many
// deadlines. The write deadline moves with it, so that the time the body
// took is not taken from writing the answer.
func requestDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + writeAllowance))
		next.ServeHTTP(&outOfTime{ResponseWriter: w, ctx: ctx}, r.WithContext(ctx))
	})
}

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
		if w.ctx.Err() != nil && bytes.Equal(bytes.TrimSpace(p), []byte("null")) {
			w.Header().Set("Retry-After", "1")
			refuse(w.ResponseWriter, http.StatusServiceUnavailable, codeDeadlineExceeded, "the request ran out of time before it could run; nothing was done")
			return len(p), nil
		}
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *outOfTime) Unwrap() http.ResponseWriter { return w.ResponseWriter }
