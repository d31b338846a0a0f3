package main

// "A dropped connection is not an outage": clients doing get, set and
// delete through the built binary while Redis closes its connections must
// see a linearizable register per key, answered by Redis, never by the
// memory tier and never as REDIS_UNAVAILABLE. The histories are checked
// with porcupine (internal/linearize).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/valkey-io/valkey-go"

	"github.com/school-erp/cache-service/internal/linearize"
	"github.com/school-erp/cache-service/internal/redistest"
)

const (
	linClients = 8
	linKeys    = 3
	// linLoad is how long the clients run in the fault variants. Each
	// client starts at most one call per linPace, so the calls spread over
	// the whole load (and its faults) rather than ending early on a fast
	// machine, and makes at most load/linPace calls, which bounds the
	// history porcupine has to check.
	linLoad = 6 * time.Second
	linPace = 5 * time.Millisecond
	// linKillEvery is how often Redis closes every client connection.
	linKillEvery = 400 * time.Millisecond
	// linCheckTimeout bounds porcupine; past it the verdict is Unknown,
	// which fails the test as inconclusive rather than passing it.
	linCheckTimeout = 10 * time.Second
	// linVisualizeTimeout bounds the second, slower search that keeps
	// the partial linearizations for the visualization of a failure.
	linVisualizeTimeout = 5 * time.Second
	// linAfterSwitch is how long the load goes on against the new master
	// once the Sentinels agree on it.
	linAfterSwitch = 4 * time.Second
	// linHTTPTimeout only bounds a hung request; the service itself
	// answers within GRAPHQL_REQUEST_TIMEOUT (1s by default).
	linHTTPTimeout = 5 * time.Second

	linSetQuery    = `mutation($k: String!, $v: JSON!) { cacheSet(key: $k, value: $v) { stored backend failure } }`
	linDeleteQuery = `mutation($k: String!) { cacheDelete(key: $k) { deleted backend failure } }`
	linGetQuery    = `query($k: String!) { cacheGet(key: $k) }`
)

func TestLinearizableWhileConnectionsDrop(t *testing.T) {
	if testing.Short() {
		t.Skip("linearizability tests run load for seconds")
	}
	// The harness's own check: with nothing injected the service must
	// pass, or a failure below says nothing about dropped connections.
	t.Run("no faults", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		p := startLinService(t, linStandaloneEnv(srv, nil))
		r := newLinRun(t, p)
		r.runFor(t, 2500*time.Millisecond)
		r.verify(t)
	})
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		// What a developer gets: APP_ENV unset, so CACHE_FALLBACK=memory
		// and client-side caching on.
		{"memory fallback (development default)", nil},
		{"no fallback", map[string]string{"CACHE_FALLBACK": "none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			p := startLinService(t, linStandaloneEnv(srv, tt.env))
			r := newLinRun(t, p)
			stopKiller := r.startKiller(srv.Client(t, 0), killAllNormal)
			r.runFor(t, linLoad)
			stopKiller()
			r.verify(t)
		})
	}
}

func TestLinearizableAcrossSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("linearizability tests run load for seconds")
	}
	master, replica, sentinels, addrs := startSentinelTopology(t)

	p := startLinService(t, map[string]string{
		"REDIS_SENTINEL_ADDRS":  strings.Join(addrs, ","),
		"REDIS_SENTINEL_MASTER": "mymaster",
		"CACHE_FALLBACK":        "none",
		"RATE_LIMIT_ANONYMOUS":  "0", // as in linStandaloneEnv
	})
	r := newLinRun(t, p)
	// One long-lived client per data node, for the killers and for ROLE:
	// their own connections survive the kills (SKIPME), where a fresh
	// helper connection could be closed while it is being set up.
	masterC, replicaC := master.Client(t, 0), replica.Client(t, 0)
	// Both data nodes drop their clients' connections, but not the
	// Sentinels': killing those tests Sentinel, not the service.
	stopKillers := []func(){
		r.startKiller(masterC, killNormalSparingSentinels),
		r.startKiller(replicaC, killNormalSparingSentinels),
	}

	stop := make(chan struct{})
	loadDone := make(chan struct{})
	// Bounded by the waits below: 2s, then at most 10s + 10s.
	go func() {
		defer close(loadDone)
		r.runClients(stop, time.Now().Add(25*time.Second), int(25*time.Second/linPace))
	}()
	// Stopped before the binary and servers are, also when the test
	// stops early.
	stopAll := sync.OnceFunc(func() {
		close(stop)
		<-loadDone
		for _, stopKiller := range stopKillers {
			stopKiller()
		}
	})
	t.Cleanup(stopAll)

	time.Sleep(2 * time.Second)
	failoverAt := r.hist.Now()
	linEventually(t, 10*time.Second, "SENTINEL FAILOVER accepted", func() bool {
		_, err := sentinels[0].Do(t, "SENTINEL", "FAILOVER", "mymaster")
		if err != nil {
			time.Sleep(200 * time.Millisecond) // NOGOODSLAVE until the replica is known fresh
		}
		return err == nil
	})
	r.annotate("failover", failoverAt, r.hist.Now(), "SENTINEL FAILOVER mymaster", "")

	// The switch, step by step, each the first time it is seen: the
	// replica promoted, every Sentinel naming it, the service's health
	// naming it (the probe runs every REDIS_HEALTH_INTERVAL, 5s by
	// default, so this lags), and the old master demoted (Sentinel waits
	// about 8s before it reconfigures a master that is still up). The
	// load goes on for linAfterSwitch once the Sentinels agree.
	var promoted, sentinelsAgree, serviceFollowed, demoted int64
	seen := func(at *int64, what string, cond func() bool) {
		if *at == 0 && cond() {
			*at = r.hist.Now()
			r.annotate("failover", *at, *at, what, "")
		}
	}
	isMaster := func(c valkey.Client, want bool) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		role, err := c.Do(ctx, c.B().Role().Build()).ToArray()
		if err != nil || len(role) == 0 {
			return false
		}
		name, err := role[0].ToString()
		return err == nil && (name == "master") == want
	}
	watch := func() {
		seen(&promoted, "replica reports role master", func() bool { return isMaster(replicaC, true) })
		seen(&sentinelsAgree, "every sentinel names the replica master", func() bool {
			for _, s := range sentinels {
				a, err := s.Do(t, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
				if err != nil || !strings.Contains(a, strconv.Itoa(replica.Port)) {
					return false
				}
			}
			return true
		})
		seen(&serviceFollowed, "service health names the new master", func() bool {
			h, ok := linRedisHealth(p.url)
			return ok && h.Status == "connected" && h.Addr == replica.Addr
		})
		seen(&demoted, "old master reports role slave", func() bool { return isMaster(masterC, false) })
	}
	linWait(10*time.Second, func() bool {
		watch()
		return sentinelsAgree != 0 && r.hist.Now()-sentinelsAgree > int64(linAfterSwitch)
	})
	stopAll()
	if sentinelsAgree == 0 {
		t.Errorf("the Sentinels did not all name %s as master within 10s of SENTINEL FAILOVER", replica.Addr)
	}
	// Without load, give the service's health a probe interval or two to
	// catch up.
	linWait(10*time.Second, func() bool { watch(); return serviceFollowed != 0 })
	if serviceFollowed == 0 {
		t.Errorf("service health never named the new master %s", replica.Addr)
	}

	// On the history's clock, to compare with the calls a failure names.
	at := func(ns int64) string {
		if ns == 0 {
			return "not seen"
		}
		return fmt.Sprintf("%.3fs", float64(ns)/1e9)
	}
	t.Logf("SENTINEL FAILOVER sent at %s; replica promoted %s, sentinels agree %s, service health follows %s, old master demoted %s",
		at(failoverAt), at(promoted), at(sentinelsAgree), at(serviceFollowed), at(demoted))
	if promoted != 0 && sentinelsAgree != 0 {
		// The old master still takes writes after the replica stopped
		// following it; whatever it confirms then is lost when it is
		// demoted, unless the service has stopped writing there.
		t.Logf("sets confirmed between the promotion and the sentinels agreeing: %d (by either master; the old master's are lost)",
			r.confirmedWritesBetween(promoted, sentinelsAgree))
		// Redis's failover is asynchronous: after the replica is promoted,
		// the old master stays a master and confirms writes until the
		// Sentinels have agreed and told their clients (+switch-master).
		// No client can keep those writes (only WAIT, or the master's
		// min-replicas-to-write, can: see README). So calls in that window
		// are checked as unanswered; everything outside it must be
		// linearizable, and nothing in it may be answered from memory or
		// as REDIS_UNAVAILABLE.
		r.asyncFrom, r.asyncTo = promoted, sentinelsAgree
	}
	r.verify(t)
}

