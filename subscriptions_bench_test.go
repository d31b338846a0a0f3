package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// BenchmarkSubscriptionFanOut: 10 000 cacheChanged subscriptions of one
// key on one instance (the built binary; 100 sockets of 100 each), the
// service's RSS and CPU while they sit idle, and how long one write takes
// to reach the last of them. By hand:
//
//	go test -run '^$' -bench SubscriptionFanOut -benchtime=1x .
func BenchmarkSubscriptionFanOut(b *testing.B) {
	const sockets, perSocket, rounds = 100, 100, 20
	srv := redistest.Start(b, redistest.Options{})
	env := testEnv(srv.Addr)
	env["SUBSCRIPTION_MAX_PER_SOCKET"] = strconv.Itoa(perSocket)
	env["REDIS_COMMAND_TIMEOUT"] = "2s"
	env["GRAPHQL_REQUEST_TIMEOUT"] = "5s"
	p := startBinary(b, env)
	pid := p.cmd.Process.Pid
	rssStart, _ := memory(b, pid)

	clients := make([]*wsClient, sockets)
	for i := range clients {
		c, _, err := dialURL(b, p.url, wsDial{})
		if err != nil {
			b.Fatal(err)
		}
		c.ack()
		for j := range perSocket {
			c.subscribe(strconv.Itoa(j), `subscription { cacheChanged(keys: ["fan"]) { key kind etag } }`, nil)
		}
		clients[i] = c
	}
	write := func(v int) time.Time {
		body, _ := json.Marshal(map[string]any{"query": `mutation($v: JSON) { cacheSet(key: "fan", value: $v) { stored } }`, "variables": map[string]any{"v": v}})
		start := time.Now()
		resp, err := http.Post(p.url+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return start
	}
	// all waits until every subscription has one more event, and returns
	// when the last one came.
	all := func() time.Time {
		var last time.Time
		for i, c := range clients {
			for range perSocket {
				m, ok := c.next(30 * time.Second)
				if !ok || m.Type != "next" {
					b.Fatalf("socket %d: %+v (open %v, %v)", i, m, ok, c.closeErr())
				}
			}
			last = time.Now() // sockets are read in turn; each has its events by now
		}
		return last
	}
	// Live: the subscriptions start as their messages arrive; write until
	// every one has had an event, then drain.
	time.Sleep(2 * time.Second)
	write(-1)
	all()
	rssIdle, _ := memory(b, pid)
	m := scrape(b, p.url+"/metrics")
	b.Logf("idle with the subscriptions: goroutines %.0f, heap in use %.1f MiB, stacks %.1f MiB",
		m["go_goroutines"], m["go_memstats_heap_inuse_bytes"]/mib, m["go_memstats_stack_inuse_bytes"]/mib)
	cpu0 := cpuTime(b, pid)
	time.Sleep(5 * time.Second)
	idleCPU := cpuTime(b, pid) - cpu0

	var lags []time.Duration
	cpu0 = cpuTime(b, pid)
	for r := range rounds {
		start := write(r)
		lags = append(lags, all().Sub(start))
	}
	fanCPU := cpuTime(b, pid) - cpu0
	slices.Sort(lags)
	_, peak := memory(b, pid)
	b.ReportMetric(float64(rssIdle)/mib, "MiB-RSS-idle")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "ms-max")
	b.ReportMetric(float64(fanCPU.Microseconds())/float64(rounds*sockets*perSocket), "CPU-us/event")
	b.Logf("%d subscriptions on %d sockets: RSS %.1f MiB at start, %.1f MiB idle with them (peak %.1f MiB); CPU while idle %s over 5s; one write to the last subscriber over %d rounds: p50 %s, max %s; service CPU %.2f us per event delivered",
		sockets*perSocket, sockets, float64(rssStart)/mib, float64(rssIdle)/mib, float64(peak)/mib, idleCPU, rounds, lags[len(lags)/2], lags[len(lags)-1], float64(fanCPU.Microseconds())/float64(rounds*sockets*perSocket))
}

// cpuTime is a process's user and system CPU time (/proc/PID/stat).
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
