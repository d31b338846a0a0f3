package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/school-erp/cache-service/internal/redistest"
)

// A client of the GraphQL over WebSocket protocol (graphql-transport-ws),
// as the graphql-ws library speaks it, for the end-to-end tests.

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	// msgs receives every message but pings (answered at once); closed
	// with the read error in err when the socket ends.
	msgs chan wsMessage
	mu   sync.Mutex
	err  error
}

type wsDial struct {
	header  http.Header
	payload map[string]any // connection_init's; nil sends none
	noInit  bool
}

// dialWS opens a socket to s and sends connection_init; it returns the
// HTTP response of a refused upgrade as the error's cause.
func dialWS(t testing.TB, s *service, d wsDial) (*wsClient, *http.Response, error) {
	t.Helper()
	return dialURL(t, s.url, d)
}

// dialURL is dialWS for a service at base (http://host:port).
func dialURL(t testing.TB, base string, d wsDial) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: d.header})
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMessage, 1024)}
	t.Cleanup(func() { _ = conn.CloseNow() })
	go c.read()
	if !d.noInit {
		init := wsMessage{Type: "connection_init"}
		if d.payload != nil {
			init.Payload, _ = json.Marshal(d.payload)
		}
		c.send(init)
	}
	return c, resp, nil
}

func (c *wsClient) read() {
	defer close(c.msgs)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var m wsMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.Type == "ping" {
			c.send(wsMessage{Type: "pong"})
			continue
		}
		c.msgs <- m
	}
}

func (c *wsClient) send(m wsMessage) {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.conn.Write(ctx, websocket.MessageText, b)
}

// next returns the next message, or fails after within.
func (c *wsClient) next(within time.Duration) (wsMessage, bool) {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		return m, ok
	case <-time.After(within):
		c.t.Fatalf("no message within %s", within)
	}
	return wsMessage{}, false
}

// ack waits for connection_ack.
func (c *wsClient) ack() {
	c.t.Helper()
	m, ok := c.next(5 * time.Second)
	if !ok || m.Type != "connection_ack" {
		c.t.Fatalf("first message = %+v (open %v, %v); want connection_ack", m, ok, c.closeErr())
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(wsMessage{ID: id, Type: "subscribe", Payload: payload})
}

func (c *wsClient) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// closed waits for the socket to end and returns its close code; it fails
// if a message other than those allowed comes first.
func (c *wsClient) closed(within time.Duration) websocket.StatusCode {
	c.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return websocket.CloseStatus(c.closeErr())
			}
			c.t.Errorf("message before the close: %+v", m)
		case <-deadline:
			c.t.Fatalf("socket still open after %s", within)
		}
	}
}

type changeEvent struct {
	Key   string          `json:"key"`
	Kind  string          `json:"kind"`
	Etag  *string         `json:"etag"`
	At    string          `json:"at"`
	Tags  []string        `json:"tags"`
	Value json.RawMessage `json:"value"`
}

