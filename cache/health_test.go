package cache_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
)

// commandCalls is how many times Redis ran each command since its last
// CONFIG RESETSTAT, from INFO commandstats ("ping" -> 3).
func commandCalls(t *testing.T, srv *redistest.Server) map[string]int {
	t.Helper()
	stats, err := srv.Do(t, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(stats, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(n)
	}
	return calls
}

// Health is a snapshot: reading it sends nothing to Redis, not a PING, not
// an INFO, however often it is read. Every command counts, PING included:
// between the two INFOs below only this test's own commands and, at most, an
// idle connection's keep-alive PING may run, where one command per Health
// call would be 300.
func TestHealthSendsNothingToRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts := fastOptions(srv.Addr, &logBuffer{})
	opts.ProbeInterval = time.Hour // only the start-up probe
	c := newClient(t, opts)
	ready(t, c)
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // the start-up probe's INFO and CLIENT INFO
	// What reading the counters costs by itself: this test's connection
	// handshake and its INFO.
	resetStats(t, srv)
	baseline := commandCalls(t, srv)
	resetStats(t, srv)
	start := time.Now()
	for range 300 {
		if h := c.Health(); h.Status != cache.StatusConnected {
			t.Fatalf("Health().Status = %s; want connected", h.Status)
		}
	}
	elapsed := time.Since(start)
	calls := commandCalls(t, srv)
	allowed := 1 + int(elapsed/time.Second)
	for cmd, n := range calls {
		if extra := n - baseline[cmd]; cmd == "ping" && extra > allowed || cmd != "ping" && extra > 0 {
			t.Errorf("Redis ran %v during 300 Health() calls in %v, where reading the counters alone runs %v; want nothing more (at most %d idle PINGs)", calls, elapsed.Round(time.Microsecond), baseline, allowed)
			break
		}
	}
}

func resetStats(t *testing.T, srv *redistest.Server) {
	t.Helper()
	if _, err := srv.Do(t, "CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
}
