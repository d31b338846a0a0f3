package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/faultproxy"
	"github.com/school-erp/cache-service/internal/redistest"
)

// Timings of the fault tests: short, so each fault plays out in seconds.
const (
	faultCommandTimeout = 300 * time.Millisecond
	// scheduling slack for an HTTP round trip on a loaded 2-core machine
	// under the race detector.
	faultSlack = 250 * time.Millisecond
)

func faultEnv(redisAddr string) map[string]string {
	env := testEnv(redisAddr)
	env["REDIS_COMMAND_TIMEOUT"] = faultCommandTimeout.String()
	env["REDIS_DIAL_TIMEOUT"] = "2s"
	env["REDIS_DEGRADED_LATENCY"] = "50ms"
	return env
}

// load drives the service with clients that each own a few keys, write
// {"k": key, "seq": n} with a rising n and read them back, and checks every
// response as it comes.
type load struct {
	svc      *service
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	problems []string
	requests atomic.Int64
	maxTook  atomic.Int64 // nanoseconds
	// knownDown is set while /health/redis says disconnected; requests that
	// start then must not wait on Redis at all.
	knownDown    atomic.Bool
	maxTookKnown atomic.Int64
	outcomes     sync.Map // string -> *atomic.Int64
}

func startLoad(t *testing.T, svc *service, clients int) *load {
	t.Helper()
	l := &load{svc: svc, stop: make(chan struct{})}
	for i := range clients {
		l.wg.Go(func() { l.client(i) })
	}
	l.wg.Go(l.watchHealth)
	return l
}

