package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.FieldsFunc(b.buf.String(), func(r rune) bool { return r == '\n' })
}

// count returns how many log lines contain s.
func (b *logBuffer) count(s string) int {
	n := 0
	for _, l := range b.Lines() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// fastOptions are timings short enough for tests to see several state
// changes in a second or two.
func fastOptions(addr string, logs *logBuffer) cache.Options {
	return cache.Options{
		Addr:                addr,
		DialTimeout:         300 * time.Millisecond,
		CommandTimeout:      300 * time.Millisecond,
		ReconnectMinBackoff: 10 * time.Millisecond,
		ReconnectMaxBackoff: 100 * time.Millisecond,
		ProbeInterval:       100 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(logs, nil)),
	}
}

func newClient(t *testing.T, opts cache.Options) *cache.Client {
	t.Helper()
	c, err := cache.New(opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// The helpers below drop the Backend, which most tests do not look at, and
// give Get the found flag its callers test.
func get(ctx context.Context, c *cache.Client, key string) (json.RawMessage, bool, error) {
	v, _, err := c.Get(ctx, key)
	return v, v != nil, err
}

func set(ctx context.Context, c *cache.Client, key string, value json.RawMessage, ttl time.Duration) error {
	_, err := c.Set(ctx, key, value, ttl)
	return err
}

func exists(ctx context.Context, c *cache.Client, key string) (bool, error) {
	ok, _, err := c.Exists(ctx, key)
	return ok, err
}

func del(ctx context.Context, c *cache.Client, key string) (bool, error) {
	ok, _, err := c.Delete(ctx, key)
	return ok, err
}

func ready(t *testing.T, c *cache.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady() = %v; health %+v", err, c.Health())
	}
}

// waitStatus polls Health until it reports want.
func waitStatus(t *testing.T, c *cache.Client, want cache.Status, within time.Duration) cache.Health {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := c.Health()
		if h.Status == want {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("Health().Status = %s (reason %q); want %s within %s", h.Status, h.Reason, want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoundTrip(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()

	values := []struct {
		name  string
		value string
	}{
		{"object", `{"name":"Ada","grades":[1,2.5,-3e2],"nested":{"ok":true}}`},
		{"array", `[1,"two",null]`},
		{"string", `"hello, world"`},
		{"unicode", `"Grüße, 世界"`},
		{"number", `12345678901234567890`},
		{"bool", `false`},
		{"null", `null`},
	}
	for _, v := range values {
		t.Run(v.name, func(t *testing.T) {
			key := "roundtrip:" + v.name
			if err := set(ctx, c, key, json.RawMessage(v.value), 0); err != nil {
				t.Fatalf("Set(%q) error = %v", key, err)
			}
			got, ok, err := get(ctx, c, key)
			if err != nil || !ok || string(got) != v.value {
				t.Fatalf("Get(%q) = %s, %v, %v; want %s, true, nil", key, got, ok, err, v.value)
			}
			if ok, err := exists(ctx, c, key); err != nil || !ok {
				t.Errorf("Exists(%q) = %v, %v; want true, nil", key, ok, err)
			}
			if deleted, err := del(ctx, c, key); err != nil || !deleted {
				t.Errorf("Delete(%q) = %v, %v; want true, nil", key, deleted, err)
			}
			if deleted, err := del(ctx, c, key); err != nil || deleted {
				t.Errorf("second Delete(%q) = %v, %v; want false, nil", key, deleted, err)
			}
			if ok, err := exists(ctx, c, key); err != nil || ok {
				t.Errorf("Exists(%q) after delete = %v, %v; want false, nil", key, ok, err)
			}
			if got, ok, err := get(ctx, c, key); err != nil || ok || got != nil {
				t.Errorf("Get(%q) after delete = %s, %v, %v; want nil, false, nil", key, got, ok, err)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()

	if err := set(ctx, c, "ttl", json.RawMessage(`"soon gone"`), time.Second); err != nil {
		t.Fatalf("Set() error = %v", err)
	}
	pttl, err := srv.Do(t, "PTTL", "school-erp:ttl")
	if err != nil || pttl == "-1" || pttl == "-2" || len(pttl) > 4 {
		t.Fatalf("PTTL school-erp:ttl = %s, %v; want a positive TTL of at most 1000 ms", pttl, err)
	}
	if got, ok, err := get(ctx, c, "ttl"); err != nil || !ok || string(got) != `"soon gone"` {
		t.Fatalf("Get() within TTL = %s, %v, %v; want the value", got, ok, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got, ok, err := get(ctx, c, "ttl")
		if err != nil {
			t.Fatalf("Get() error = %v", err)
		}
		if !ok {
			if got != nil {
				t.Errorf("Get() after expiry = %s; want nil", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("value still present 3s after a 1s TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKeyPrefixAlwaysApplied(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	tests := []struct {
		name   string
		opts   func(*cache.Options)
		rawKey string
	}{
		{"default prefix", func(*cache.Options) {}, "school-erp:student:1"},
		{"custom prefix", func(o *cache.Options) { o.KeyPrefix = "tenant-a:" }, "tenant-a:student:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions(srv.Addr, &logBuffer{})
			tt.opts(&opts)
			c := newClient(t, opts)
			ready(t, c)
			if err := set(ctx, c, "student:1", json.RawMessage(`{"id":1}`), 0); err != nil {
				t.Fatal(err)
			}
			if got, err := srv.Do(t, "GET", tt.rawKey); err != nil || got != `{"id":1}` {
				t.Errorf("raw GET %s = %q, %v; want the stored JSON", tt.rawKey, got, err)
			}
			// Passing the prefixed name must not reach the raw key.
			if _, ok, err := get(ctx, c, tt.rawKey); err != nil || ok {
				t.Errorf("Get(%q) = found %v, %v; want a miss (prefix applied twice)", tt.rawKey, ok, err)
			}
		})
	}
}

func TestNonJSONValueComesBackAsString(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	if _, err := srv.Do(t, "SET", "school-erp:legacy", "plain text, not JSON"); err != nil {
		t.Fatal(err)
	}
	got, ok, err := get(context.Background(), c, "legacy")
	if err != nil || !ok || string(got) != `"plain text, not JSON"` {
		t.Errorf("Get(legacy) = %s, %v, %v; want it as a JSON string", got, ok, err)
	}
	// JSON syntax around bytes that are not UTF-8 is not JSON either (a
	// response carrying them would not be): a string, its bad bytes
	// replaced.
	if _, err := srv.Do(t, "SET", "school-erp:latin1", "\"caf\xe9\""); err != nil {
		t.Fatal(err)
	}
	got, ok, err = get(context.Background(), c, "latin1")
	if err != nil || !ok || string(got) != `"\"caf\ufffd\""` {
		t.Errorf("Get(latin1) = %s, %v, %v; want it as a JSON string of valid UTF-8", got, ok, err)
	}
}

func TestInvalidInputStoresNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.MaxValueBytes = 64
	opts.MaxTTL = time.Hour
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()

	tests := []struct {
		name  string
		key   string
		value string
		ttl   time.Duration
		want  string
	}{
		{"empty key", "", `1`, 0, "empty"},
		{"key too long", strings.Repeat("k", cache.MaxKeyBytes+1), `1`, 0, "limit is 512"},
		{"invalid utf-8 key", "bad\xff", `1`, 0, "UTF-8"},
		{"not json", "k", `{"unclosed":`, 0, "not valid JSON"},
		{"json that is not utf-8", "k", "\"caf\xe9\"", 0, "not valid JSON"},
		{"empty value", "k", ``, 0, "not valid JSON"},
		{"value too large", "k", `"` + strings.Repeat("x", 64) + `"`, 0, "limit is 64"},
		{"negative ttl", "k", `1`, -time.Second, "ttl"},
		{"ttl above max", "k", `1`, 2 * time.Hour, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := set(ctx, c, tt.key, json.RawMessage(tt.value), tt.ttl)
			if !errors.Is(err, cache.ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Set() error = %v; want ErrInvalidInput mentioning %q", err, tt.want)
			}
		})
	}
	for name, op := range map[string]func(string) error{
		"Get":    func(k string) error { _, _, err := get(ctx, c, k); return err },
		"Exists": func(k string) error { _, err := exists(ctx, c, k); return err },
		"Delete": func(k string) error { _, err := del(ctx, c, k); return err },
	} {
		if err := op(""); !errors.Is(err, cache.ErrInvalidInput) {
			t.Errorf("%s(\"\") error = %v; want ErrInvalidInput", name, err)
		}
	}
	if n, err := srv.Do(t, "DBSIZE"); err != nil || n != "0" {
		t.Errorf("DBSIZE = %s, %v; want 0: rejected input must store nothing", n, err)
	}
}

func TestTypedValues(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	ctx := context.Background()
	type student struct {
		ID     int      `json:"id"`
		Name   string   `json:"name"`
		Grades []string `json:"grades"`
	}
	want := student{ID: 7, Name: "Grace", Grades: []string{"A", "B+"}}
	if _, err := c.SetValue(ctx, "student:7", want, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, ok, err := cache.GetValue[student](ctx, c, "student:7")
	if err != nil || !ok || got.Name != want.Name || len(got.Grades) != 2 {
		t.Errorf("GetValue() = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, err := cache.GetValue[student](ctx, c, "student:8"); err != nil || ok {
		t.Errorf("GetValue(missing) = found %v, %v; want a miss", ok, err)
	}
	if _, err := c.SetValue(ctx, "bad", make(chan int), 0); !errors.Is(err, cache.ErrInvalidInput) {
		t.Errorf("SetValue(chan) error = %v; want ErrInvalidInput", err)
	}
}

func TestHealthReportsServer(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "s3cret-pw"})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Password = "s3cret-pw"
	c := newClient(t, opts)
	ready(t, c)
	h := waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if h.Latency <= 0 || h.CheckedAt.IsZero() {
		t.Errorf("Health() latency %v, checkedAt %v; want a measured probe", h.Latency, h.CheckedAt)
	}
	if h.Server == nil {
		t.Fatal("Health().Server = nil; want INFO fields")
	}
	if !strings.HasPrefix(h.Server.Version, "redis ") || h.Server.UsedMemory <= 0 || h.Server.UptimeSeconds < 0 {
		t.Errorf("Health().Server = %+v; want version, memory and uptime", *h.Server)
	}
	if !strings.HasSuffix(h.Server.MemoryUsage(), "B") {
		t.Errorf("MemoryUsage() = %q; want a size such as 1.2MB", h.Server.MemoryUsage())
	}
}

func TestHealthWithoutINFOPermission(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{
		"user default off",
		"user app on >app-pw ~school-erp:* +@all -info",
	}})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.Username, opts.Password = "app", "app-pw"
	c := newClient(t, opts)
	ready(t, c)
	h := waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if h.Server != nil {
		t.Errorf("Health().Server = %+v; want nil when INFO is forbidden", *h.Server)
	}
	if err := set(context.Background(), c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Errorf("Set() as ACL user error = %v", err)
	}
}

func TestStartsWithoutRedisAndConnectsWhenItAppears(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.CommandTimeout = 5 * time.Second // a request that waited on Redis would show
	c := newClient(t, opts)
	ctx := context.Background()

	waitStatus(t, c, cache.StatusDisconnected, time.Second)
	start := time.Now()
	_, ok, err := get(ctx, c, "k")
	if ok || !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Get() while absent = found %v, %v; want ErrUnavailable", ok, err)
	}
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Set() while absent error = %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("two operations while absent took %s; they must not wait on Redis", d)
	}
	// The status starts as disconnected, before the first attempt: on a
	// loaded machine that attempt may not have failed yet. Redis appears
	// only once the client has found it absent and said so.
	for deadline := time.Now().Add(2 * time.Second); logs.count("redis unreachable") == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	srv.Start()
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if err := set(ctx, c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Errorf("Set() after Redis appeared error = %v", err)
	}
	if n := logs.count("redis unreachable"); n != 1 {
		t.Errorf("%d 'redis unreachable' lines; want 1\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
	if n := logs.count("redis connected"); n != 1 {
		t.Errorf("%d 'redis connected' lines; want 1", n)
	}
}

func TestKilledRedisRecoversAndLogsOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logs := &logBuffer{}
	c := newClient(t, fastOptions(srv.Addr, logs))
	ready(t, c)
	ctx := context.Background()
	if err := set(ctx, c, "before", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	// A burst of requests during the outage: every one answers within the
	// command deadline with an outage error, never a hang or a value.
	var wg sync.WaitGroup
	errs := make(chan error, 16*50)
	for range 16 {
		wg.Go(func() {
			for range 50 {
				start := time.Now()
				_, ok, err := get(ctx, c, "before")
				if ok || !(errors.Is(err, cache.ErrUnavailable) || errors.Is(err, cache.ErrNoReply)) {
					errs <- errors.New("get during outage: unexpected result")
				}
				if d := time.Since(start); d > 300*time.Millisecond+100*time.Millisecond {
					errs <- errors.New("get during outage took " + d.String())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitStatus(t, c, cache.StatusDisconnected, 2*time.Second)

	srv.Start()
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if err := set(ctx, c, "after", json.RawMessage(`2`), 0); err != nil {
		t.Errorf("Set() after restart error = %v", err)
	}
	if got, ok, err := get(ctx, c, "after"); err != nil || !ok || string(got) != "2" {
		t.Errorf("Get() after restart = %s, %v, %v; want 2", got, ok, err)
	}
	lines := logs.Lines()
	if n := logs.count("redis unreachable"); n != 1 {
		t.Errorf("%d 'redis unreachable' lines; want 1", n)
	}
	// Start-up connect, outage, recovery: a handful of lines for 800 requests.
	if len(lines) > 5 {
		t.Errorf("%d log lines for one outage; want at most 5:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// TestMissingPasswordSaysWhatToSet: a server that wants a password, and
// none configured. Redis's reply (NOAUTH HELLO must be called with the
// client already authenticated...) speaks of commands; health and the log
// say which variables to set.
func TestMissingPasswordSaysWhatToSet(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "right-password"})
	logs := &logBuffer{}
	c := newClient(t, fastOptions(srv.Addr, logs))
	const want = "authentication failed: the server requires a password and none was sent (set REDIS_PASSWORD, with REDIS_USERNAME for an ACL user)"
	h := waitStatus(t, c, cache.StatusDisconnected, time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(h.Reason, want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		h = c.Health()
	}
	if !strings.Contains(h.Reason, want) {
		t.Errorf("Health().Reason = %q; want it to contain %q", h.Reason, want)
	}
	if n := logs.count(want); n != 1 {
		t.Errorf("%d log lines give the hint; want 1:\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
}

func TestWrongPasswordIsDisconnectedWithCause(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "right-password"})
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.Password = "wrong-password"
	c := newClient(t, opts)
	h := waitStatus(t, c, cache.StatusDisconnected, time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(h.Reason, "authentication failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		h = c.Health()
	}
	if !strings.Contains(h.Reason, "authentication failed") || !strings.Contains(h.Reason, "check REDIS_PASSWORD and REDIS_USERNAME") {
		t.Errorf("Health().Reason = %q; want an authentication failure pointing at REDIS_PASSWORD and REDIS_USERNAME", h.Reason)
	}
	time.Sleep(300 * time.Millisecond) // several reconnect attempts
	if n := logs.count("authentication failed"); n != 1 {
		t.Errorf("%d log lines name the authentication failure; want exactly 1:\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
	for _, l := range logs.Lines() {
		if strings.Contains(l, "wrong-password") || strings.Contains(l, "right-password") {
			t.Errorf("log line reveals a password: %s", l)
		}
	}
	if _, _, err := get(context.Background(), c, "k"); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Get() with a wrong password error = %v; want ErrUnavailable", err)
	}
}

func TestBlackHoledRedisNeverBlocksStart(t *testing.T) {
	addr := redistest.BlackHole(t)
	opts := fastOptions(addr, &logBuffer{})
	opts.DialTimeout = 10 * time.Second
	start := time.Now()
	c := newClient(t, opts)
	_, _, err := get(context.Background(), c, "k")
	if d := time.Since(start); d > time.Second {
		t.Errorf("New() and Get() took %s against a hung server; want no wait", d)
	}
	if !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Get() error = %v; want ErrUnavailable", err)
	}
}

func TestSlowProbeIsDegraded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.DegradedLatency = time.Nanosecond // every real PING is "slow"
	c := newClient(t, opts)
	h := waitStatus(t, c, cache.StatusDegraded, 5*time.Second)
	if !strings.Contains(h.Reason, "slow") {
		t.Errorf("Health().Reason = %q; want it to say Redis is slow", h.Reason)
	}
	// Degraded still serves.
	if err := set(context.Background(), c, "k", json.RawMessage(`1`), 0); err != nil {
		t.Errorf("Set() while degraded error = %v", err)
	}
	time.Sleep(350 * time.Millisecond) // several probes, all slow
	if n := logs.count("redis degraded"); n != 1 {
		t.Errorf("%d 'redis degraded' lines over several probes; want 1", n)
	}
}

func TestRejectedCommandIsNotAnOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logs := &logBuffer{}
	c := newClient(t, fastOptions(srv.Addr, logs))
	ready(t, c)
	if _, err := srv.Do(t, "HSET", "school-erp:hash", "f", "v"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_, _, err := get(context.Background(), c, "hash")
		if !errors.Is(err, cache.ErrRejected) || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("Get(hash key) error = %v; want ErrRejected with WRONGTYPE", err)
		}
	}
	if h := c.Health(); h.Status == cache.StatusDisconnected {
		t.Errorf("Health().Status = %s after rejected commands; want Redis still up", h.Status)
	}
	if n := logs.count("redis rejected a command"); n != 1 {
		t.Errorf("%d 'rejected' lines for 20 identical rejections; want 1", n)
	}
}

func TestCloseMakesOperationsUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, fastOptions(srv.Addr, &logBuffer{}))
	ready(t, c)
	c.Close()
	c.Close() // idempotent
	if _, _, err := get(context.Background(), c, "k"); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Get() after Close error = %v; want ErrUnavailable", err)
	}
}

func TestOutageReminderAtMostOncePerInterval(t *testing.T) {
	srv := redistest.New(t, redistest.Options{}) // never started
	logs := &logBuffer{}
	opts := fastOptions(srv.Addr, logs)
	opts.ReconnectMaxBackoff = 20 * time.Millisecond // ~50 attempts a second
	opts.OutageReminder = 300 * time.Millisecond
	newClient(t, opts)
	time.Sleep(time.Second)
	first, reminders := logs.count("redis unreachable"), logs.count("redis still unreachable")
	if first != 1 {
		t.Errorf("%d first-outage lines; want 1", first)
	}
	// One second at one reminder per 300 ms: 3, give or take scheduling.
	if reminders < 2 || reminders > 4 {
		t.Errorf("%d reminders in 1s with a 300ms interval and ~50 attempts; want 2 to 4", reminders)
	}
}

func TestRecoveryAfterOutageIsConnectedNotDegraded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logs := &logBuffer{}
	c := newClient(t, fastOptions(srv.Addr, logs))
	ready(t, c)
	srv.Kill()
	for range 5 { // enough failures to close the gate
		_, _, _ = get(context.Background(), c, "k")
	}
	waitStatus(t, c, cache.StatusDisconnected, 2*time.Second)
	srv.Start()
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	if n := logs.count("redis degraded"); n != 0 {
		t.Errorf("%d 'degraded' lines on recovery; failures that caused the outage must not count again\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
}

// A value larger than MaxValueBytes, written by another program, is not
// returned: ErrValueTooLarge for that key, the others still read.
func TestValueTooLargeIsNotReturned(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.MaxValueBytes = 100
	c := newClient(t, opts)
	ready(t, c)
	ctx := context.Background()
	if _, err := srv.Do(t, "SET", "school-erp:big", strings.Repeat("x", 101)); err != nil {
		t.Fatal(err)
	}
	if err := set(ctx, c, "small", json.RawMessage(`1`), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, err := get(ctx, c, "big"); !errors.Is(err, cache.ErrValueTooLarge) || v != nil {
		t.Errorf("Get(big) = %.10s, %v; want ErrValueTooLarge", v, err)
	}
	rs, err := c.GetMany(ctx, []string{"big", "small"})
	if err != nil || !errors.Is(rs[0].Err, cache.ErrValueTooLarge) || string(rs[1].Value) != "1" {
		t.Errorf("GetMany(big, small) = %+v, %v; want ErrValueTooLarge at 0 and the value at 1", rs, err)
	}
}