// change waits for the next cacheChanged event of subscription id.
func (c *wsClient) change(id string, within time.Duration) changeEvent {
	c.t.Helper()
	m, ok := c.next(within)
	if !ok {
		c.t.Fatalf("socket closed (%v); want an event", c.closeErr())
	}
	if m.Type != "next" || m.ID != id {
		c.t.Fatalf("message = %s %s %s; want next for %s", m.Type, m.ID, m.Payload, id)
	}
	var r struct {
		Data   struct{ CacheChanged changeEvent } `json:"data"`
		Errors []gqlError                         `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) > 0 {
		c.t.Fatalf("event %s: %v %v", m.Payload, err, r.Errors)
	}
	return r.Data.CacheChanged
}

// quiet fails if a message comes within d.
func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if ok {
			c.t.Errorf("unexpected message %s %s %s", m.Type, m.ID, m.Payload)
		} else {
			c.t.Errorf("socket closed: %v", c.closeErr())
		}
	case <-time.After(d):
	}
}

const watchQuery = `subscription($keys: [String!], $prefix: String, $tags: [String!], $withValue: Boolean) {
  cacheChanged(keys: $keys, prefix: $prefix, tags: $tags, withValue: $withValue) { key kind etag at tags value }
}`

// warm makes sure a subscription of prefix on c is live: it writes a key
// under the prefix through via until its event arrives (the protocol says
// nothing when a subscription starts).
func warm(t *testing.T, c *wsClient, id string, via *service, prefix string) {
	t.Helper()
	for i := 0; ; i++ {
		via.graphql(t, `mutation($k: String!) { cacheSet(key: $k, value: 1) { stored } }`, map[string]any{"k": prefix + "warm"})
		select {
		case m, ok := <-c.msgs:
			if !ok || m.Type != "next" || m.ID != id {
				t.Fatalf("warming up: %+v (open %v, %v)", m, ok, c.closeErr())
			}
			for more := true; more; { // later warm-up writes
				select {
				case m := <-c.msgs:
					if m.Type != "next" {
						t.Fatalf("warming up: %+v", m)
					}
				case <-time.After(100 * time.Millisecond):
					more = false
				}
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if i == 50 {
			t.Fatal("subscription not live after 50 writes")
		}
	}
}

func TestSubscriptionSeesChangesMadeThroughAnotherInstance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Config: []string{"notify-keyspace-events KEA"}})
	a := startService(t, testEnv(srv.Addr))
	b := startService(t, testEnv(srv.Addr))
	c, _, err := dialWS(t, b, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	c.subscribe("1", watchQuery, map[string]any{"prefix": "s:"})
	warm(t, c, "1", a, "s:")

	t.Run("cacheSet through A arrives on B within 100ms with its etag", func(t *testing.T) {
		start := time.Now()
		r := a.graphql(t, `mutation { cacheSet(key: "s:1", value: {a: 1}) { stored } }`, nil)
		if r.Errors != nil {
			t.Fatal(r.Errors)
		}
		x := c.change("1", 2*time.Second)
		took := time.Since(start)
		if x.Key != "s:1" || x.Kind != "SET" || x.Etag == nil || *x.Etag != sha1hex(`{"a":1}`) {
			t.Errorf("event = %+v; want SET s:1 with etag %s", x, sha1hex(`{"a":1}`))
		}
		if took > 100*time.Millisecond {
			t.Errorf("event arrived %s after the write began; want within 100ms", took)
		}
		if _, err := time.Parse(time.RFC3339Nano, x.At); err != nil {
			t.Errorf("at = %q: %v", x.At, err)
		}
		c.quiet(100 * time.Millisecond) // the keyspace echo of A's write is not a second event
	})
	t.Run("cacheDelete is DELETE", func(t *testing.T) {
		a.graphql(t, `mutation { cacheDelete(key: "s:1") { deleted } }`, nil)
		if x := c.change("1", 2*time.Second); x.Key != "s:1" || x.Kind != "DELETE" || x.Etag != nil {
			t.Errorf("event = %+v; want DELETE s:1 without etag", x)
		}
	})
	t.Run("a tag invalidation is INVALIDATED for each tagged key", func(t *testing.T) {
		for _, k := range []string{"s:t1", "s:t2"} {
			a.graphql(t, `mutation($k: String!) { cacheSet(key: $k, value: 1, tags: ["grade-7"]) { stored } }`, map[string]any{"k": k})
			if x := c.change("1", 2*time.Second); x.Kind != "SET" || len(x.Tags) != 1 || x.Tags[0] != "grade-7" {
				t.Errorf("event = %+v; want SET with tag grade-7", x)
			}
		}
		a.graphql(t, `mutation { cacheInvalidateTags(tags: ["grade-7"]) { deleted } }`, nil)
		got := map[string]string{}
		for range 2 {
			x := c.change("1", 2*time.Second)
			got[x.Key] = x.Kind
		}
		if got["s:t1"] != "INVALIDATED" || got["s:t2"] != "INVALIDATED" {
			t.Errorf("events = %v; want both keys INVALIDATED", got)
		}
	})
	t.Run("a write by redis-cli is SET", func(t *testing.T) {
		if _, err := srv.Do(t, "SET", "school-erp:s:cli", `"from redis-cli"`); err != nil {
			t.Fatal(err)
		}
		if x := c.change("1", 2*time.Second); x.Key != "s:cli" || x.Kind != "SET" || x.Etag != nil {
			t.Errorf("event = %+v; want SET s:cli without etag", x)
		}
	})
	t.Run("a TTL running out is EXPIRED", func(t *testing.T) {
		a.graphql(t, `mutation { cacheSet(key: "s:ttl", value: 1, ttlSeconds: 1) { stored } }`, nil)
		if x := c.change("1", 2*time.Second); x.Kind != "SET" {
			t.Fatalf("event = %+v; want the SET first", x)
		}
		if x := c.change("1", 5*time.Second); x.Key != "s:ttl" || x.Kind != "EXPIRED" {
			t.Errorf("event = %+v; want EXPIRED s:ttl", x)
		}
	})
	t.Run("withValue sends the value", func(t *testing.T) {
		c.subscribe("2", watchQuery, map[string]any{"keys": []string{"s:v"}, "withValue": true})
		time.Sleep(200 * time.Millisecond) // no warm-up write: it would reach subscription 1 too
		a.graphql(t, `mutation { cacheIncrement(key: "s:v", by: 41) { value } }`, nil)
		seen := map[string]changeEvent{}
		for range 2 {
			m, _ := c.next(2 * time.Second)
			var r struct {
				Data struct{ CacheChanged changeEvent } `json:"data"`
			}
			_ = json.Unmarshal(m.Payload, &r)
			seen[m.ID] = r.Data.CacheChanged
		}
		if x := seen["2"]; x.Kind != "INCREMENTED" || string(x.Value) != "41" || x.Etag == nil || *x.Etag != sha1hex("41") {
			t.Errorf("withValue event = %+v (value %s); want INCREMENTED, value 41", x, x.Value)
		}
		if x := seen["1"]; x.Kind != "INCREMENTED" || x.Value != nil && string(x.Value) != "null" {
			t.Errorf("event without withValue = %+v (value %s); want no value", x, x.Value)
		}
	})
}

// authEnv is a staging service with a write and a read token.
func authEnv(redisAddr string) map[string]string {
	env := testEnv(redisAddr)
	env["APP_ENV"] = "staging"
	env["API_TOKENS"] = testToken + ",reader:read:" + readTokenValue
	env["CORS_ALLOWED_ORIGINS"] = "https://erp.example.com"
	env["SUBSCRIPTION_INIT_TIMEOUT"] = "300ms"
	env["SUBSCRIPTION_MAX_SOCKETS_PER_TOKEN"] = "3"
	env["SUBSCRIPTION_MAX_PER_SOCKET"] = "2"
	env["SUBSCRIPTION_MAX_KEYS"] = "3"
	return env
}

const readTokenValue = "fedcba9876543210fedc"

func TestSubscriptionAdmission(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, authEnv(srv.Addr))
	s.bearer = testTokenValue
	bearer := func(v string) map[string]any { return map[string]any{"Authorization": "Bearer " + v} }

	refusals := []struct {
		name string
		dial wsDial
		code websocket.StatusCode
	}{
		{"no token", wsDial{}, 4403},
		{"an unknown token", wsDial{payload: bearer("not-a-token-of-ours-0000")}, 4403},
		{"no connection_init in time", wsDial{noInit: true, payload: bearer(readTokenValue)}, 4408},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			c, _, err := dialWS(t, s, r.dial)
			if err != nil {
				t.Fatal(err)
			}
			if !r.dial.noInit {
				c.subscribe("1", watchQuery, map[string]any{"keys": []string{"a"}})
			}
			s.graphql(t, `mutation { cacheSet(key: "a", value: 1) { stored } }`, nil)
			if code := c.closed(3 * time.Second); code != r.code {
				t.Errorf("close code = %d (%v); want %d", code, c.closeErr(), r.code)
			}
			if reason := c.closeErr(); r.code == 4403 && !strings.Contains(fmt.Sprint(reason), "Forbidden") {
				t.Errorf("close reason = %v; want it to say Forbidden", reason)
			}
		})
	}
	t.Run("a foreign Origin is refused before the upgrade", func(t *testing.T) {
		_, resp, err := dialWS(t, s, wsDial{header: http.Header{"Origin": {"https://evil.example"}}, payload: bearer(readTokenValue)})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("dial with a foreign Origin = %v, %v; want HTTP 403", resp, err)
		}
	})
	t.Run("an allowed Origin with a read token subscribes", func(t *testing.T) {
		c, _, err := dialWS(t, s, wsDial{header: http.Header{"Origin": {"https://erp.example.com"}}, payload: bearer(readTokenValue)})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"prefix": "r:"})
		warm(t, c, "1", s, "r:")
	})
	t.Run("the upgrade's Authorization header is enough", func(t *testing.T) {
		c, _, err := dialWS(t, s, wsDial{header: http.Header{"Authorization": {"Bearer " + readTokenValue}}})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
	})
	t.Run("a second connection_init closes with 4429", func(t *testing.T) {
		c, _, err := dialWS(t, s, wsDial{payload: bearer(readTokenValue)})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		init, _ := json.Marshal(bearer(readTokenValue))
		c.send(wsMessage{Type: "connection_init", Payload: init})
		if code := c.closed(3 * time.Second); code != 4429 {
			t.Errorf("second connection_init: close %d (%v); want 4429", code, c.closeErr())
		}
	})
	t.Run("a subscribe of a running id closes with 4409; a finished id is free", func(t *testing.T) {
		c, _, err := dialWS(t, s, wsDial{payload: bearer(readTokenValue)})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		// Refused by the server (an error then complete): the id is free.
		c.subscribe("a", watchQuery, map[string]any{"prefix": ""})
		if m, _ := c.next(2 * time.Second); m.Type != "next" || !strings.Contains(string(m.Payload), "BAD_USER_INPUT") {
			t.Errorf("empty prefix: %s %s; want an error BAD_USER_INPUT", m.Type, m.Payload)
		}
		if m, _ := c.next(2 * time.Second); m.Type != "complete" {
			t.Errorf("after the refusal: %s %s; want complete", m.Type, m.Payload)
		}
		c.subscribe("a", watchQuery, map[string]any{"prefix": "dup:"})
		warm(t, c, "a", s, "dup:")
		// Completed by the client: free again.
		c.send(wsMessage{ID: "a", Type: "complete"})
		// gqlgen answers with a complete of its own.
		if m, _ := c.next(2 * time.Second); m.Type != "complete" || m.ID != "a" {
			t.Errorf("after the client's complete: %s %s; want complete a", m.Type, m.ID)
		}
		c.subscribe("a", watchQuery, map[string]any{"prefix": "dup:"})
		warm(t, c, "a", s, "dup:")
		// Running: the socket is closed.
		c.subscribe("a", watchQuery, map[string]any{"prefix": "dup:"})
		if code := c.closed(3 * time.Second); code != 4409 {
			t.Errorf("subscribe of running id a: close %d (%v); want 4409", code, c.closeErr())
		}
	})
	t.Run("limits", func(t *testing.T) {
		c, _, err := dialWS(t, s, wsDial{payload: bearer(testTokenValue)})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("many", watchQuery, map[string]any{"keys": []string{"1", "2", "3", "4"}})
		if m, _ := c.next(2 * time.Second); m.Type != "next" || !strings.Contains(string(m.Payload), "SUBSCRIPTION_LIMIT") {
			t.Errorf("4 keys (limit 3): %s %s; want an error SUBSCRIPTION_LIMIT", m.Type, m.Payload)
		}
		if m, _ := c.next(2 * time.Second); m.Type != "complete" {
			t.Errorf("after the refusal: %s %s; want complete", m.Type, m.Payload)
		}
		c.subscribe("1", watchQuery, map[string]any{"keys": []string{"x"}})
		c.subscribe("2", watchQuery, map[string]any{"keys": []string{"x"}})
		c.subscribe("3", watchQuery, map[string]any{"keys": []string{"x"}})
		// gqlgen starts them concurrently: any one of the three is refused.
		if m, _ := c.next(2 * time.Second); !strings.Contains(string(m.Payload), "SUBSCRIPTION_LIMIT") {
			t.Errorf("three subscriptions (limit 2): %s %s %s; want an error SUBSCRIPTION_LIMIT", m.ID, m.Type, m.Payload)
		}
		if m, _ := c.next(2 * time.Second); m.Type != "complete" {
			t.Errorf("after the refusal: %s %s; want complete", m.Type, m.Payload)
		}
		c.quiet(200 * time.Millisecond) // the other two run
		// The write token has this socket; two more are allowed, not three.
		for i := range 3 {
			d, _, err := dialWS(t, s, wsDial{payload: bearer(testTokenValue)})
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				d.ack()
				continue
			}
			if code := d.closed(3 * time.Second); code != 4429 {
				t.Errorf("fourth socket of a token (limit 3): close %d (%v); want 4429", code, d.closeErr())
			}
		}
	})
}

func TestSubscriptionsRideThroughARedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, testEnv(srv.Addr))
	const n = 100
	clients := make([]*wsClient, n)
	for i := range clients {
		c, _, err := dialWS(t, s, wsDial{})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"keys": []string{"k", "restart:warm"}})
		clients[i] = c
	}
	// Every subscription is live once each sees a write made after all
	// subscribed.
	time.Sleep(300 * time.Millisecond)
	s.graphql(t, `mutation { cacheSet(key: "k", value: 0) { stored } }`, nil)
	for i, c := range clients {
		if x := c.change("1", 5*time.Second); x.Kind != "SET" {
			t.Fatalf("client %d: %+v before the restart", i, x)
		}
	}
	srv.Kill()
	s.waitRedisStatus(t, "disconnected", 5*time.Second)
	srv.Start()
	s.waitRedisStatus(t, "connected", 10*time.Second)
	for i, c := range clients {
		if x := c.change("1", 5*time.Second); x.Kind != "RESYNC" || x.Key != "" {
			t.Errorf("client %d: %+v; want RESYNC", i, x)
		}
	}
	// Exactly one: the next event is the next change.
	time.Sleep(200 * time.Millisecond)
	s.graphql(t, `mutation { cacheSet(key: "k", value: 1) { stored } }`, nil)
	for i, c := range clients {
		if x := c.change("1", 5*time.Second); x.Kind != "SET" || x.Key != "k" {
			t.Errorf("client %d: %+v after the RESYNC; want the SET", i, x)
		}
	}
}

func TestShutdownClosesSocketsWithGoingAway(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, testEnv(srv.Addr))
	var clients []*wsClient
	for range 200 {
		c, _, err := dialWS(t, s, wsDial{})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"keys": []string{"k"}})
		clients = append(clients, c)
	}
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("run() = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("shutdown took %s; SHUTDOWN_TIMEOUT is 10s", took)
	}
	for i, c := range clients {
		if code := c.closed(5 * time.Second); code != websocket.StatusGoingAway {
			t.Errorf("client %d: close %d (%v); want 1001", i, code, c.closeErr())
		}
	}
}

func TestRedisHealthChangedReportsTransitions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, testEnv(srv.Addr))
	s.waitRedisStatus(t, "connected", 5*time.Second)
	c, _, err := dialWS(t, s, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	c.subscribe("h", `subscription { redisHealthChanged { status breaker keyspaceNotifications } }`, nil)
	status := func() string {
		t.Helper()
		m, ok := c.next(10 * time.Second)
		if !ok || m.Type != "next" {
			t.Fatalf("health event: %+v %v", m, c.closeErr())
		}
		var r struct {
			Data struct {
				RedisHealthChanged struct{ Status, Breaker string }
			}
		}
		_ = json.Unmarshal(m.Payload, &r)
		return r.Data.RedisHealthChanged.Status
	}
	if got := status(); got != "CONNECTED" {
		t.Fatalf("first health event = %s; want CONNECTED", got)
	}
	srv.Kill()
	for got := status(); got != "DISCONNECTED"; got = status() {
	}
	srv.Start()
	for got := status(); got != "CONNECTED"; got = status() {
	}
}

// No goroutine of a socket (gqlgen's connection, the resolvers') outlives
// it. Not parallel: it reads every goroutine's stack.
func TestNothingOutlivesItsSocket(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, testEnv(srv.Addr))
	var clients []*wsClient
	for range 10 {
		c, _, err := dialWS(t, s, wsDial{})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"keys": []string{"k"}})
		c.subscribe("2", `subscription { redisHealthChanged { status } }`, nil)
		clients = append(clients, c)
	}
	time.Sleep(300 * time.Millisecond)
	if n := socketGoroutines(); n < 10 {
		t.Fatalf("%d socket goroutines with 10 sockets open; the count cannot see them", n)
	}
	gauges := func(want float64) {
		t.Helper()
		m := scrape(t, s.url+"/metrics")
		for _, name := range []string{"cache_subscription_sockets", `cache_subscriptions{field="cacheChanged"}`, `cache_subscriptions{field="redisHealthChanged"}`} {
			if m[name] != want {
				t.Errorf("%s = %v; want %v", name, m[name], want)
			}
		}
	}
	gauges(10)
	for _, c := range clients {
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := socketGoroutines(); n > 0; n = socketGoroutines() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d socket goroutines 5s after the sockets closed:\n%s", n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	gauges(0)
}

// socketGoroutines counts the goroutines running a socket's code on the
// server side.
func socketGoroutines() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "transport.(*wsConnection)") || strings.Contains(g, "graph.(*Resolver).cacheChanged") ||
			strings.Contains(g, "graph.(*Resolver).redisHealthChanged") || strings.Contains(g, "graph.(*Sockets).serve") ||
			strings.Contains(g, "graph.(*socket).writeLive") || strings.Contains(g, "graph.(*Sockets).keepAlive") {
			n++
		}
	}
	return n
}

// A subscriber that never reads its socket while 10 000 changes are
// published holds up nobody: the others get every change, promptly; it gets
// a RESYNC in place of what it could not take (or is closed), and the
// service's memory stays bounded.
func TestSlowSubscriberHoldsUpNobody(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	// A queue that holds the whole burst: the slow subscriber's events
	// (with values, read as each is written) go to its socket until the
	// buffers are full, instead of overflowing the queue into a RESYNC that
	// a socket's buffers take whole, which would leave it caught up and
	// not slow; then nothing is taken for the slow timeout, and it is
	// closed.
	env["SUBSCRIPTION_QUEUE"] = "20000"
	env["SUBSCRIPTION_SLOW_TIMEOUT"] = "1s"
	// Batches of 200 KB on a busy machine: the test's fast timings are for
	// outages, not for this.
	env["REDIS_COMMAND_TIMEOUT"] = "2s"
	env["GRAPHQL_REQUEST_TIMEOUT"] = "5s"
	p := startBinary(t, env)
	pid := p.cmd.Process.Pid

	const fast, batches, perBatch = 3, 100, 100
	clients := make([]*wsClient, fast)
	for i := range clients {
		c, _, err := dialURL(t, p.url, wsDial{})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"prefix": "slow:"})
		clients[i] = c
	}
	// The slow one: subscribes with values, then never reads.
	slow := dialSilent(t, p.url, 0, map[string]any{"query": watchQuery, "variables": map[string]any{"prefix": "slow:", "withValue": true}})
	time.Sleep(500 * time.Millisecond) // every subscription live (no warm-up write: it would count)
	rssBefore, _ := memory(t, pid)
	resetPeak(t, pid)

	value := strings.Repeat("x", 2000) // 20 MB of values in all: more than socket buffers hold
	sent := make([]time.Time, batches)
	arrived := make([]time.Time, batches) // when client 0 had the batch's last change
	var counts [fast]int
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for counts[i] < batches*perBatch {
				select {
				case m, ok := <-c.msgs:
					if !ok {
						t.Errorf("fast client %d closed after %d changes: %v", i, counts[i], c.closeErr())
						return
					}
					var r struct {
						Data struct{ CacheChanged changeEvent } `json:"data"`
					}
					_ = json.Unmarshal(m.Payload, &r)
					if x := r.Data.CacheChanged; x.Kind != "SET" || x.Key != fmt.Sprintf("slow:%d", counts[i]) {
						t.Errorf("fast client %d, change %d: %s %s; want SET slow:%d", i, counts[i], x.Kind, x.Key, counts[i])
						return
					}
					counts[i]++
					if i == 0 && counts[i]%perBatch == 0 {
						arrived[counts[i]/perBatch-1] = time.Now()
					}
				case <-time.After(10 * time.Second):
					t.Errorf("fast client %d: nothing for 10s after %d changes", i, counts[i])
					return
				}
			}
		}()
	}
	for b := range batches {
		sent[b] = time.Now()
		setBatch(t, p.url, b, perBatch, func(i int) string { return fmt.Sprintf("slow:%d", i) }, value)
	}
	wg.Wait()
	_, peak := memory(t, pid)
	var lags []time.Duration
	for b := range batches {
		if !arrived[b].IsZero() {
			lags = append(lags, arrived[b].Sub(sent[b]))
		}
	}
	slices.Sort(lags)
	if len(lags) == batches {
		p50, p90 := lags[len(lags)/2], lags[len(lags)*9/10]
		t.Logf("fast subscribers: each got %d changes; from a batch of %d being sent to its last change on client 0: p50 %s, p90 %s, max %s", counts[0], perBatch, p50, p90, lags[len(lags)-1])
		// The median, not the tail: on a machine shared with other work a
		// batch now and then waits for a CPU, slow subscriber or not. The
		// race detector slows everything several times over: no bound then.
		if p50 > 100*time.Millisecond && !raceEnabled {
			t.Errorf("p50 from a batch's write to its last change = %s; want within 100ms", p50)
		}
	}
	t.Logf("RSS %d MiB before; peak %d MiB while 20 MB of changes went past the slow subscriber", rssBefore/mib, peak/mib)
	if peak-rssBefore > 128*mib {
		t.Errorf("peak RSS grew by %d MiB; want under 128 MiB", (peak-rssBefore)/mib)
	}

	// Now the slow one reads: what the socket buffers held, with a RESYNC
	// in place of what overflowed its queue, and then the close for having
	// taken nothing for SUBSCRIPTION_SLOW_TIMEOUT (1008, or an abrupt close
	// when the close frame could not get through the full buffers in time).
	// First it stays behind long enough: a client that caught up (the
	// socket buffers took most of the burst) is not slow.
	time.Sleep(2500 * time.Millisecond)
	drainSlow(t, slow, batches*perBatch)
}

// dialSilent opens a socket to base that sends connection_init and one
// subscribe (id 1, payload), then reads nothing until the test does; with
// rcvbuf > 0 its kernel's receive buffer is that small.
func dialSilent(t *testing.T, base string, rcvbuf int, payload map[string]any) *websocket.Conn {
	t.Helper()
	opts := &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}}
	if rcvbuf > 0 {
		dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	}
	ctx := context.Background()
	slow, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.CloseNow() })
	slow.SetReadLimit(1 << 20)
	sub, _ := json.Marshal(payload)
	for _, m := range []wsMessage{{Type: "connection_init"}, {ID: "1", Type: "subscribe", Payload: sub}} {
		b, _ := json.Marshal(m)
		if err := slow.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	return slow
}

// setBatch writes batch b of perBatch keys (key(b*perBatch) on) with one
// cacheSetMany through base.
func setBatch(t *testing.T, base string, b, perBatch int, key func(int) string, value any) {
	t.Helper()
	entries := make([]map[string]any, perBatch)
	for j := range entries {
		entries[j] = map[string]any{"key": key(b*perBatch + j), "value": value}
	}
	body, _ := json.Marshal(map[string]any{"query": `mutation($e: [CacheSetInput!]!) { cacheSetMany(entries: $e) { stored } }`, "variables": map[string]any{"e": entries}})
	resp, err := http.Post(base+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch %d: HTTP %d: %s", b, resp.StatusCode, raw)
	}
}

// drainSlow reads a slow subscriber's socket to its end, which must be
// the close for SUBSCRIPTION_SLOW_TIMEOUT (1008, or abrupt when the close
// frame could not get through the full buffers in time) before it has all
// of the published changes; it reports whether a RESYNC was among what it
// read, and the end.
func drainSlow(t *testing.T, slow *websocket.Conn, published int) (resync bool, end error) {
	t.Helper()
	n := 0
	for end == nil {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var b []byte
		_, b, end = slow.Read(rctx)
		cancel()
		if end == nil {
			n++
			resync = resync || strings.Contains(string(b), `"kind":"RESYNC"`)
		}
	}
	t.Logf("slow subscriber: %d messages (a RESYNC among them: %v), then %v", n, resync, end)
	if errors.Is(end, context.DeadlineExceeded) {
		t.Errorf("slow subscriber still open 10s after it read everything; want it closed for SUBSCRIPTION_SLOW_TIMEOUT")
	}
	if code := websocket.CloseStatus(end); code != -1 && code != websocket.StatusPolicyViolation {
		t.Errorf("slow subscriber closed with %d; want 1008", code)
	}
	if n >= published {
		t.Errorf("slow subscriber got %d messages: it was not slow", n)
	}
	return resync, end
}

// A subscription sent over HTTP is refused at once, not held open until
// its first event.
func TestSubscriptionOverHTTPIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := startService(t, testEnv(srv.Addr))
	start := time.Now()
	r := s.graphql(t, `subscription { cacheChanged(keys: ["k"]) { key } }`, nil)
	if r.code() != "SUBSCRIPTIONS_UNAVAILABLE" {
		t.Errorf("subscription over POST: %+v; want SUBSCRIPTIONS_UNAVAILABLE", r)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %s", took)
	}
}

// The slow-consumer rule on the compiled path (graph/live.go), which runs
// the usual subscription: a socket whose client never reads, behind a
// small receive window, has its queue replaced by a RESYNC when it
// overflows and is closed once nothing has been written to it for
// SUBSCRIPTION_SLOW_TIMEOUT; a fast subscriber of the same changes gets
// every one of them, in order.
func TestSlowLiveSubscriberIsResyncedThenClosed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["SUBSCRIPTION_SLOW_TIMEOUT"] = "1s"
	env["REDIS_COMMAND_TIMEOUT"] = "2s"
	env["GRAPHQL_REQUEST_TIMEOUT"] = "5s"
	p := startBinary(t, env)
	const query = `subscription { cacheChanged(prefix: "slowlive:") { key kind } }`

	fast, _, err := dialURL(t, p.url, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	fast.ack()
	fast.subscribe("1", query, nil)
	// The slow one reads nothing, and its kernel takes little for it.
	slow := dialSilent(t, p.url, 4096, map[string]any{"query": query})
	time.Sleep(500 * time.Millisecond)

	// 10 000 changes of long keys: about 5 MB of events, more than the
	// socket buffers hold.
	const batches, perBatch = 100, 100
	long := strings.Repeat("k", 400)
	key := func(i int) string { return fmt.Sprintf("slowlive:%s:%d", long, i) }
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for n < batches*perBatch {
			m, ok := fast.next(10 * time.Second)
			if !ok {
				t.Errorf("fast client: nothing for 10s after %d changes (%v)", n, fast.closeErr())
				return
			}
			var r struct {
				Data struct{ CacheChanged changeEvent } `json:"data"`
			}
			_ = json.Unmarshal(m.Payload, &r)
			if x := r.Data.CacheChanged; x.Kind != "SET" || x.Key != key(n) {
				t.Errorf("fast client, change %d: %s %.30s; want SET %.30s", n, x.Kind, x.Key, key(n))
				return
			}
			n++
		}
	}()
	for b := range batches {
		setBatch(t, p.url, b, perBatch, key, 1)
	}
	if n := <-done; n != batches*perBatch {
		t.Errorf("fast client got %d changes; want %d", n, batches*perBatch)
	}

	time.Sleep(2500 * time.Millisecond) // past the slow timeout
	resync, end := drainSlow(t, slow, batches*perBatch)
	// The RESYNC that replaced the overflowing queue reaches the client
	// only if the socket drains before the slow timeout; the close says
	// the same (reconnect and read again) when it does not.
	if !resync && websocket.CloseStatus(end) != websocket.StatusPolicyViolation {
		t.Errorf("slow subscriber got neither a RESYNC nor a close 1008: %v", end)
	}
}

// A subscribe while Redis is down does not hold up the socket: the wait
// for the subscription to Redis happens beside its reader, the socket
// answers its next message at once, and each subscription gets its one
// RESYNC when Redis is back, then the changes.
func TestSubscribeDuringAnOutageDoesNotBlockTheSocket(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_DIAL_TIMEOUT"] = "2s" // a blocked reader would take 5 x 2.3 s
	s := startService(t, env)
	c, _, err := dialWS(t, s, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	c.subscribe("warm", watchQuery, map[string]any{"prefix": "outage:"})
	warm(t, c, "warm", s, "outage:")
	c.send(wsMessage{ID: "warm", Type: "complete"})
	if m, _ := c.next(2 * time.Second); m.Type != "complete" {
		t.Fatalf("after complete: %+v", m)
	}
	srv.Kill()
	s.waitRedisStatus(t, "disconnected", 5*time.Second)
	start := time.Now()
	for i := range 5 {
		c.subscribe(strconv.Itoa(i), watchQuery, map[string]any{"keys": []string{"outage:k"}})
	}
	c.send(wsMessage{Type: "ping"})
	if m, ok := c.next(time.Second); !ok || m.Type != "pong" {
		t.Fatalf("ping after 5 subscribes during the outage: %+v after %s; want pong within 1s", m, time.Since(start))
	}
	// Past the wait for the subscription (dial + command timeouts): from
	// then on the subscriptions may be missing changes, and say so once
	// Redis is back. (Had it come back within the wait, they would have
	// missed nothing: no RESYNC, as on gqlgen's path.)
	time.Sleep(3 * time.Second)
	srv.Start()
	s.waitRedisStatus(t, "connected", 10*time.Second)
	resyncs := map[string]int{}
	for range 5 {
		m, ok := c.next(5 * time.Second)
		if !ok || m.Type != "next" {
			t.Fatalf("after Redis returned: %+v; want a RESYNC for each subscription", m)
		}
		var r struct {
			Data struct{ CacheChanged changeEvent } `json:"data"`
		}
		_ = json.Unmarshal(m.Payload, &r)
		if r.Data.CacheChanged.Kind != "RESYNC" {
			t.Fatalf("subscription %s: %+v; want RESYNC", m.ID, r.Data.CacheChanged)
		}
		resyncs[m.ID]++
	}
	if len(resyncs) != 5 {
		t.Errorf("RESYNCs by subscription: %v; want one for each of 5", resyncs)
	}
	time.Sleep(200 * time.Millisecond)
	s.graphql(t, `mutation { cacheSet(key: "outage:k", value: 1) { stored } }`, nil)
	sets := map[string]int{}
	for range 5 {
		m, ok := c.next(5 * time.Second)
		var r struct {
			Data struct{ CacheChanged changeEvent } `json:"data"`
		}
		_ = json.Unmarshal(m.Payload, &r)
		if x := r.Data.CacheChanged; !ok || x.Kind != "SET" || x.Key != "outage:k" {
			t.Fatalf("after the RESYNCs: %s %+v; want the SET", m.ID, x)
		}
		sets[m.ID]++
	}
	if len(sets) != 5 {
		t.Errorf("SETs by subscription: %v; want one for each of 5", sets)
	}
}

// The server pings every SUBSCRIPTION_KEEPALIVE: a client that answers
// stays, one that has sent nothing for two intervals is dropped.
func TestKeepAliveDropsASilentClient(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["SUBSCRIPTION_KEEPALIVE"] = "1s" // the shortest allowed
	s := startService(t, env)
	alive, _, err := dialWS(t, s, wsDial{}) // answers every ping (wsClient)
	if err != nil {
		t.Fatal(err)
	}
	alive.ack()
	alive.subscribe("1", watchQuery, map[string]any{"keys": []string{"ka"}})
	ctx := context.Background()
	silent, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()
	if err := silent.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`)); err != nil {
		t.Fatal(err)
	}
	pings := 0
	start := time.Now()
	var end error
	for end == nil && time.Since(start) < 6*time.Second {
		rctx, cancel := context.WithTimeout(ctx, 6*time.Second)
		var b []byte
		_, b, end = silent.Read(rctx)
		cancel()
		if end == nil && strings.Contains(string(b), `"ping"`) {
			pings++
		}
	}
	took := time.Since(start)
	t.Logf("silent client: %d pings, then %v after %s", pings, end, took)
	if end == nil || errors.Is(end, context.DeadlineExceeded) {
		t.Fatalf("silent client still open after %s", took)
	}
	if pings == 0 {
		t.Error("silent client got no ping before it was dropped")
	}
	if took > 4*time.Second {
		t.Errorf("silent client dropped after %s; want after two to three intervals of 1s", took)
	}
	// The one that answers is still there and still gets changes.
	s.graphql(t, `mutation { cacheSet(key: "ka", value: 1) { stored } }`, nil)
	if x := alive.change("1", 5*time.Second); x.Kind != "SET" || x.Key != "ka" {
		t.Errorf("answering client: %+v; want the SET", x)
	}
}