// linStandaloneEnv points the binary at srv and changes nothing else a
// developer would not, apart from extra.
func linStandaloneEnv(srv *redistest.Server, extra map[string]string) map[string]string {
	host, port, _ := strings.Cut(srv.Addr, ":")
	env := map[string]string{
		"REDIS_HOST": host,
		"REDIS_PORT": port,
		// The clients send about 1600 requests a second from one
		// address, anonymous (development without tokens), above the
		// default anonymous limit of 1000 a second (bursts of 2000) per
		// address: without this, hundreds of calls get HTTP 429
		// RATE_LIMITED. The limiter is not what is tested.
		"RATE_LIMIT_ANONYMOUS": "0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startLinService runs the binary and waits until it writes to Redis, so
// that no answer during the run comes from before Redis was reached.
func startLinService(t *testing.T, env map[string]string) *process {
	t.Helper()
	p := startBinary(t, env)
	p.set(t, "lin:ready", true)
	return p
}

// linRun is one run: the clients, the fault injectors, and what they saw.
type linRun struct {
	// asyncFrom and asyncTo, when set, bound Redis's own window of
	// asynchronous failover (see TestLinearizableAcrossSentinelFailover):
	// calls in it are checked as if unanswered.
	asyncFrom, asyncTo int64

	p      *process
	http   *http.Client
	hist   *linearize.History
	values atomic.Int64 // the last value written; each write gets a new one

	ops           atomic.Int64 // calls sent
	memory        atomic.Int64 // answers from the memory tier
	unavailable   atomic.Int64 // REDIS_UNAVAILABLE, failures and warnings
	noReplyWrites atomic.Int64 // sets and deletes with failure NO_REPLY
	noReplyReads  atomic.Int64 // gets with a NO_REPLY warning
	rejected      atomic.Int64 // REJECTED failures and REDIS_REJECTED errors
	unexpected    atomic.Int64 // answers the API does not document
	faulty        bool         // a killer was started
	kills         atomic.Int64 // kill commands Redis ran
	killed        atomic.Int64 // connections they closed
	killErrors    atomic.Int64

	mu          sync.Mutex
	problems    []string
	annotations []porcupine.Annotation
}

func newLinRun(t *testing.T, p *process) *linRun {
	tr := &http.Transport{MaxIdleConnsPerHost: linClients, MaxConnsPerHost: linClients}
	t.Cleanup(tr.CloseIdleConnections)
	return &linRun{p: p, http: &http.Client{Transport: tr, Timeout: linHTTPTimeout}, hist: linearize.New()}
}

// runFor runs the clients for d.
func (r *linRun) runFor(t *testing.T, d time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	timer := time.AfterFunc(d, func() { close(stop) })
	defer timer.Stop()
	r.runClients(stop, time.Now().Add(d+linHTTPTimeout), int(d/linPace))
}

// runClients runs linClients clients until stop is closed, each for at most
// maxOps calls and never past hardStop.
func (r *linRun) runClients(stop <-chan struct{}, hardStop time.Time, maxOps int) {
	var wg sync.WaitGroup
	for id := range linClients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
			start := time.Now()
			for n := 0; n < maxOps && time.Now().Before(hardStop); n++ {
				wait := time.NewTimer(time.Until(start.Add(time.Duration(n) * linPace)))
				select {
				case <-stop:
					wait.Stop()
					return
				case <-wait.C:
				}
				key := "lin:" + strconv.Itoa(rng.IntN(linKeys))
				switch x := rng.IntN(100); {
				case x < 50:
					r.get(id, key)
				case x < 85:
					r.set(id, key)
				default:
					r.del(id, key)
				}
			}
		})
	}
	wg.Wait()
}

