package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
)

// What a GraphQL request passes before gqlgen sees it, outermost first:
// admission (a known token), its caller's rate limit, the bound on requests
// in flight, the body's size bound, and then the request deadline. Each refuses with an HTTP status and a GraphQL-shaped error
// carrying extensions.code, and none of them reads the body of a request
// an earlier one refused.

// Codes of refusals made here (the others are graph's and ratelimit's).
const (
	// codeOverloaded: more GraphQL requests were in flight than
	// GRAPHQL_MAX_IN_FLIGHT; retry after Retry-After.
	codeOverloaded = "OVERLOADED"
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
