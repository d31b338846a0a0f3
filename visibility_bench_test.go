package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// BenchmarkCrossInstanceVisibility measures how long after a write through
// one instance (A) returned a read through another instance (B) can still
// return the value it replaced. B holds the keys in its client-side cache;
// only Redis's invalidation message, pushed to B's connection, makes it read
// again. The README's "Client-side caching" bound comes from this benchmark:
//
//	go test -run '^$' -bench CrossInstanceVisibility -benchtime=1x -count=3 .
//
// Both instances are the built binary with the defaults a user gets
// (development, client-side caching on). Only what the measurement needs is
// set: the Redis address; RATE_LIMIT_RPS=0, since all the load comes from one
// address and must not be throttled; and CACHE_FALLBACK=none, so that every
// write counted as returned was confirmed by Redis: a write the memory
// fallback had taken on A (Redis briefly unavailable under load) would never
// reach B and would measure the fallback, not the invalidation path. Writes
// not confirmed by Redis are counted and left out of the check.
//
// For every read on B, the check looks up the first write on A of that key
// with a value newer than the one the read returned. If that write had
// returned to its client before the read started, the read is stale; its
// lags are measured from that write's return (the oldest write the read
// missed), to the read's start and to its return. Times are taken in this
// process, around each HTTP call, on one monotonic clock.
//
// -visibility.clientcache=false turns B's client cache off: the control, in
// which every read goes to Redis and the check must find no stale read.
// bench/run runs both and writes the figures into BENCHMARKS.md.
func BenchmarkCrossInstanceVisibility(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	env := func() map[string]string {
		return map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "RATE_LIMIT_RPS": "0", "CACHE_FALLBACK": "none"}
	}
	a := startBinary(b, env())
	envB := env()
	if !*visibilityClientCache {
		envB["REDIS_CLIENT_CACHE"] = "false"
	}
	bi := startBinary(b, envB)
	waitClientCache(b, a, "on")
	waitClientCache(b, bi, map[bool]string{true: "on", false: "off"}[*visibilityClientCache])
	hc := &http.Client{
		Timeout: 5 * time.Second,
		// One idle connection per client, so no request pays a new
		// connection (the default keeps 2 per host).
		Transport: &http.Transport{MaxIdleConnsPerHost: 2 * visClients, DisableCompression: true},
	}
	b.Cleanup(hc.CloseIdleConnections)
	vc := &visClient{hc: hc, a: a.url, b: bi.url}

	scenarios := []struct {
		name string
		run  func(b *testing.B, keys []string) *visRun
	}{
		{"load=8clients", func(b *testing.B, keys []string) *visRun { return vc.load(b, keys, *visibilityDuration) }},
		{"idle=sequential", func(b *testing.B, keys []string) *visRun { return vc.sequential(b, keys, *visibilityDuration) }},
	}
	iteration := 0
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			var all visStats
			for b.Loop() {
				iteration++
				keys := make([]string, visKeys)
				for i := range keys {
					keys[i] = fmt.Sprintf("visibility:%d:k%d", iteration, i)
				}
				vc.warm(b, srv, keys)
				r := sc.run(b, keys)
				all.add(r.check())
			}
			all.report(b)
		})
	}
}

var (
	visibilityDuration = flag.Duration("visibility.duration", 5*time.Second,
		"how long each BenchmarkCrossInstanceVisibility scenario sends requests")
	// The control: with B reading Redis every time, the check must find no
	// stale read, or it is measuring itself.
	visibilityClientCache = flag.Bool("visibility.clientcache", true,
		"client-side caching on instance B in BenchmarkCrossInstanceVisibility (false: the control)")
)

const (
	// The load of the user report: 8 clients, 4 000 operations/s in all.
	visClients = 8
	visRate    = 4000
	// Half the clients write, one key each, so the values of a key increase
	// with every write and its writes return in the order of their values;
	// the other half read all the keys in turn.
	visKeys = visClients / 2
	// How many operations a client that fell behind may send back to back
	// to catch up on its schedule.
	visBacklog = 5
	// Between the sequential client's rounds, so that the instances are idle
	// when each write starts.
	visIdleGap = 5 * time.Millisecond
)