// post sends one GraphQL request. An error means there is no answer to
// interpret: the request may or may not have reached the cache.
func (r *linRun) post(query string, vars map[string]any) (gqlResponse, string, error) {
	r.ops.Add(1)
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := r.http.Post(r.p.url+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		return gqlResponse{}, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return gqlResponse{}, string(raw), err
	}
	if resp.StatusCode != http.StatusOK {
		return gqlResponse{}, string(raw), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var g gqlResponse
	if err := json.Unmarshal(raw, &g); err != nil {
		return gqlResponse{}, string(raw), err
	}
	return g, string(raw), nil
}

func (r *linRun) problem(format string, args ...any) {
	r.unexpected.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 10 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// writePayload is cacheSet's and cacheDelete's payload.
type writePayload struct {
	Stored  bool    `json:"stored"`
	Deleted bool    `json:"deleted"`
	Backend *string `json:"backend"`
	Failure *string `json:"failure"`
}

// write sends a set or delete and records it by its outcome: confirmed
// (took effect within the call), NO_REPLY or no answer at all (may take
// effect at any later time), REDIS_UNAVAILABLE or REJECTED (did not take
// effect: left out of the history).
func (r *linRun) write(id int, in linearize.Input, query, field string, vars map[string]any) {
	call := r.hist.Now()
	g, raw, err := r.post(query, vars)
	ret := r.hist.Now()
	var p writePayload
	if err == nil && len(g.Errors) == 0 {
		err = json.Unmarshal(g.Data[field], &p)
	}
	if err != nil || len(g.Errors) > 0 {
		r.problem("%s(%s): %v %s", field, in.Key, err, raw)
		r.hist.Unknown(id, in, call, raw)
		return
	}
	if p.Backend != nil && *p.Backend == "MEMORY" {
		r.memory.Add(1)
	}
	switch {
	case p.Failure == nil && p.Backend != nil && (p.Stored || in.Kind == linearize.Delete):
		r.hist.Completed(id, in, call, ret, linearize.Output{Deleted: p.Deleted}, raw)
	case p.Failure == nil:
		r.problem("%s(%s) = %s: neither confirmed nor a documented failure", field, in.Key, raw)
		r.hist.Unknown(id, in, call, raw)
	case *p.Failure == "NO_REPLY":
		r.noReplyWrites.Add(1)
		r.hist.Unknown(id, in, call, raw)
	case *p.Failure == "REDIS_UNAVAILABLE":
		r.unavailable.Add(1)
	case *p.Failure == "REJECTED":
		r.rejected.Add(1)
	default:
		r.problem("%s(%s) = %s: undocumented failure", field, in.Key, raw)
		r.hist.Unknown(id, in, call, raw)
	}
}

func (r *linRun) set(id int, key string) {
	v := r.values.Add(1)
	in := linearize.Input{Kind: linearize.Set, Key: key, Value: v}
	r.write(id, in, linSetQuery, "cacheSet", map[string]any{"k": key, "v": v})
}

func (r *linRun) del(id int, key string) {
	in := linearize.Input{Kind: linearize.Delete, Key: key}
	r.write(id, in, linDeleteQuery, "cacheDelete", map[string]any{"k": key})
}

// get sends a read and records it unless its answer says nothing about
// Redis (a REDIS_UNAVAILABLE or NO_REPLY warning, or an error).
func (r *linRun) get(id int, key string) {
	in := linearize.Input{Kind: linearize.Get, Key: key}
	call := r.hist.Now()
	g, raw, err := r.post(linGetQuery, map[string]any{"k": key})
	ret := r.hist.Now()
	if err != nil {
		r.problem("cacheGet(%s): %v %s", key, err, raw)
		return
	}
	if len(g.Errors) > 0 {
		if g.code() == "REDIS_REJECTED" {
			r.rejected.Add(1)
		} else {
			r.problem("cacheGet(%s) = %s: undocumented error", key, raw)
		}
		return
	}
	var codes []string
	for _, w := range g.Extensions.Warnings {
		codes = append(codes, w.Code)
	}
	if slices.Contains(codes, "SERVED_FROM_MEMORY") {
		r.memory.Add(1)
	}
	switch {
	case slices.Contains(codes, "REDIS_UNAVAILABLE"):
		r.unavailable.Add(1)
		return
	case slices.Contains(codes, "NO_REPLY"):
		r.noReplyReads.Add(1)
		return
	case slices.ContainsFunc(codes, func(c string) bool { return c != "SERVED_FROM_MEMORY" }):
		r.problem("cacheGet(%s) = %s: undocumented warning", key, raw)
		return
	}
	v := linearize.Absent
	if got := g.Data["cacheGet"]; string(got) != "null" {
		if err := json.Unmarshal(got, &v); err != nil || v <= 0 {
			// Recorded all the same: a value never written makes the
			// history illegal.
			r.problem("cacheGet(%s) = %s: not a value this test writes", key, got)
			v = -1
		}
	}
	r.hist.Completed(id, in, call, ret, linearize.Output{Value: v}, raw)
}

// killer closes client connections on one Redis server and returns how
// many it closed.
type killer func(ctx context.Context, c valkey.Client) (int64, error)

// killAllNormal is the plain fault: every normal client's connection goes.
// The killer's own survives (CLIENT KILL's SKIPME defaults to yes), and
// valkey-go would dial a new one if it did not.
func killAllNormal(ctx context.Context, c valkey.Client) (int64, error) {
	return c.Do(ctx, c.B().Arbitrary("CLIENT", "KILL", "TYPE", "normal").Build()).AsInt64()
}

// killNormalSparingSentinels closes every normal client's connection but
// the Sentinels' (named sentinel-<id>-cmd and sentinel-<id>-pubsub).
func killNormalSparingSentinels(ctx context.Context, c valkey.Client) (int64, error) {
	list, err := c.Do(ctx, c.B().Arbitrary("CLIENT", "LIST", "TYPE", "normal").Build()).ToString()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var id, name string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "name="); ok {
				name = v
			}
		}
		if id == "" || strings.HasPrefix(name, "sentinel-") {
			continue
		}
		k, err := c.Do(ctx, c.B().Arbitrary("CLIENT", "KILL", "ID", id).Build()).AsInt64()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// startKiller runs kill on c every linKillEvery, for as long as a load
// could last, until the returned func is called.
func (r *linRun) startKiller(c valkey.Client, kill killer) (stop func()) {
	r.faulty = true
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(linKillEvery)
		defer tick.Stop()
		for range int(30 * time.Second / linKillEvery) {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			at := r.hist.Now()
			n, err := kill(ctx, c)
			cancel()
			if err != nil {
				r.killErrors.Add(1)
				continue
			}
			r.kills.Add(1)
			r.killed.Add(n)
			r.annotate("redis", at, r.hist.Now(), fmt.Sprintf("CLIENT KILL: %d", n), "")
		}
	}()
	return func() { close(done); <-finished }
}

