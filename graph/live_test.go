package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/redistest"
)

// The differential test of live subscriptions (live.go): the same
// subscribe messages go to a handler with the compiled path and to one
// without, both on the same cache client (so the same changes, with the
// same times), and every message each socket gets for each id must be the
// same bytes.

type liveCase struct {
	query string
	vars  map[string]any
	live  bool // run by the compiled path, not handed to gqlgen
}

var liveCorpus = []liveCase{
	{query: `subscription { cacheChanged(keys: ["d:a"]) { key kind etag } }`, live: true},
	{query: `subscription { cacheChanged(keys: ["d:a", "d:<&>"]) { key kind etag at tags value __typename } }`, live: true},
	{query: `subscription W($k: [String!]) { c: cacheChanged(keys: $k) { k: key kind } }`, vars: map[string]any{"k": []any{"d:a", "d:é"}}, live: true},
	{query: `subscription { cacheChanged(prefix: "d:") { key kind tags } }`, live: true},
	{query: `subscription { cacheChanged(tags: ["t<1>"], withValue: false) { kind key tags } }`, live: true},
	{query: `subscription P($p: String) { cacheChanged(prefix: $p) { kind key } }`, vars: map[string]any{"p": "d:"}, live: true},
	{query: `subscription { cacheChanged(keys: ["d:a"], withValue: true) { key kind value } }`, live: true},
	{query: `subscription V($w: Boolean) { cacheChanged(prefix: "d:", withValue: $w) { value kind key etag } }`, vars: map[string]any{"w": true}, live: true},
	{query: `subscription { cacheChanged(prefix: "d:", withValue: true) { key value } }`, live: true},
	// gqlgen's on both: a fragment, a directive, and refusals.
	{query: `subscription { cacheChanged(keys: ["d:a"]) { ...F } } fragment F on CacheChange { key kind }`},
	{query: `subscription { cacheChanged(keys: ["d:a"]) { key @include(if: true) kind } }`},
	{query: `subscription { cacheChanged(prefix: "") { key } }`},
	{query: `subscription { cacheChanged { key } }`},
	{query: `subscription { cacheChanged(keys: ["has space"]) { key } }`},
	{query: `subscription { cacheChanged(keys: ["d:a"]) { nope } }`},
	// One response name twice: merged (by gqlgen, which runs these).
	{query: `subscription { cacheChanged(keys: ["d:a"]) { key kind key } }`},
	{query: `subscription { cacheChanged(keys: ["d:a"]) { a: key a: key __typename __typename } }`},
	{query: `subscription { cacheChanged(keys: $undefined) { key } }`},
}

// liveSocket is a raw graphql-transport-ws client that keeps each message
// as the bytes it came in.
type liveSocket struct {
	ws   *websocket.Conn
	msgs chan []byte
	err  error // the read error that ended msgs (read after msgs is closed)
}

func dialLive(t testing.TB, url string) *liveSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	s := &liveSocket{ws: ws, msgs: make(chan []byte, 1024)}
	// One reader for the socket's life: coder/websocket closes a
	// connection whose read is cancelled.
	go func() {
		defer close(s.msgs)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				s.err = err
				return
			}
			s.msgs <- b
		}
	}()
	s.send(t, map[string]any{"type": "connection_init"})
	if b := s.next(t); !bytes.Contains(b, []byte("connection_ack")) {
		t.Fatalf("connection_init: %s", b)
	}
	return s
}

func (s *liveSocket) send(t testing.TB, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

func (s *liveSocket) next(t testing.TB) []byte {
	t.Helper()
	select {
	case b, ok := <-s.msgs:
		if !ok {
			t.Fatal("socket closed")
		}
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// collect reads messages until none has come for quiet, and groups them by
// id.
func (s *liveSocket) collect(t testing.TB, quiet time.Duration) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for {
		var b []byte
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return out
			}
			b = m
		case <-time.After(quiet):
			return out
		}
		var m struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(b, &m) != nil {
			t.Fatalf("not JSON: %s", b)
		}
		out[m.ID] = append(out[m.ID], string(b))
	}
}

