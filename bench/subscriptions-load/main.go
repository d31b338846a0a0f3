// Command subscriptions-load drives one GraphQL server speaking
// graphql-transport-ws with the cacheChanged(keys) subscription and the
// cacheSet mutation, and prints what bench/subscriptions tabulates, as one
// JSON object: the server's RSS and CPU with 10 000 idle subscriptions,
// the time one write takes to reach all of them (p50, p99), and 1 000
// subscribers receiving 20 changes a second (events/s, CPU µs per event).
// Every phase is bounded in count and time. For the comparison in
// bench/subscriptions only.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

type result struct {
	Name           string  `json:"name"`
	Subscriptions  int     `json:"subscriptions"`
	RSSStartMiB    float64 `json:"rss_start_mib"`
	RSSIdleMiB     float64 `json:"rss_idle_mib"`
	IdleCPUms      float64 `json:"idle_cpu_ms_per_5s"`
	FanOutP50ms    float64 `json:"fanout_p50_ms"`
	FanOutP99ms    float64 `json:"fanout_p99_ms"`
	FanOutCPUus    float64 `json:"fanout_cpu_us_per_event"`
	RateSubs       int     `json:"rate_subscribers"`
	RateEventsPerS float64 `json:"rate_events_per_s"`
	RateCPUus      float64 `json:"rate_cpu_us_per_event"`
	RateDelivered  int64   `json:"rate_delivered"`
	RateExpected   int64   `json:"rate_expected"`
}