func (r *linRun) annotate(tag string, start, end int64, desc, details string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.annotations = append(r.annotations, porcupine.Annotation{Tag: tag, Start: start, End: end, Description: desc, Details: details})
}

// confirmedWritesBetween counts sets confirmed within [from, to].
func (r *linRun) confirmedWritesBetween(from, to int64) int {
	n := 0
	for _, op := range r.hist.Operations() {
		in, out := op.Input.(linearize.Input), op.Output.(linearize.Output)
		if in.Kind == linearize.Set && !out.Unknown && op.Return >= from && op.Call <= to {
			n++
		}
	}
	return n
}

// verify checks the history and the counts, and on failure writes
// porcupine's visualization and the service's log next to each other.
func (r *linRun) verify(t *testing.T) {
	t.Helper()
	ops := r.hist.Operations()
	unknown := 0
	for _, op := range ops {
		if op.Output.(linearize.Output).Unknown {
			unknown++
		}
	}
	if r.asyncTo != 0 {
		strict := linearize.Check(ops, linCheckTimeout)
		t.Logf("porcupine over every call, the failover window included: %s (not asserted: what the old master confirmed after the promotion is lost by Redis itself)", strict)
		ops = linearize.Relax(ops, r.asyncFrom, r.asyncTo)
	}
	start := time.Now()
	result := linearize.Check(ops, linCheckTimeout)
	took := time.Since(start).Round(time.Millisecond)
	summary := fmt.Sprintf("porcupine: %s in %s; calls %d, in history %d (no reply, may apply later: %d); "+
		"kills %d (connections closed %d, kill errors %d); memory answers %d; REDIS_UNAVAILABLE %d; "+
		"NO_REPLY writes %d, reads %d; rejected %d; unexpected %d",
		result, took, r.ops.Load(), len(ops), unknown,
		r.kills.Load(), r.killed.Load(), r.killErrors.Load(), r.memory.Load(), r.unavailable.Load(),
		r.noReplyWrites.Load(), r.noReplyReads.Load(), r.rejected.Load(), r.unexpected.Load())
	t.Log(summary)

	switch result {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Error("history is not linearizable: a confirmed write was lost, or a read saw a value it could not see")
	default:
		t.Errorf("linearizability check inconclusive after %s (%s): a history larger than it can check in time", linCheckTimeout, result)
	}
	if n := r.memory.Load(); n > 0 {
		t.Errorf("%d answers came from the memory tier; want 0: a dropped connection is not an outage", n)
	}
	if n := r.unavailable.Load(); n > 0 {
		t.Errorf("%d answers said REDIS_UNAVAILABLE; want 0: Redis never went away", n)
	}
	if n := r.unexpected.Load(); n > 0 {
		r.mu.Lock()
		t.Errorf("%d answers the API does not document, for example:\n%s", n, strings.Join(r.problems, "\n"))
		r.mu.Unlock()
	}
	if len(ops) < 100 {
		t.Errorf("only %d calls in the history; the run checked almost nothing", len(ops))
	}
	if r.faulty && r.killed.Load() == 0 {
		t.Errorf("%d kills closed no connection: the fault was never injected", r.kills.Load())
	}
	if !t.Failed() {
		return
	}
	dir := t.ArtifactDir()
	path := filepath.Join(dir, "linearizability.html")
	r.mu.Lock()
	annotations := slices.Clone(r.annotations)
	r.mu.Unlock()
	explained, err := linearize.Visualize(ops, annotations, linVisualizeTimeout, path)
	if err != nil {
		t.Logf("visualization: %v", err)
	}
	for _, line := range explained {
		t.Log(line)
	}
	logPath := filepath.Join(dir, "service.log")
	_ = os.WriteFile(logPath, []byte(r.p.stdout.String()), 0o644)
	t.Logf("porcupine visualization: %s\nservice log: %s\n(kept with go test -artifacts, removed otherwise)", path, logPath)
}