func TestLiveSubscriptionsMatchGqlgen(t *testing.T) {
	// Keyspace notifications on: writes by another program arrive too,
	// with values as that program wrote them (not compact, say).
	srv := redistest.Start(t, redistest.Options{Config: []string{"notify-keyspace-events KEA"}})
	c := readyCache(t, srv)
	r := &Resolver{Cache: c, Changes: c}
	limits := shippedLimits(t)
	serve := func(noCompiled bool) (string, *Sockets) {
		socks := NewSockets()
		h := NewHandler(r, HandlerOptions{Auth: auth.OpenAccess(), Limits: limits, NoCompiledReads: noCompiled, Subscriptions: SubscriptionOptions{Sockets: socks}})
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		return ts.URL + "/graphql", socks
	}
	liveURL, liveSocks := serve(false)
	plainURL, _ := serve(true)
	live, plain := dialLive(t, liveURL), dialLive(t, plainURL)
	wantLive := 0
	for i, tc := range liveCorpus {
		// Ids need escaping too.
		id := fmt.Sprintf("s%d<&>", i)
		payload := map[string]any{"query": tc.query}
		if tc.vars != nil {
			payload["variables"] = tc.vars
		}
		for _, s := range []*liveSocket{live, plain} {
			s.send(t, map[string]any{"id": id, "type": "subscribe", "payload": payload})
		}
		if tc.live {
			wantLive++
		}
	}
	// A message after the subscribes, answered in order, says they are in.
	for _, s := range []*liveSocket{live, plain} {
		s.send(t, map[string]any{"type": "ping"})
	}
	time.Sleep(300 * time.Millisecond)
	if got := liveSocks.live.started.Load(); got != uint64(wantLive) {
		t.Errorf("live subscriptions started = %d; want %d", got, wantLive)
	}

	mutate := func(q string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": q})
		resp, err := http.Post(liveURL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", q, resp.StatusCode)
		}
		// withValue reads the value when the event is written, on each
		// path in its own time: the next change waits until both have.
		time.Sleep(100 * time.Millisecond)
	}
	mutate(`mutation { cacheSet(key: "d:a", value: {n: 1}, tags: ["t<1>"]) { stored } }`)
	mutate(`mutation { cacheSet(key: "d:<&>", value: "<&>") { stored } }`)
	mutate(`mutation { cacheSet(key: "d:é", value: 2) { stored } }`)
	mutate(`mutation { cacheIncrement(key: "d:n") { value } }`)
	mutate(`mutation { cacheExpire(key: "d:a", ttlSeconds: 60) { updated } }`)
	mutate(`mutation { cacheInvalidateTags(tags: ["t<1>"]) { deleted } }`)
	mutate(`mutation { cacheDelete(key: "d:<&>") { deleted } }`)
	for _, v := range []string{`{ "a" : [ 1 , 2 ] }`, `"<b>\u2028</b>"`, `not json`} {
		if _, err := srv.Do(t, "SET", "school-erp:d:other", v); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // past the hold of keyspace events
	}

	got, want := live.collect(t, time.Second), plain.collect(t, time.Second)
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	events := 0
	for _, id := range ids {
		if !slices.Equal(got[id], want[id]) {
			t.Errorf("id %q:\n compiled %q\n gqlgen   %q", id, got[id], want[id])
		}
		for _, m := range want[id] {
			if strings.Contains(m, `"type":"next"`) && strings.Contains(m, `"data"`) {
				events++
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("id %q: compiled %q, gqlgen nothing", id, got[id])
		}
	}
	// The corpus is worth something only if the events came.
	if events < 20 {
		t.Errorf("%d events in all; the changes did not reach the subscriptions", events)
	}
	// And the values with them: another program's, compacted and escaped.
	all := ""
	for _, id := range ids {
		all += strings.Join(want[id], "\n")
	}
	for _, v := range []string{`"value":{"n":1}`, `"value":{"a":[1,2]}`, `"value":"\u003cb\u003e\u2028\u003c/b\u003e"`, `"value":"not json"`} {
		if !strings.Contains(all, v) {
			t.Errorf("no event with %s", v)
		}
	}

	// The client's complete: answered with complete, and no event after.
	for _, s := range []*liveSocket{live, plain} {
		s.send(t, map[string]any{"id": "s0<&>", "type": "complete"})
	}
	mutate(`mutation { cacheSet(key: "d:a", value: 3) { stored } }`)
	got, want = live.collect(t, time.Second), plain.collect(t, time.Second)
	if !slices.Equal(got["s0<&>"], want["s0<&>"]) || len(want["s0<&>"]) != 1 {
		t.Errorf("after complete: compiled %q, gqlgen %q; want one complete from each", got["s0<&>"], want["s0<&>"])
	}
}

// slowGets is the cache with a read of Redis that takes a while.
type slowGets struct {
	Cache
	delay time.Duration
}

func (s slowGets) Get(ctx context.Context, key string) (json.RawMessage, cache.Backend, error) {
	time.Sleep(s.delay)
	return s.Cache.Get(ctx, key)
}

// shippedLimits are the request limits a user gets by default (config's
// defaults, as server.go hands them to the handler), for the live path's
// tests: the live path admits through the same limits as gqlgen.
func shippedLimits(t testing.TB) Limits {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Limits{Complexity: cfg.GraphQLMaxComplexity, Depth: cfg.GraphQLMaxDepth, Tokens: cfg.GraphQLMaxTokens, Aliases: cfg.GraphQLMaxAliases, Operations: cfg.GraphQLMaxOperations}
}

// readyCache is a cache client on srv, once it is ready.
func readyCache(t testing.TB, srv *redistest.Server) *cache.Client {
	t.Helper()
	c, err := cache.New(cache.Options{Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// liveService is a handler with the compiled path on a real Redis, served
// on a loopback port.
func liveService(t *testing.T, wrap func(Cache) Cache) (url string, c *cache.Client) {
	t.Helper()
	c = readyCache(t, redistest.Start(t, redistest.Options{}))
	var cc Cache = c
	if wrap != nil {
		cc = wrap(c)
	}
	r := &Resolver{Cache: cc, Changes: c}
	limits := shippedLimits(t)
	ts := httptest.NewServer(NewHandler(r, HandlerOptions{Auth: auth.OpenAccess(), Limits: limits, Subscriptions: SubscriptionOptions{Sockets: NewSockets()}}))
	t.Cleanup(ts.Close)
	return ts.URL + "/graphql", c
}

// A client's close while the writer reads a value for a withValue event
// gets its close handshake: nothing of the socket waits on Redis corked.
func TestLiveCloseDuringAValueRead(t *testing.T) {
	url, c := liveService(t, func(c Cache) Cache { return slowGets{Cache: c, delay: time.Second} })
	s := dialLive(t, url)
	s.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { cacheChanged(keys: ["v"], withValue: true) { key value } }`}})
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Set(context.Background(), "v", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the writer is in its read
	start := time.Now()
	if err := s.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close during a value read: %v after %s; want the close handshake", err, time.Since(start))
	}
}

// A message with bytes after its JSON value is read as gqlgen reads it
// (the value, the rest ignored): a subscribe of a running id so spelled is
// still refused with 4409.
func TestLiveDuplicateIDWithTrailingBytes(t *testing.T) {
	url, _ := liveService(t, nil)
	s := dialLive(t, url)
	sub := `{"id":"1","type":"subscribe","payload":{"query":"subscription { cacheChanged(keys: [\"k\"]) { key } }"}}`
	for _, m := range []string{sub, sub + " x"} {
		if err := s.ws.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case b, ok := <-s.msgs:
		if ok {
			t.Fatalf("message %s; want the socket closed with 4409", b)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("socket still open after a duplicate id")
	}
	if code := websocket.CloseStatus(s.err); code != CloseDuplicateID {
		t.Errorf("close %d (%v); want %d", code, s.err, CloseDuplicateID)
	}
}

// FuzzLiveSubscriptions runs generated cacheChanged subscriptions (a
// choice of fields, aliases, filter arguments, withValue, and the id)
// through both paths, as TestLiveSubscriptionsMatchGqlgen runs its corpus,
// and requires the same bytes for one change. The seeds run with the
// tests; go test -fuzz FuzzLiveSubscriptions ./graph explores, slowly
// (each case is a subscription, a write and a wait for its events: about
// 0.7 s).
func FuzzLiveSubscriptions(f *testing.F) {
	f.Add(uint8(0x07), uint8(0), uint8(0), "1")
	f.Add(uint8(0x7f), uint8(0x55), uint8(1), "<&>\u2028")
	f.Add(uint8(0x21), uint8(0xff), uint8(2), "id with spaces")
	f.Add(uint8(0x60), uint8(0x0f), uint8(7), "\xff")
	f.Add(uint8(0x1c), uint8(0x80), uint8(4), "x")
	f.Add(uint8(0x7f), uint8(0x7f), uint8(6), "")
	srv := redistest.Start(f, redistest.Options{})
	c := readyCache(f, srv)
	r := &Resolver{Cache: c, Changes: c}
	limits := shippedLimits(f)
	serve := func(noCompiled bool) string {
		ts := httptest.NewServer(NewHandler(r, HandlerOptions{Auth: auth.OpenAccess(), Limits: limits, NoCompiledReads: noCompiled, Subscriptions: SubscriptionOptions{Sockets: NewSockets()}}))
		f.Cleanup(ts.Close)
		return ts.URL + "/graphql"
	}
	liveURL, plainURL := serve(false), serve(true)
	fields := []string{"key", "kind", "etag", "at", "tags", "value", "__typename"}
	n := 0
	f.Fuzz(func(t *testing.T, mask, aliases, args uint8, id string) {
		n++
		var sel []string
		for i, name := range fields {
			if mask&(1<<i) == 0 {
				continue
			}
			if aliases&(1<<i) != 0 {
				name = fmt.Sprintf("a%d: %s", i, name)
			}
			sel = append(sel, name)
		}
		if len(sel) == 0 {
			sel = []string{"key"}
		}
		key := fmt.Sprintf("fz:%d", n)
		filter := []string{fmt.Sprintf(`keys: [%q]`, key), `prefix: "fz:"`, `tags: ["fz"]`}[int(args%3)]
		if args&4 != 0 {
			filter += ", withValue: true"
		}
		root := "cacheChanged"
		if aliases&0x80 != 0 {
			root = "c: cacheChanged"
		}
		query := fmt.Sprintf("subscription { %s(%s) { %s } }", root, filter, strings.Join(sel, " "))
		live, plain := dialLive(t, liveURL), dialLive(t, plainURL)
		for _, s := range []*liveSocket{live, plain} {
			s.send(t, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query}})
			s.send(t, map[string]any{"type": "ping"})
			if b := s.next(t); !bytes.Contains(b, []byte(`"pong"`)) {
				t.Fatalf("%s: %s before the pong", query, b)
			}
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := c.SetWith(context.Background(), key, json.RawMessage(`{"n":"<&>"}`), cache.SetOptions{Tags: []string{"fz"}}); err != nil {
			t.Fatal(err)
		}
		got, want := live.collect(t, 300*time.Millisecond), plain.collect(t, 300*time.Millisecond)
		// The id as the server has it: JSON made invalid UTF-8 U+FFFD.
		b, _ := json.Marshal(id)
		_ = json.Unmarshal(b, &id)
		if !slices.Equal(got[id], want[id]) || len(want[id]) == 0 {
			t.Errorf("%s, id %q:\n compiled %q\n gqlgen   %q", query, id, got[id], want[id])
		}
	})
}
