// Package ratelimit limits requests per caller with token buckets kept in
// process memory, so it keeps working when Redis is down. Each API token
// has a limit of its own (or none); anonymous callers are limited per
// client address.
package ratelimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// maxCallers bounds how many anonymous buckets are kept: a client spraying
// source addresses must not grow memory without limit. Idle buckets expire.
const (
	maxCallers = 100_000
	idleExpiry = 10 * time.Minute
)

// Limit is a steady rate in requests per second with bursts of Burst
// above it. A zero Rate means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// Options say who is limited how. The zero value limits nobody.
type Options struct {
	// Tokens maps a token's name to its limit. A token not in it, or with
	// a zero Rate, is not limited.
	Tokens map[string]Limit
	// Anonymous limits each client address of calls without a token.
	Anonymous Limit
}

// Limiter keeps one bucket per token and one per anonymous client address.
type Limiter struct {
	// tokens is built by New and only read after: no lock.
	tokens    map[string]*bucket
	anonymous *refusal // nil: anonymous calls are not limited
	addrs     *otter.Cache[string, *rate.Limiter]
}

// bucket is one token's bucket and what its refusals say.
type bucket struct {
	*rate.Limiter
	refusal *refusal
}

// refusal is the 429 response for one limit, made once.
type refusal struct {
	limit      Limit
	body       []byte
	retryAfter string
}

func newRefusal(l Limit) *refusal {
	return &refusal{
		limit: l,
		body:  fmt.Appendf(nil, `{"errors":[{"message":"rate limit exceeded: at most %g requests per second, bursts of %d","extensions":{"code":"RATE_LIMITED"}}]}`, l.Rate, l.Burst),
		// One request's worth of the rate: when the bucket has room again.
		retryAfter: strconv.Itoa(max(1, int(math.Ceil(1/l.Rate)))),
	}
}

// New returns a Limiter, or nil (no limiting at all) when no limit is on.
func New(opts Options) (*Limiter, error) {
	l := &Limiter{tokens: map[string]*bucket{}}
	for name, limit := range opts.Tokens {
		if limit.Rate > 0 {
			l.tokens[name] = &bucket{Limiter: rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst), refusal: newRefusal(limit)}
		}
	}
	if opts.Anonymous.Rate > 0 {
		addrs, err := otter.New(&otter.Options[string, *rate.Limiter]{
			MaximumSize:      maxCallers,
			ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](idleExpiry),
		})
		if err != nil {
			return nil, fmt.Errorf("rate limiter: %w", err)
		}
		l.anonymous, l.addrs = newRefusal(opts.Anonymous), addrs
	}
	if len(l.tokens) == 0 && l.anonymous == nil {
		return nil, nil
	}
	return l, nil
}

// allow takes one request from the bucket of token (or, for "", of addr)
// and returns the refusal to send when there was none left.
func (l *Limiter) allow(token, addr string) *refusal {
	if token != "" {
		b, ok := l.tokens[token]
		if !ok || b.Allow() {
			return nil
		}
		return b.refusal
	}
	if l.anonymous == nil {
		return nil
	}
	b, ok := l.addrs.GetIfPresent(addr)
	if !ok {
		b, _ = l.addrs.SetIfAbsent(addr, rate.NewLimiter(rate.Limit(l.anonymous.limit.Rate), l.anonymous.limit.Burst))
	}
	if b.Allow() {
		return nil
	}
	return l.anonymous
}

// Middleware answers 429 with a GraphQL error (code RATE_LIMITED) and
// Retry-After once the caller has used its bucket. tokenOf names the
// token a request carries, "" for an anonymous one, which counts against
// its client address.
func (l *Limiter) Middleware(tokenOf func(*http.Request) string, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Refused(w, tokenOf(r), r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Refused takes one request of token's bucket ("" for an anonymous
// request, by its client address) and, when there was none left, answers
// 429 as Middleware does and reports true. A nil Limiter refuses nothing
// and costs nothing.
func (l *Limiter) Refused(w http.ResponseWriter, token string, r *http.Request) bool {
	if l == nil {
		return false
	}
	addr := ""
	if token == "" && l.anonymous != nil {
		addr = ClientAddr(r)
	}
	refused := l.allow(token, addr)
	if refused == nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", refused.retryAfter)
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(refused.body)
	return true
}

// Close stops the bucket store's background work.
func (l *Limiter) Close() {
	if l != nil && l.addrs != nil {
		l.addrs.StopAllGoroutines()
	}
}

// ClientAddr is the request's source address without the port. Proxy
// headers are not trusted: any client could set them.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