// linRedisHealthBody is the part of /health/redis the failover test reads.
type linRedisHealthBody struct {
	Status string `json:"status"`
	Addr   string `json:"addr"`
}

func linRedisHealth(url string) (linRedisHealthBody, bool) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/health/redis")
	if err != nil {
		return linRedisHealthBody{}, false
	}
	defer resp.Body.Close()
	var b struct {
		Data linRedisHealthBody `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		return linRedisHealthBody{}, false
	}
	return b.Data, true
}

// linWait polls cond every 50ms for at most within and says whether it
// became true.
func linWait(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func linEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !linWait(within, cond) {
		t.Fatalf("%s: not true within %s", what, within)
	}
}

func linInfoField(t *testing.T, srv *redistest.Server, section, field string) string {
	t.Helper()
	text, err := srv.Do(t, "INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// startSentinelTopology starts a master, its replica in sync, and three
// Sentinels monitoring it as "mymaster" that know each other and the
// replica (they learn the new master from each other's hello messages, so
// they must, before a failover). Their failure detection is slow (5 s):
// only a forced failover should happen, also on a loaded 2-core machine.
func startSentinelTopology(t *testing.T) (master, replica *redistest.Server, sentinels []*redistest.Server, addrs []string) {
	t.Helper()
	master = redistest.Start(t, redistest.Options{})
	replica = redistest.Start(t, redistest.Options{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port)}})
	linEventually(t, 10*time.Second, "replica in sync", func() bool {
		return linInfoField(t, replica, "replication", "master_link_status") == "up"
	})
	for range 3 {
		s := redistest.Start(t, redistest.Options{Sentinel: true, Config: []string{
			"sentinel monitor mymaster 127.0.0.1 " + strconv.Itoa(master.Port) + " 2",
			"sentinel down-after-milliseconds mymaster 5000",
			"sentinel failover-timeout mymaster 5000",
		}})
		sentinels = append(sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	for _, s := range sentinels {
		linEventually(t, 15*time.Second, "sentinels discover each other and the replica", func() bool {
			peers, err := s.Do(t, "SENTINEL", "SENTINELS", "mymaster")
			if err != nil || strings.Count(peers, "runid:") < 2 {
				return false
			}
			replicas, err := s.Do(t, "SENTINEL", "REPLICAS", "mymaster")
			return err == nil && strings.Contains(replicas, strconv.Itoa(replica.Port))
		})
	}
	return master, replica, sentinels, addrs
}