// visOp is one request as the client saw it. Times are offsets from the
// run's start.
type visOp struct {
	key        int
	write      bool
	value      int64 // written, or read (-1: a miss)
	start, end time.Duration
	// ok: a write Redis confirmed (stored, backend REDIS), or a read that
	// returned a value without errors or warnings.
	ok bool
}

// visRun is what one scenario run sent and saw.
type visRun struct {
	elapsed time.Duration
	keys    int
	ops     []visOp
}

type visClient struct {
	hc   *http.Client
	a, b string
}

const (
	visSetQuery = `mutation($k: String!, $v: JSON!) { cacheSet(key: $k, value: $v) { stored backend } }`
	visGetQuery = `query($k: String!) { cacheGet(key: $k) }`
)

// do sends one GraphQL request and returns the decoded response with the
// times around the HTTP call.
func (c *visClient) do(url, query, key string, value int64) (r gqlResponse, start, end time.Time, err error) {
	vars := map[string]any{"k": key}
	if query == visSetQuery {
		vars["v"] = value
	}
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	start = time.Now()
	resp, err := c.hc.Post(url+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		return r, start, time.Now(), err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end = time.Now()
	if err != nil {
		return r, start, end, err
	}
	if resp.StatusCode != http.StatusOK {
		return r, start, end, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	err = json.Unmarshal(raw, &r)
	return r, start, end, err
}

func (c *visClient) write(base time.Time, k int, key string, value int64) visOp {
	r, start, end, err := c.do(c.a, visSetQuery, key, value)
	op := visOp{key: k, write: true, value: value, start: start.Sub(base), end: end.Sub(base)}
	if err == nil && len(r.Errors) == 0 {
		var p setPayload
		op.ok = json.Unmarshal(r.Data["cacheSet"], &p) == nil && p.Stored && p.Backend != nil && *p.Backend == "REDIS"
	}
	return op
}

func (c *visClient) read(base time.Time, k int, key string) visOp {
	r, start, end, err := c.do(c.b, visGetQuery, key, 0)
	op := visOp{key: k, value: -1, start: start.Sub(base), end: end.Sub(base)}
	if err == nil && len(r.Errors) == 0 && len(r.Extensions.Warnings) == 0 {
		if v, perr := strconv.ParseInt(string(r.Data["cacheGet"]), 10, 64); perr == nil {
			op.value, op.ok = v, true
		}
	}
	return op
}

// warm writes 0 to every key through A and reads it through B until B
// answers from its local cache, so the run starts with B holding every key.
func (c *visClient) warm(b *testing.B, srv *redistest.Server, keys []string) {
	b.Helper()
	base := time.Now()
	for k, key := range keys {
		if op := c.write(base, k, key, 0); !op.ok {
			b.Fatalf("warm-up cacheSet(%q, 0) on A not confirmed by Redis", key)
		}
		deadline := time.Now().Add(5 * time.Second)
		for op := c.read(base, k, key); !op.ok || op.value != 0; op = c.read(base, k, key) {
			if time.Now().After(deadline) {
				b.Fatalf("warm-up cacheGet(%q) on B = %d, ok=%v; want 0", key, op.value, op.ok)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if !*visibilityClientCache {
		return
	}
	// Reads answered locally send no GET to Redis.
	before := getCalls(b, srv)
	for k, key := range keys {
		c.read(base, k, key)
	}
	if n := getCalls(b, srv) - before; n != 0 {
		b.Fatalf("%d reads of warm keys on B sent %d GETs to Redis; want 0 (answered from B's local cache)", len(keys), n)
	}
}

// load runs visClients clients for d at visRate operations/s in all: the
// first visKeys write key i through A with 1, 2, 3, ...; the others read
// every key in turn through B. Each client sends one request at a time,
// paced to its share of the rate; it stops after d or its share of
// operations, whichever comes first.
func (c *visClient) load(b *testing.B, keys []string, d time.Duration) *visRun {
	b.Helper()
	interval := time.Second * visClients / visRate
	maxOps := int(d/interval) + 1
	run := &visRun{keys: len(keys)}
	per := make([][]visOp, visClients)
	var wg sync.WaitGroup
	base := time.Now()
	for i := range visClients {
		wg.Go(func() {
			ops := make([]visOp, 0, maxOps)
			// Stagger the clients over one interval.
			next := base.Add(interval * time.Duration(i) / visClients)
			var value int64
			for n := 0; n < maxOps && time.Since(base) < d; n++ {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				}
				if i < visKeys {
					value++
					ops = append(ops, c.write(base, i, keys[i], value))
				} else {
					k := (n + i) % visKeys
					ops = append(ops, c.read(base, k, keys[k]))
				}
				// A client delayed by a slow request catches up on at most
				// visBacklog operations, then drops the rest.
				next = next.Add(interval)
				if now := time.Now(); now.Sub(next) > visBacklog*interval {
					next = now.Add(-visBacklog * interval)
				}
			}
			per[i] = ops
		})
	}
	wg.Wait()
	run.elapsed = time.Since(base)
	run.ops = slices.Concat(per...)
	return run
}

// sequential is one client, one request at a time: write the next value of
// a key through A, then read it through B until B returns it (at most 50
// reads), then pause visIdleGap, for d or 2 000 rounds.
func (c *visClient) sequential(b *testing.B, keys []string, d time.Duration) *visRun {
	b.Helper()
	run := &visRun{keys: len(keys)}
	values := make([]int64, len(keys))
	base := time.Now()
	for n := 0; n < 2000 && time.Since(base) < d; n++ {
		k := n % len(keys)
		values[k]++
		w := c.write(base, k, keys[k], values[k])
		run.ops = append(run.ops, w)
		for range 50 {
			r := c.read(base, k, keys[k])
			run.ops = append(run.ops, r)
			if !w.ok || r.ok && r.value >= values[k] {
				break
			}
		}
		time.Sleep(visIdleGap)
	}
	run.elapsed = time.Since(base)
	return run
}

// visResult is what one run's check found.
type visResult struct {
	elapsed                  time.Duration
	ops, writes, writesNotOK int
	reads, readsNotOK        int
	stale                    int
	// Lags of the stale reads: from the return of the oldest write they
	// missed to the read's start and to its return.
	startLag, returnLag []time.Duration
	readLat, writeLat   []time.Duration
}

func (r *visRun) check() visResult {
	res := visResult{elapsed: r.elapsed, ops: len(r.ops)}
	// Per key, the confirmed writes in order of value; one writer per key
	// makes that their order of return too.
	type written struct {
		value int64
		end   time.Duration
	}
	byKey := make([][]written, r.keys)
	for _, op := range r.ops {
		if !op.write {
			continue
		}
		res.writes++
		res.writeLat = append(res.writeLat, op.end-op.start)
		if !op.ok {
			res.writesNotOK++
			continue
		}
		byKey[op.key] = append(byKey[op.key], written{op.value, op.end})
	}
	for _, ws := range byKey {
		sort.Slice(ws, func(i, j int) bool { return ws[i].value < ws[j].value })
	}
	for _, op := range r.ops {
		if op.write {
			continue
		}
		res.reads++
		res.readLat = append(res.readLat, op.end-op.start)
		if !op.ok {
			res.readsNotOK++
			continue
		}
		ws := byKey[op.key]
		i := sort.Search(len(ws), func(i int) bool { return ws[i].value > op.value })
		if i == len(ws) || ws[i].end >= op.start {
			continue // nothing newer had returned when the read started
		}
		res.stale++
		res.startLag = append(res.startLag, op.start-ws[i].end)
		res.returnLag = append(res.returnLag, op.end-ws[i].end)
	}
	return res
}

// visStats gathers the runs of one scenario (one per b.Loop iteration).
type visStats struct {
	runs []visResult
}

func (s *visStats) add(r visResult) { s.runs = append(s.runs, r) }

func (s *visStats) report(b *testing.B) {
	var all visResult
	for _, r := range s.runs {
		all.elapsed += r.elapsed
		all.ops += r.ops
		all.writes += r.writes
		all.writesNotOK += r.writesNotOK
		all.reads += r.reads
		all.readsNotOK += r.readsNotOK
		all.stale += r.stale
		all.startLag = append(all.startLag, r.startLag...)
		all.returnLag = append(all.returnLag, r.returnLag...)
		all.readLat = append(all.readLat, r.readLat...)
		all.writeLat = append(all.writeLat, r.writeLat...)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(all.ops), "ops")
	b.ReportMetric(float64(all.ops)/all.elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all.reads), "reads")
	b.ReportMetric(float64(all.writesNotOK+all.readsNotOK), "failed-ops")
	b.ReportMetric(float64(all.stale), "stale-reads")
	b.ReportMetric(ms(quantile(all.startLag, 0.5)), "stale-start-p50-ms")
	b.ReportMetric(ms(quantile(all.startLag, 1)), "stale-start-max-ms")
	b.ReportMetric(ms(quantile(all.startLag, 0.99)), "stale-start-p99-ms")
	b.ReportMetric(ms(quantile(all.startLag, 0.999)), "stale-start-p99.9-ms")
	b.ReportMetric(ms(quantile(all.returnLag, 0.5)), "stale-return-p50-ms")
	b.ReportMetric(ms(quantile(all.returnLag, 1)), "stale-return-max-ms")
	b.ReportMetric(ms(quantile(all.returnLag, 0.99)), "stale-return-p99-ms")
	b.ReportMetric(ms(quantile(all.returnLag, 0.999)), "stale-return-p99.9-ms")
	b.ReportMetric(ms(quantile(all.readLat, 0.99)), "read-p99-ms")
	b.ReportMetric(ms(quantile(all.writeLat, 0.99)), "write-p99-ms")
	b.Logf("%d ops in %.1fs (%.0f ops/s): %d writes on A (%d not confirmed), %d reads on B (%d failed); "+
		"stale reads (started after a newer write had returned): %d; "+
		"stale read start - write return: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; "+
		"stale read return - write return: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; "+
		"read latency p50 %.3f ms, p99 %.3f ms; write latency p50 %.3f ms, p99 %.3f ms",
		all.ops, all.elapsed.Seconds(), float64(all.ops)/all.elapsed.Seconds(),
		all.writes, all.writesNotOK, all.reads, all.readsNotOK, all.stale,
		ms(quantile(all.startLag, 0.5)), ms(quantile(all.startLag, 0.99)), ms(quantile(all.startLag, 0.999)), ms(quantile(all.startLag, 1)),
		ms(quantile(all.returnLag, 0.5)), ms(quantile(all.returnLag, 0.99)), ms(quantile(all.returnLag, 0.999)), ms(quantile(all.returnLag, 1)),
		ms(quantile(all.readLat, 0.5)), ms(quantile(all.readLat, 0.99)),
		ms(quantile(all.writeLat, 0.5)), ms(quantile(all.writeLat, 0.99)))
}

// quantile is the nearest-rank q-quantile of ds (q=1: the largest), 0 for
// none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// waitClientCache waits until p reports Redis connected with client-side
// caching in state want: the benchmark means nothing otherwise.
func waitClientCache(b *testing.B, p *process, want string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var hb struct {
			Data struct {
				Status      string `json:"status"`
				ClientCache string `json:"clientCache"`
			} `json:"data"`
		}
		resp, err := http.Get(p.url + "/health/redis")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&hb)
			resp.Body.Close()
		}
		if hb.Data.Status == "connected" && hb.Data.ClientCache == want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s/health/redis = %+v, %v; want connected with clientCache %s\n%s", p.url, hb.Data, err, want, p.stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getCalls is how many GETs srv has executed.
func getCalls(b *testing.B, srv *redistest.Server) int {
	b.Helper()
	text, err := srv.Do(b, "INFO", "commandstats")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:"); ok {
			calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
			n, _ := strconv.Atoi(calls)
			return n
		}
	}
	return 0
}