// finish stops the load and reports what it saw.
func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, p := range l.problems {
		t.Error(p)
	}
	var counts []string
	l.outcomes.Range(func(k, v any) bool {
		counts = append(counts, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(counts)
	t.Logf("%d requests; slowest %s, slowest while known down %s; %s", l.requests.Load(),
		time.Duration(l.maxTook.Load()), time.Duration(l.maxTookKnown.Load()), strings.Join(counts, " "))
	if l.requests.Load() == 0 {
		t.Error("the load sent no requests")
	}
	if took := time.Duration(l.maxTook.Load()); took > faultCommandTimeout+faultSlack {
		t.Errorf("slowest request took %s; want at most the command timeout %s (+%s slack)", took, faultCommandTimeout, faultSlack)
	}
	if took := time.Duration(l.maxTookKnown.Load()); took >= faultCommandTimeout {
		t.Errorf("a request started while Redis was known down took %s; it must not wait on Redis", took)
	}
}

func (l *load) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

func (l *load) count(outcome string) {
	v, _ := l.outcomes.LoadOrStore(outcome, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (l *load) watchHealth() {
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		resp, err := http.Get(l.svc.url + "/health/redis")
		if err != nil {
			continue
		}
		var hb healthBody
		_ = json.NewDecoder(resp.Body).Decode(&hb)
		resp.Body.Close()
		l.knownDown.Store(hb.Data.Status == "disconnected")
	}
}

func (l *load) client(id int) {
	// attempted[key] is the highest seq ever sent for key, confirmed or
	// not: a write without a reply may still have been applied.
	attempted := map[string]int{}
	seq := 0
	for n := 0; n < 100000; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		key := fmt.Sprintf("load:%d:%d", id, n%4)
		if n%3 == 0 {
			seq++
			attempted[key] = seq
			l.write(key, seq)
		} else {
			l.read(key, attempted[key])
		}
	}
}

// post sends one GraphQL request and checks what every response must be:
// HTTP 200, no GraphQL error, and within the deadline.
func (l *load) post(query string, vars map[string]any) (gqlResponse, bool) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	knownDown := l.knownDown.Load()
	start := time.Now()
	resp, err := http.Post(l.svc.url+"/graphql", "application/json", bytes.NewReader(body))
	took := time.Since(start)
	l.requests.Add(1)
	for cur := l.maxTook.Load(); int64(took) > cur && !l.maxTook.CompareAndSwap(cur, int64(took)); cur = l.maxTook.Load() {
	}
	if knownDown && l.knownDown.Load() {
		for cur := l.maxTookKnown.Load(); int64(took) > cur && !l.maxTookKnown.CompareAndSwap(cur, int64(took)); cur = l.maxTookKnown.Load() {
		}
	}
	if err != nil {
		l.problem("POST /graphql: %v", err)
		return gqlResponse{}, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		l.problem("HTTP %d: %s", resp.StatusCode, raw)
		return gqlResponse{}, false
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Errors) > 0 {
		l.problem("response %s: want data without errors", raw)
		return gqlResponse{}, false
	}
	return r, true
}

func (l *load) write(key string, seq int) {
	r, ok := l.post(setQuery, map[string]any{"k": key, "v": map[string]any{"k": key, "seq": seq}})
	if !ok {
		return
	}
	var p setPayload
	_ = json.Unmarshal(r.Data["cacheSet"], &p)
	switch {
	case p.Stored && p.Failure == nil:
		l.count("stored")
	case !p.Stored && p.Failure != nil && slices.Contains([]string{"REDIS_UNAVAILABLE", "NO_REPLY", "REJECTED"}, *p.Failure):
		l.count("not_stored:" + *p.Failure)
	default:
		l.problem("cacheSet(%s) = %s: want stored, or not stored with a documented failure", key, r.Data["cacheSet"])
	}
}

func (l *load) read(key string, attempted int) {
	r, ok := l.post(getQuery, map[string]any{"k": key})
	if !ok {
		return
	}
	raw := r.Data["cacheGet"]
	for _, w := range r.Extensions.Warnings {
		if !slices.Contains([]string{"REDIS_UNAVAILABLE", "NO_REPLY"}, w.Code) {
			l.problem("cacheGet(%s) warning %q: not a documented code", key, w.Code)
		}
	}
	if string(raw) == "null" {
		if len(r.Extensions.Warnings) > 0 {
			l.count("miss:" + r.Extensions.Warnings[0].Code)
		} else {
			l.count("miss")
		}
		return
	}
	var v struct {
		K   string `json:"k"`
		Seq int    `json:"seq"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.K != key || v.Seq < 1 || v.Seq > attempted {
		l.problem("cacheGet(%s) = %s: a value never written to this key (highest seq sent %d)", key, raw, attempted)
		return
	}
	l.count("hit")
}

// stateLines counts the availability log lines after the first n lines.
func stateLines(t *testing.T, svc *service, after int) []string {
	var out []string
	for _, l := range svc.logs.lines(t)[after:] {
		msg, _ := l["msg"].(string)
		if strings.HasPrefix(msg, "redis ") {
			out = append(out, msg)
		}
	}
	return out
}

// TestFaults is not parallel: it bounds request latencies (within the
// command timeout; at once while Redis is known down), and other tests
// running beside it would add their load to what it measures. Serial
// tests run before the parallel ones, so it has the process to itself.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests take several seconds each")
	}
	tests := []struct {
		name string
		// inject starts the fault and returns a func that ends it.
		inject func(t *testing.T, srv *redistest.Server, proxy *faultproxy.Proxy) (heal func())
		// wantDuring is the status the fault must bring about.
		wantDuring string
		// maxLines bounds the state-change log lines for the episode.
		maxLines int
	}{
		{
			name: "redis killed and restarted",
			inject: func(t *testing.T, srv *redistest.Server, _ *faultproxy.Proxy) func() {
				srv.Kill()
				return srv.Start
			},
			wantDuring: "disconnected", maxLines: 3,
		},
		{
			name: "connections reset mid-command",
			inject: func(t *testing.T, _ *redistest.Server, proxy *faultproxy.Proxy) func() {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						proxy.Reset()
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
					}
				}()
				return func() { close(stop); <-done }
			},
			// Resets every 50ms: Redis answers between them, so whether the
			// breaker trips depends on timing; any status is honest here.
			wantDuring: "", maxLines: 6,
		},
		{
			name: "black hole",
			inject: func(t *testing.T, _ *redistest.Server, proxy *faultproxy.Proxy) func() {
				proxy.BlackHole(true)
				return func() { proxy.BlackHole(false) }
			},
			// Degraded as commands time out, unreachable when the probe
			// times out too, and, on a loaded machine, degraded again for
			// a moment when the first PINGs after the heal are slow.
			wantDuring: "disconnected", maxLines: 4,
		},
		{
			name: "slow, within the command timeout",
			inject: func(t *testing.T, _ *redistest.Server, proxy *faultproxy.Proxy) func() {
				proxy.SetLatency(40 * time.Millisecond) // ~80ms round trip, above 50ms
				return func() { proxy.SetLatency(0) }
			},
			wantDuring: "degraded", maxLines: 2,
		},
		{
			name: "slow, beyond the command timeout",
			inject: func(t *testing.T, _ *redistest.Server, proxy *faultproxy.Proxy) func() {
				proxy.SetLatency(250 * time.Millisecond) // ~500ms round trip, above 300ms
				return func() { proxy.SetLatency(0) }
			},
			// Reachable but too slow: degraded, not a flapping outage.
			wantDuring: "degraded", maxLines: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			proxy := faultproxy.Start(t, srv.Addr)
			svc := startService(t, faultEnv(proxy.Addr))
			svc.waitRedisStatus(t, "connected", 5*time.Second)
			before := len(svc.logs.lines(t))

			l := startLoad(t, svc, 16)
			time.Sleep(300 * time.Millisecond) // healthy traffic first
			heal := tt.inject(t, srv, proxy)
			if tt.wantDuring != "" {
				svc.waitRedisStatus(t, tt.wantDuring, 5*time.Second)
			}
			time.Sleep(time.Second) // the fault under load
			if tt.wantDuring == "degraded" {
				if _, hb := svc.health(t, "/health/redis"); hb.Data.Status != "degraded" {
					t.Errorf("status after 1s of %s = %s; want it to stay degraded", tt.name, hb.Data.Status)
				}
			}
			heal()
			healed := time.Now()
			// Back within the backoff cap plus a probe interval (plus the
			// probe's own deadline, and slack for a loaded machine).
			svc.waitRedisStatus(t, "connected", 100*time.Millisecond+100*time.Millisecond+2300*time.Millisecond+time.Second)
			t.Logf("connected again %s after the fault ended", time.Since(healed).Round(time.Millisecond))
			time.Sleep(300 * time.Millisecond) // healthy traffic again
			l.finish(t)

			// Reads and writes work again.
			set := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": "after", "v": 1}), "cacheSet")
			if !set.Stored {
				t.Errorf("cacheSet after the fault = %+v; want stored", set)
			}
			if got := svc.graphql(t, getQuery, map[string]any{"k": "after"}); string(got.Data["cacheGet"]) != "1" {
				t.Errorf("cacheGet after the fault = %s; want 1", got.Data["cacheGet"])
			}
			if lines := stateLines(t, svc, before); len(lines) > tt.maxLines {
				t.Errorf("%d state-change log lines for one fault under load; want at most %d: %q", len(lines), tt.maxLines, lines)
			} else {
				t.Logf("log: %q", lines)
			}
		})
	}
}

// TestRequestDeadlineBoundsManyFields: mutation fields run one after
// another, each with its own command deadline; the request's deadline must
// still bound the whole request. Not parallel, like TestFaults: it bounds
// a latency.
func TestRequestDeadlineBoundsManyFields(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.Start(t, srv.Addr)
	env := faultEnv(proxy.Addr)
	env["GRAPHQL_REQUEST_TIMEOUT"] = "600ms"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	proxy.SetLatency(250 * time.Millisecond) // every command times out (300ms)
	var q strings.Builder
	q.WriteString("mutation {")
	for i := range 10 {
		fmt.Fprintf(&q, ` s%d: cacheSet(key: "k%d", value: %d) { stored failure }`, i, i, i)
	}
	q.WriteString(" }")
	start := time.Now()
	r := svc.graphql(t, q.String(), nil)
	took := time.Since(start)
	if took > 600*time.Millisecond+faultCommandTimeout+faultSlack {
		t.Errorf("10 slow writes took %s; want the request deadline (600ms) to bound them", took)
	}
	for i := range 10 {
		var p setPayload
		_ = json.Unmarshal(r.Data[fmt.Sprintf("s%d", i)], &p)
		if p.Stored || p.Failure == nil {
			t.Errorf("field s%d = %s; want not stored with a failure", i, r.Data[fmt.Sprintf("s%d", i)])
		}
	}
}

// TestBreakerRefusesOnTheRequestPath: the breaker seen by a client alone,
// never through health: once Redis stops answering (a black hole), writes
// answer REDIS_UNAVAILABLE (nothing sent) instead of each being sent and
// waiting out the command timeout for NO_REPLY; once it answers again,
// writes are stored again. Not parallel, like TestFaults: it bounds a
// latency.
func TestBreakerRefusesOnTheRequestPath(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.Start(t, srv.Addr)
	env := faultEnv(proxy.Addr)
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	write := func(key string) (setPayload, time.Duration) {
		start := time.Now()
		p := field[setPayload](t, svc.graphql(t, setQuery, map[string]any{"k": key, "v": 1}), "cacheSet")
		return p, time.Since(start)
	}
	failure := func(p setPayload) string {
		if p.Failure == nil {
			return ""
		}
		return *p.Failure
	}

	proxy.BlackHole(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, took := write("k")
		if failure(p) == "REDIS_UNAVAILABLE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s into a black hole, cacheSet = stored %v, failure %q after %s; want REDIS_UNAVAILABLE: the breaker refusing Redis", p.Stored, failure(p), took)
		}
	}
	for i := range 10 {
		p, took := write(fmt.Sprint("k", i))
		if p.Stored || failure(p) != "REDIS_UNAVAILABLE" || took >= faultCommandTimeout {
			t.Errorf("cacheSet %d with Redis unreachable = stored %v, failure %q after %s; want REDIS_UNAVAILABLE at once (under the %s command timeout)", i, p.Stored, failure(p), took, faultCommandTimeout)
		}
	}

	proxy.BlackHole(false)
	deadline = time.Now().Add(5 * time.Second)
	for {
		p, _ := write("back")
		if p.Stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the black hole ended, cacheSet = stored %v, failure %q; want stored", p.Stored, failure(p))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := srv.Do(t, "GET", "school-erp:back"); err != nil {
		t.Errorf("Redis GET of a write reported stored = %v; want it there", err)
	}
}
