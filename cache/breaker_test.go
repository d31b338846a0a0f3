package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/faultproxy"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The breaker seen from the request path alone, never through Health: once
// Redis stops answering, requests stop being sent to it and fail at once
// (ErrUnavailable, nothing sent) instead of each waiting out the command
// timeout; once it answers again, requests reach it again. A breaker that
// never opened would leave every request waiting for a reply that does not
// come (ErrNoReply after CommandTimeout).
func TestBreakerFailsRequestsAtOnceWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.Start(t, srv.Addr)
	opts := fastOptions(proxy.Addr, &logBuffer{})
	opts.CommandTimeout = 500 * time.Millisecond
	opts.DisableClientCache = true // every read goes to Redis
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}

	proxy.BlackHole(true)
	// Well under the command timeout: a request that took this long was
	// not sent.
	const atOnce = 150 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	var last error
	for {
		start := time.Now()
		_, last = c.Set(ctx, "k", json.RawMessage(`2`), 0)
		if errors.Is(last, cache.ErrUnavailable) && time.Since(start) < atOnce {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s into a black hole, Set() = %v after %s; want the breaker to refuse requests at once (ErrUnavailable)", last, time.Since(start))
		}
	}
	for i := range 20 {
		start := time.Now()
		var err error
		var op string
		switch i % 3 {
		case 0:
			op, err = "Set", set(ctx, c, fmt.Sprint("k", i), json.RawMessage(`1`), 0)
		case 1:
			op = "Get"
			_, _, err = c.Get(ctx, "k")
		case 2:
			op = "Delete"
			_, _, err = c.Delete(ctx, "k")
		}
		if took := time.Since(start); !errors.Is(err, cache.ErrUnavailable) || took >= atOnce {
			t.Fatalf("%s() %d with the breaker open = %v after %s; want ErrUnavailable at once (under %s)", op, i, err, took, atOnce)
		}
	}

	proxy.BlackHole(false)
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, last = c.Set(ctx, "k", json.RawMessage(`3`), 0); last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the black hole ended, Set() = %v; want Redis reached again", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, _, err := c.Get(ctx, "k"); string(v) != "3" || err != nil {
		t.Errorf("Get(k) after recovery = %s, %v; want 3 from Redis", v, err)
	}
}