func main() {
	url := flag.String("url", "", "the server's base URL, http://host:port")
	pid := flag.Int("pid", 0, "the server's process id, for RSS and CPU")
	name := flag.String("name", "", "a name for the result")
	sockets := flag.Int("sockets", 100, "sockets of the fan-out phase")
	perSocket := flag.Int("per-socket", 100, "subscriptions on each socket")
	rounds := flag.Int("rounds", 100, "writes of the fan-out phase")
	rateSockets := flag.Int("rate-sockets", 10, "sockets of the rate phase (each with per-socket subscriptions)")
	rate := flag.Int("rate", 20, "changes a second in the rate phase")
	rateFor := flag.Duration("rate-for", 10*time.Second, "length of the rate phase")
	flag.Parse()
	if *url == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: subscriptions-load -url http://127.0.0.1:PORT -pid PID [-name NAME]")
		os.Exit(2)
	}
	r, err := run(*url, *pid, *name, *sockets, *perSocket, *rounds, *rateSockets, *rate, *rateFor)
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscriptions-load:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func run(base string, pid int, name string, sockets, perSocket, rounds, rateSockets, rate int, rateFor time.Duration) (*result, error) {
	res := &result{Name: name, Subscriptions: sockets * perSocket, RateSubs: rateSockets * perSocket}
	rss, err := rssOf(pid)
	if err != nil {
		return nil, err
	}
	res.RSSStartMiB = rss

	// 10 000 subscriptions of one key, live once each has had one event.
	var got atomic.Int64
	fan, err := open(base, sockets, perSocket, "fan", &got)
	if err != nil {
		return nil, err
	}
	total := int64(sockets * perSocket)
	if err := waitLive(base, "fan", &got, total); err != nil {
		closeAll(fan)
		return nil, err
	}
	if res.RSSIdleMiB, err = rssOf(pid); err != nil {
		return nil, err
	}
	cpu0, _ := cpuOf(pid)
	time.Sleep(5 * time.Second)
	cpu1, _ := cpuOf(pid)
	res.IdleCPUms = float64((cpu1 - cpu0).Microseconds()) / 1000

	// One write at a time, to the last of them.
	var lags []time.Duration
	cpu0, _ = cpuOf(pid)
	for i := range rounds {
		want := got.Load() + total
		start := time.Now()
		if err := write(base, "fan", i); err != nil {
			return nil, err
		}
		deadline := start.Add(30 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("round %d: %d of %d events within 30s", i, got.Load()-(want-total), total)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(start))
	}
	cpu1, _ = cpuOf(pid)
	res.FanOutCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(int64(rounds)*total)
	slices.Sort(lags)
	res.FanOutP50ms = ms(lags[len(lags)/2])
	res.FanOutP99ms = ms(lags[(len(lags)*99)/100])
	closeAll(fan)
	time.Sleep(2 * time.Second)

	// 1 000 subscribers of one key changed rate times a second.
	var rateGot atomic.Int64
	subs, err := open(base, rateSockets, perSocket, "rate", &rateGot)
	if err != nil {
		return nil, err
	}
	defer closeAll(subs)
	if err := waitLive(base, "rate", &rateGot, int64(res.RateSubs)); err != nil {
		return nil, err
	}
	before := rateGot.Load()
	writes := int(rateFor.Seconds() * float64(rate))
	tick := time.NewTicker(time.Second / time.Duration(rate))
	cpu0, _ = cpuOf(pid)
	start := time.Now()
	for i := range writes {
		<-tick.C
		if err := write(base, "rate", i); err != nil {
			return nil, err
		}
	}
	tick.Stop()
	res.RateExpected = int64(writes) * int64(res.RateSubs)
	deadline := time.Now().Add(5 * time.Second)
	for rateGot.Load()-before < res.RateExpected && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu1, _ = cpuOf(pid)
	res.RateDelivered = rateGot.Load() - before
	res.RateEventsPerS = float64(res.RateDelivered) / elapsed.Seconds()
	if res.RateDelivered > 0 {
		res.RateCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(res.RateDelivered)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// waitLive writes key until every subscription has had an event, then
// lets the rest of the warm-up writes arrive.
func waitLive(base, key string, got *atomic.Int64, total int64) error {
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; got.Load() < total; i++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscriptions live after 60s", got.Load(), total)
		}
		if err := write(base, key, -1-i); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	for last := int64(-1); last != got.Load(); {
		last = got.Load()
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

func write(base, key string, v int) error {
	body, _ := json.Marshal(map[string]any{"query": `mutation($k: String!, $v: JSON) { cacheSet(key: $k, value: $v) { stored } }`, "variables": map[string]any{"k": key, "v": v}})
	resp, err := http.Post(base+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Errors []any `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Errors) > 0 {
		return fmt.Errorf("cacheSet: HTTP %d, %v, %v", resp.StatusCode, out.Errors, err)
	}
	return nil
}

type conn struct {
	ws   *websocket.Conn
	done chan struct{}
}

// open dials sockets sockets with perSocket cacheChanged(keys: [key])
// subscriptions each; every "next" received adds one to got.
func open(base string, sockets, perSocket int, key string, got *atomic.Int64) ([]*conn, error) {
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	query := `subscription { cacheChanged(keys: ["` + key + `"]) { key kind etag } }`
	var conns []*conn
	for range sockets {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			cancel()
			closeAll(conns)
			return nil, err
		}
		ws.SetReadLimit(1 << 20)
		send := func(m map[string]any) error {
			b, _ := json.Marshal(m)
			return ws.Write(ctx, websocket.MessageText, b)
		}
		err = send(map[string]any{"type": "connection_init", "payload": map[string]any{}})
		if err == nil {
			_, b, rerr := ws.Read(ctx)
			if rerr != nil || !bytes.Contains(b, []byte(`"connection_ack"`)) {
				err = fmt.Errorf("connection_init: %s %v", b, rerr)
			}
		}
		for j := 0; err == nil && j < perSocket; j++ {
			err = send(map[string]any{"id": strconv.Itoa(j), "type": "subscribe", "payload": map[string]any{"query": query}})
		}
		cancel()
		if err != nil {
			ws.CloseNow()
			closeAll(conns)
			return nil, err
		}
		c := &conn{ws: ws, done: make(chan struct{})}
		go c.read(got)
		conns = append(conns, c)
	}
	return conns, nil
}

var pong = []byte(`{"type":"pong"}`)

func (c *conn) read(got *atomic.Int64) {
	defer close(c.done)
	var m struct {
		Type string `json:"type"`
	}
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		switch {
		case bytes.Contains(b, []byte(`"type":"next"`)):
			got.Add(1)
		case json.Unmarshal(b, &m) == nil && m.Type == "ping":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.ws.Write(ctx, websocket.MessageText, pong)
			cancel()
		case m.Type == "error":
			fmt.Fprintf(os.Stderr, "subscription error: %s\n", b)
		}
	}
}

func closeAll(conns []*conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				c.ws.CloseNow()
			}
		})
	}
	wg.Wait()
}

// rssOf reads a process's resident set (/proc/PID/status VmRSS), in MiB.
func rssOf(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuOf is a process's user and system CPU time (/proc/PID/stat).
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil
}
