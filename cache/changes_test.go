package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// next returns the next change from ch, failing after within.
func next(t *testing.T, ch <-chan *cache.Change, within time.Duration) *cache.Change {
	t.Helper()
	select {
	case x, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return x
	case <-time.After(within):
		t.Fatalf("no change within %s", within)
	}
	return nil
}

// quiet fails if ch delivers anything within d.
func quiet(t *testing.T, ch <-chan *cache.Change, d time.Duration) {
	t.Helper()
	select {
	case x := <-ch:
		t.Fatalf("unexpected change %+v", x)
	case <-time.After(d):
	}
}

func watch(t *testing.T, c *cache.Client, f cache.WatchFilter) <-chan *cache.Change {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := c.Watch(ctx, f)
	if err != nil {
		t.Fatalf("Watch(%+v) = %v", f, err)
	}
	return ch
}

func TestWatchSeesEveryWritePathOfAnotherInstance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	b := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, a)
	ready(t, b)
	ctx := context.Background()
	ch := watch(t, b, cache.WatchFilter{Prefix: "w:"})
	other := watch(t, b, cache.WatchFilter{Keys: []string{"elsewhere"}})

	type want struct {
		key  string
		kind cache.ChangeKind
		etag string
	}
	steps := []struct {
		name string
		do   func() error
		want []want
	}{
		{"set", func() error { _, err := a.Set(ctx, "w:1", json.RawMessage(`{"a":1}`), 0); return err },
			[]want{{"w:1", cache.ChangeSet, cache.ETag([]byte(`{"a":1}`))}}},
		{"set with tags", func() error {
			_, err := a.SetWith(ctx, "w:2", json.RawMessage(`2`), cache.SetOptions{Tags: []string{"t"}})
			return err
		}, []want{{"w:2", cache.ChangeSet, cache.ETag([]byte(`2`))}}},
		{"increment", func() error { _, _, err := a.Increment(ctx, "w:n", 5, 0); return err },
			[]want{{"w:n", cache.ChangeIncremented, cache.ETag([]byte("5"))}}},
		{"expire", func() error { _, _, err := a.Expire(ctx, "w:n", time.Hour); return err },
			[]want{{"w:n", cache.ChangeTTL, ""}}},
		{"delete", func() error { _, _, err := a.Delete(ctx, "w:n"); return err },
			[]want{{"w:n", cache.ChangeDelete, ""}}},
		{"delete of a missing key announces nothing", func() error { _, _, err := a.Delete(ctx, "w:none"); return err }, nil},
		{"set many", func() error {
			_, err := a.SetMany(ctx, []cache.SetEntry{{Key: "w:3", Value: json.RawMessage(`3`)}, {Key: "w:4", Value: json.RawMessage(`4`)}})
			return err
		}, []want{{"w:3", cache.ChangeSet, cache.ETag([]byte(`3`))}, {"w:4", cache.ChangeSet, cache.ETag([]byte(`4`))}}},
		{"delete many", func() error { _, err := a.DeleteMany(ctx, []string{"w:3", "w:4", "w:none"}); return err },
			[]want{{"w:3", cache.ChangeDelete, ""}, {"w:4", cache.ChangeDelete, ""}}},
		{"invalidate tags", func() error { _, err := a.InvalidateTags(ctx, []string{"t"}); return err },
			[]want{{"w:2", cache.ChangeInvalidated, ""}}},
		{"refused condition announces nothing", func() error {
			_, err := a.SetWith(ctx, "w:1", json.RawMessage(`9`), cache.SetOptions{Condition: cache.Condition{IfAbsent: true}})
			if errors.Is(err, cache.ErrConditionNotMet) {
				return nil
			}
			return err
		}, nil},
		{"lease fill", func() error {
			r, err := a.Fetch(ctx, "w:lease", time.Second, 0)
			if err != nil {
				return err
			}
			_, err = a.SetWith(ctx, "w:lease", json.RawMessage(`"filled"`), cache.SetOptions{Lease: r.Lease})
			return err
		}, []want{{"w:lease", cache.ChangeSet, cache.ETag([]byte(`"filled"`))}}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			start := time.Now()
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			for _, w := range s.want {
				x := next(t, ch, 2*time.Second)
				if x.Key != w.key || x.Kind != w.kind || x.ETag != w.etag {
					t.Errorf("change = %+v; want %s %s etag %q", x, w.key, w.kind, w.etag)
				}
				if x.At.Before(start.Add(-time.Second)) || x.At.After(time.Now().Add(time.Second)) {
					t.Errorf("change At = %s; want about now", x.At)
				}
			}
			quiet(t, ch, 50*time.Millisecond)
		})
	}
	quiet(t, other, 10*time.Millisecond)
}

