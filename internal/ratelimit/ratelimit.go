// Package ratelimit limits requests per caller with token buckets kept in
// process memory, so it keeps working when Redis is down.
package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// maxCallers bounds how many buckets are kept: a client spraying source
// addresses must not grow memory without limit. Idle buckets expire.
const (
	maxCallers = 100_000
	idleExpiry = 10 * time.Minute
)

// Limiter allows each caller rps requests per second with bursts of burst.
type Limiter struct {
	rps     rate.Limit
	burst   int
	buckets *otter.Cache[string, *rate.Limiter]
}

// New returns a Limiter, or nil (no limiting) when rps is 0.
func New(rps float64, burst int) (*Limiter, error) {
	if rps <= 0 {
		return nil, nil
	}
	buckets, err := otter.New(&otter.Options[string, *rate.Limiter]{
		MaximumSize:      maxCallers,
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](idleExpiry),
	})
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	return &Limiter{rps: rate.Limit(rps), burst: burst, buckets: buckets}, nil
}

// Allow takes one request from caller's bucket.
func (l *Limiter) Allow(caller string) bool {
	b, ok := l.buckets.GetIfPresent(caller)
	if !ok {
		b, _ = l.buckets.SetIfAbsent(caller, rate.NewLimiter(l.rps, l.burst))
	}
	return b.Allow()
}

// Middleware answers 429 with a GraphQL error (code RATE_LIMITED) once the
// caller named by callerOf has used its bucket.
func (l *Limiter) Middleware(callerOf func(*http.Request) string, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	body := fmt.Sprintf(`{"errors":[{"message":"rate limit exceeded: at most %g requests per second, bursts of %d","extensions":{"code":"RATE_LIMITED"}}]}`, float64(l.rps), l.burst)
	retry := strconv.Itoa(max(1, int(1/float64(l.rps))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Allow(callerOf(r)) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", retry)
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(body))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Close stops the bucket store's background work.
func (l *Limiter) Close() {
	if l != nil {
		l.buckets.StopAllGoroutines()
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