func TestWatchByTag(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	ch := watch(t, c, cache.WatchFilter{Tags: []string{"class-7"}})
	for i := range 3 {
		if _, err := c.SetWith(ctx, "student:"+strconv.Itoa(i), json.RawMessage(`1`), cache.SetOptions{Tags: []string{"class-7"}}); err != nil {
			t.Fatal(err)
		}
		if x := next(t, ch, 2*time.Second); x.Kind != cache.ChangeSet || x.Key != "student:"+strconv.Itoa(i) {
			t.Errorf("change = %+v; want SET student:%d", x, i)
		}
	}
	if _, err := c.InvalidateTags(ctx, []string{"class-7"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 3 {
		x := next(t, ch, 2*time.Second)
		if x.Kind != cache.ChangeInvalidated || len(x.Tags) != 1 || x.Tags[0] != "class-7" {
			t.Errorf("change = %+v; want INVALIDATED with tag class-7", x)
		}
		seen[x.Key] = true
	}
	if len(seen) != 3 {
		t.Errorf("invalidated keys = %v; want the 3 tagged", seen)
	}
}

func TestWatchKeyspaceNotifications(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"notify-keyspace-events KEA"}})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	ch := watch(t, c, cache.WatchFilter{Prefix: "k:"})
	if got := c.Health().KeyspaceNotifications; got != cache.KeyspaceOn {
		t.Errorf("Health().KeyspaceNotifications = %q; want on", got)
	}

	t.Run("another program's write is a SET", func(t *testing.T) {
		if _, err := srv.Do(t, "SET", "school-erp:k:ext", `"x"`); err != nil {
			t.Fatal(err)
		}
		if x := next(t, ch, 2*time.Second); x.Key != "k:ext" || x.Kind != cache.ChangeSet || x.ETag != "" {
			t.Errorf("change = %+v; want SET k:ext without an etag", x)
		}
		quiet(t, ch, 100*time.Millisecond)
	})
	t.Run("the service's own write arrives once, with its etag", func(t *testing.T) {
		if _, err := c.Set(ctx, "k:own", json.RawMessage(`1`), 0); err != nil {
			t.Fatal(err)
		}
		if x := next(t, ch, 2*time.Second); x.Key != "k:own" || x.Kind != cache.ChangeSet || x.ETag != cache.ETag([]byte(`1`)) {
			t.Errorf("change = %+v; want SET k:own with its etag", x)
		}
		quiet(t, ch, 100*time.Millisecond)
	})
	t.Run("a TTL running out is EXPIRED", func(t *testing.T) {
		if _, err := c.Set(ctx, "k:short", json.RawMessage(`1`), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if x := next(t, ch, 2*time.Second); x.Kind != cache.ChangeSet {
			t.Fatalf("change = %+v; want the SET first", x)
		}
		if x := next(t, ch, 3*time.Second); x.Key != "k:short" || x.Kind != cache.ChangeExpired {
			t.Errorf("change = %+v; want EXPIRED k:short", x)
		}
	})
	t.Run("the service's own keys are not announced", func(t *testing.T) {
		// A tagged write touches the tag index; a fetch writes a lease.
		if _, err := c.SetWith(ctx, "k:tagged", json.RawMessage(`1`), cache.SetOptions{Tags: []string{"k:t"}}); err != nil {
			t.Fatal(err)
		}
		if x := next(t, ch, 2*time.Second); x.Key != "k:tagged" || x.Kind != cache.ChangeSet {
			t.Errorf("change = %+v; want SET k:tagged", x)
		}
		quiet(t, ch, 100*time.Millisecond)
	})
}

func TestWatchWithoutKeyspaceNotifications(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ch := watch(t, c, cache.WatchFilter{Keys: []string{"x"}})
	if got := c.Health().KeyspaceNotifications; got != cache.KeyspaceOff {
		t.Errorf("Health().KeyspaceNotifications = %q; want off", got)
	}
	if _, err := srv.Do(t, "SET", "school-erp:x", "1"); err != nil {
		t.Fatal(err)
	}
	quiet(t, ch, 100*time.Millisecond)
}

func TestWatchResyncsOnceWhenRedisReturns(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	const n = 20
	chs := make([]<-chan *cache.Change, n)
	for i := range chs {
		chs[i] = watch(t, c, cache.WatchFilter{Keys: []string{"r"}})
	}
	before := time.Now()
	srv.Kill()
	waitStatus(t, c, cache.StatusDisconnected, 5*time.Second)
	for _, ch := range chs {
		quiet(t, ch, 0) // nothing while Redis is down
	}
	srv.Start()
	ready(t, c)
	for i, ch := range chs {
		x := next(t, ch, 5*time.Second)
		if x.Kind != cache.ChangeResync || x.At.After(before) {
			t.Errorf("watcher %d: change = %+v; want RESYNC since before the kill (%s)", i, x, before)
		}
	}
	ctx := context.Background()
	if _, err := c.Set(ctx, "r", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		if x := next(t, ch, 2*time.Second); x.Kind != cache.ChangeSet {
			t.Errorf("watcher %d: change = %+v; want the SET after the one RESYNC", i, x)
		}
	}
}

func TestWatchOverflowBecomesOneResync(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.WatchQueue = 4
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	slow := watch(t, c, cache.WatchFilter{Keys: []string{"o"}})
	fast := watch(t, c, cache.WatchFilter{Keys: []string{"o"}})
	first := time.Now()
	const writes = 20
	got := 0
	for i := range writes {
		if _, _, err := c.Increment(ctx, "o", 1, 0); err != nil {
			t.Fatal(err)
		}
		// The fast watcher keeps up.
		if x := next(t, fast, 2*time.Second); x.Kind != cache.ChangeIncremented {
			t.Fatalf("fast watcher: change %d = %+v", i, x)
		}
		got++
	}
	if got != writes {
		t.Errorf("fast watcher got %d changes; want %d", got, writes)
	}
	x := next(t, slow, time.Second)
	if x.Kind != cache.ChangeResync || x.At.Before(first) {
		t.Errorf("slow watcher's first change = %+v; want RESYNC since after %s", x, first)
	}
	// Whatever follows the RESYNC is in order and no more than the queue.
	n := 0
	for more := true; more; {
		select {
		case x := <-slow:
			n++
			if x.Kind != cache.ChangeIncremented {
				t.Errorf("after RESYNC: %+v", x)
			}
		default:
			more = false
		}
	}
	if n > 3 {
		t.Errorf("%d changes queued behind the RESYNC; the queue holds 4", n)
	}
}

func TestWatchEndsWithItsContext(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, cache.WatchFilter{Keys: []string{"e"}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("a change after cancel; want the channel closed")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchRefusesBadFilters(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	many := make([]string, cache.MaxWatchKeys+1)
	for i := range many {
		many[i] = strconv.Itoa(i)
	}
	for name, f := range map[string]cache.WatchFilter{
		"empty":        {},
		"too many":     {Keys: many},
		"a bad key":    {Keys: []string{"a b"}},
		"a bad tag":    {Tags: []string{""}},
		"a bad prefix": {Prefix: "\x00"},
	} {
		if _, err := c.Watch(context.Background(), f); !errors.Is(err, cache.ErrInvalidInput) {
			t.Errorf("Watch(%s) = %v; want ErrInvalidInput", name, err)
		}
	}
	off := fastOptions(srv.Addr, &logBuffer{})
	off.DisableChanges = true
	if _, err := newClient(t, off).Watch(context.Background(), cache.WatchFilter{Keys: []string{"k"}}); !errors.Is(err, cache.ErrChangesOff) {
		t.Errorf("Watch with DisableChanges = %v; want ErrChangesOff", err)
	}
}

func TestWatchHealthSendsTransitionsOnly(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.WatchHealth(ctx)
	if h := <-ch; h.Status != cache.StatusConnected {
		t.Fatalf("first health = %s; want connected", h.Status)
	}
	// Probes run every 100ms: several pass without a transition.
	select {
	case h := <-ch:
		t.Fatalf("health sent without a transition: %s %s", h.Status, h.Breaker)
	case <-time.After(400 * time.Millisecond):
	}
	srv.Kill()
	deadline := time.After(5 * time.Second)
	for down := false; !down; {
		select {
		case h := <-ch:
			down = h.Status == cache.StatusDisconnected
		case <-deadline:
			t.Fatal("no disconnected health within 5s")
		}
	}
	srv.Start()
	for up := false; !up; {
		select {
		case h := <-ch:
			up = h.Status == cache.StatusConnected
		case <-time.After(5 * time.Second):
			t.Fatal("no connected health within 5s of the restart")
		}
	}
	cancel()
	for range ch {
	}
}

// An instance that could not announce some of its changes says so on the
// channel, and every watcher of every instance gets a RESYNC.
func TestWatchResyncsWhenAnotherInstanceLostAnnouncements(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	byKey := watch(t, c, cache.WatchFilter{Keys: []string{"x"}})
	byTag := watch(t, c, cache.WatchFilter{Tags: []string{"t"}})
	at := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	msg := `{"k":"","t":"RESYNC","a":` + strconv.FormatInt(at.UnixMicro(), 10) + `}`
	if _, err := srv.Do(t, "PUBLISH", "school-erp:cache-service internal:changes", msg); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan *cache.Change{"by key": byKey, "by tag": byTag} {
		if x := next(t, ch, 2*time.Second); x.Kind != cache.ChangeResync || !x.At.Equal(at) {
			t.Errorf("%s: change = %+v; want RESYNC at %s", name, x, at)
		}
	}
}

// A user the ACL gives no pub/sub: Watch still returns, the watcher gets
// nothing, and one WARN says why.
func TestWatchWithoutPubSubPermissionSaysSo(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"user default off", "user cache-svc on >svc-pw ~school-erp:* +@all -psubscribe resetchannels"}})
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.Username, opts.Password = "cache-svc", "svc-pw"
	c := newClient(t, opts)
	ready(t, c)
	ch := watch(t, c, cache.WatchFilter{Keys: []string{"k"}})
	time.Sleep(500 * time.Millisecond) // several attempts at the fast backoff
	if n := logs.count("change subscription failed"); n != 1 {
		t.Errorf("%d log lines about the failed subscription; want 1\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
	quiet(t, ch, 10*time.Millisecond)
}
