package cache

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// failed reports whether the breaker now refuses Redis, which decides
// whether the fallback may answer the request that failed: for a failure
// from an outage already declared (an earlier epoch) as for any other.
func TestFailedReportsWhetherTheBreakerRefuses(t *testing.T) {
	tests := []struct {
		name  string
		start func(*testing.T) *availability
		fail  func(*availability) bool
		want  bool
	}{
		{"closed, an error reply", func(t *testing.T) *availability { return closedAvailability(t, true) },
			func(a *availability) bool {
				return a.failed(a.epoch.Load(), notAnOutage, errors.New("WRONGTYPE"), false)
			}, false},
		{"open, an error reply", func(t *testing.T) *availability { return openAvailability(t, true) },
			func(a *availability) bool {
				return a.failed(a.epoch.Load(), notAnOutage, errors.New("WRONGTYPE"), false)
			}, true},
		{"closed, unreachable from an earlier epoch", func(t *testing.T) *availability { return closedAvailability(t, true) },
			func(a *availability) bool { return a.failed(a.epoch.Load()+1, unreachable, errDown, false) }, false},
		{"open, unreachable from the epoch before the trip", func(t *testing.T) *availability { return openAvailability(t, true) },
			func(a *availability) bool { return a.failed(a.epoch.Load()-1, unreachable, errDown, false) }, true},
		{"closed, one unreachable", func(t *testing.T) *availability { return closedAvailability(t, true) },
			func(a *availability) bool { return a.failed(a.epoch.Load(), unreachable, errDown, false) }, false},
		{"closed, the third unreachable in a row", func(t *testing.T) *availability { return closedAvailability(t, true) },
			func(a *availability) bool {
				a.failed(a.epoch.Load(), unreachable, errDown, false)
				a.failed(a.epoch.Load(), unreachable, errDown, false)
				return a.failed(a.epoch.Load(), unreachable, errDown, false)
			}, true},
		{"closed, a timeout", func(t *testing.T) *availability { return closedAvailability(t, true) },
			func(a *availability) bool {
				return a.failed(a.epoch.Load(), timedOut, errors.New("i/o timeout"), false)
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fail(tt.start(t)); got != tt.want {
				t.Errorf("failed() = %v; want %v", got, tt.want)
			}
		})
	}
}

// A probe that answers after a trip it began before counts for nothing:
// the breaker goes back to open, not left half-open as if a probe were
// still running, and Health says so.
func TestLateProbeLeavesTheBreakerOpen(t *testing.T) {
	a := closedAvailability(t, false)
	late := a.probeStarted()
	a.probeFailed(a.probeStarted(), errDown) // the trip
	a.probeStarted()                         // the next probe: half-open
	if a.probeSucceeded(late, fastProbe) {
		t.Fatal("probeSucceeded with a ticket from before the trip = true; want false")
	}
	if got := a.snapshot().Breaker; got != BreakerOpen {
		t.Errorf("Health().Breaker after a late probe answered = %s; want open", got)
	}
}

// loggedAvailability is an owner whose log lines are kept, connected again
// after an outage: a recovery, which opens the flap window.
func loggedAvailability(t *testing.T) (*availability, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	a := newAvailability(availabilityConfig{
		addrs: "test", degradedLatency: 100 * time.Millisecond, reminder: time.Minute, tripAfter: 3,
	}, slog.New(slog.NewTextHandler(&buf, nil)), nopObserver{}, nil)
	a.probeSucceeded(a.probeStarted(), fastProbe)
	a.probeFailed(a.probeStarted(), errDown)
	if !a.probeSucceeded(a.probeStarted(), fastProbe) {
		t.Fatal("the probe after the outage did not count")
	}
	buf.Reset()
	return a, &buf
}

// A degradation that began inside the flap window after a recovery is kept
// out of the log, and logged once it has lasted beyond it; a connection
// that stays connected is logged once, however long it lasts. (The flap
// window's five seconds are skipped by moving the recovery back.)
func TestLongStatesAreLoggedOnce(t *testing.T) {
	t.Run("a quiet degradation that lasts is logged", func(t *testing.T) {
		a, logs := loggedAvailability(t)
		a.probeSucceeded(a.probeStarted(), slowProbe) // within the flap window: quiet
		if n := strings.Count(logs.String(), "redis degraded"); n != 0 {
			t.Fatalf("%d 'redis degraded' lines right after the recovery; want 0 (flap window)", n)
		}
		a.states.lastRecovery = time.Now().Add(-2 * flapWindow)
		a.probeSucceeded(a.probeStarted(), slowProbe)
		a.probeSucceeded(a.probeStarted(), slowProbe)
		if n := strings.Count(logs.String(), "redis degraded"); n != 1 {
			t.Errorf("%d 'redis degraded' lines once the degradation outlasted the flap window; want 1:\n%s", n, logs)
		}
	})
	t.Run("a connection that lasts is logged once", func(t *testing.T) {
		a, logs := loggedAvailability(t)
		a.states.lastRecovery = time.Now().Add(-2 * flapWindow)
		for range 3 {
			a.probeSucceeded(a.probeStarted(), fastProbe)
		}
		if n := strings.Count(logs.String(), "redis connected"); n != 0 {
			t.Errorf("%d more 'redis connected' lines for a connection already logged; want none:\n%s", n, logs)
		}
	})
}

// The line that says Redis is back after an outage says how long it was
// down; one after a mere degradation, or the first connection, does not.
func TestRecoveryLineSaysHowLongRedisWasDown(t *testing.T) {
	var buf bytes.Buffer
	a := newAvailability(availabilityConfig{
		addrs: "test", degradedLatency: 100 * time.Millisecond, reminder: time.Minute, tripAfter: 3,
	}, slog.New(slog.NewTextHandler(&buf, nil)), nopObserver{}, nil)
	line := func(event func()) string {
		buf.Reset()
		event()
		return strings.TrimSpace(buf.String())
	}
	if got := line(func() { a.probeSucceeded(a.probeStarted(), fastProbe) }); !strings.Contains(got, "redis connected") || strings.Contains(got, "downFor") {
		t.Errorf("first connection logged %q; want 'redis connected' without downFor", got)
	}
	a.probeFailed(a.probeStarted(), errDown)
	if got := line(func() { a.probeSucceeded(a.probeStarted(), fastProbe) }); !strings.Contains(got, "redis connected") || !strings.Contains(got, "downFor=") {
		t.Errorf("recovery after an outage logged %q; want 'redis connected' with downFor", got)
	}
	a.states.lastRecovery = time.Now().Add(-2 * flapWindow) // so the degradation is logged
	if got := line(func() { a.probeSucceeded(a.probeStarted(), slowProbe) }); !strings.Contains(got, "redis degraded") {
		t.Fatalf("slow probe logged %q; want 'redis degraded'", got)
	}
	if got := line(func() { a.probeSucceeded(a.probeStarted(), fastProbe) }); !strings.Contains(got, "redis connected") || strings.Contains(got, "downFor") {
		t.Errorf("recovery from a degradation logged %q; want 'redis connected' without downFor: Redis was not down", got)
	}
}

// transitions counts the status changes an Observer is told of.
type transitions struct {
	nopObserver
	seen []string
}

func (o *transitions) ObserveTransition(from, to Status) {
	o.seen = append(o.seen, string(from)+"->"+string(to))
}

// An outage begins once: Health.Since is when it began, and the metrics
// see one transition, however many failed probes follow.
func TestAnOutageBeginsOnce(t *testing.T) {
	obs := &transitions{}
	a := newAvailability(availabilityConfig{
		addrs: "test", degradedLatency: 100 * time.Millisecond, reminder: time.Minute, tripAfter: 3,
	}, slog.New(slog.DiscardHandler), obs, nil)
	a.probeSucceeded(a.probeStarted(), fastProbe)
	connectedSince := a.snapshot().Since
	time.Sleep(2 * time.Millisecond)
	a.probeFailed(a.probeStarted(), errDown)
	down := a.snapshot().Since
	if !down.After(connectedSince) {
		t.Errorf("Health().Since = %v once Redis went down; want the time it went down, after %v", down, connectedSince)
	}
	time.Sleep(2 * time.Millisecond)
	for range 3 {
		a.probeFailed(a.probeStarted(), errDown)
	}
	if got := a.snapshot().Since; !got.Equal(down) {
		t.Errorf("Health().Since = %v after more failed probes; want %v, when the outage began", got, down)
	}
	if got := strings.Join(obs.seen, " "); got != "disconnected->connected connected->disconnected" {
		t.Errorf("transitions observed: %s; want disconnected->connected connected->disconnected", got)
	}
}

// MemoryUsage is what health shows as memoryUsage: bytes below a KiB, then
// one decimal in the largest unit it reaches (up to PB).
func TestMemoryUsage(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 1023: "1023B", 1024: "1.0KB", 1536: "1.5KB", 1<<20 - 1: "1024.0KB", 1 << 20: "1.0MB",
		5 << 30: "5.0GB", 3 << 40: "3.0TB", 2 << 50: "2.0PB", 4096 << 50: "4096.0PB",
	} {
		if got := (ServerInfo{UsedMemory: n}).MemoryUsage(); got != want {
			t.Errorf("MemoryUsage() of %d bytes = %q; want %q", n, got, want)
		}
	}
}

// Changes kept out of the log while Redis flaps are counted on the next
// line that is logged (changesNotLogged), and a line that follows none
// carries no count.
func TestLinesCountTheChangesNotLogged(t *testing.T) {
	t.Run("degraded, announced after the flap window", func(t *testing.T) {
		a, logs := loggedAvailability(t)
		a.probeSucceeded(a.probeStarted(), slowProbe) // quiet: 1
		a.probeSucceeded(a.probeStarted(), fastProbe) // quiet: 2
		a.probeSucceeded(a.probeStarted(), slowProbe) // quiet: 3
		if logs.Len() != 0 {
			t.Fatalf("changes inside the flap window were logged:\n%s", logs)
		}
		a.states.lastRecovery = time.Now().Add(-2 * flapWindow)
		a.probeSucceeded(a.probeStarted(), slowProbe)
		if got := logs.String(); !strings.Contains(got, "redis degraded") || !strings.Contains(got, "changesNotLogged=3") {
			t.Errorf("the degradation, once it outlasted the flap window, logged %q; want 'redis degraded' with changesNotLogged=3", got)
		}
	})
	t.Run("unreachable, announced after the flap window", func(t *testing.T) {
		a, logs := loggedAvailability(t)
		a.probeSucceeded(a.probeStarted(), slowProbe) // quiet: 1
		a.probeFailed(a.probeStarted(), errDown)      // quiet: 2
		if logs.Len() != 0 {
			t.Fatalf("changes inside the flap window were logged:\n%s", logs)
		}
		a.states.lastRecovery = time.Now().Add(-2 * flapWindow)
		a.probeFailed(a.probeStarted(), errDown)
		if got := logs.String(); !strings.Contains(got, "redis unreachable") || !strings.Contains(got, "changesNotLogged=2") {
			t.Errorf("the outage, once it outlasted the flap window, logged %q; want 'redis unreachable' with changesNotLogged=2", got)
		}
	})
	t.Run("no count where nothing was kept out", func(t *testing.T) {
		var buf bytes.Buffer
		a := newAvailability(availabilityConfig{
			addrs: "test", degradedLatency: 100 * time.Millisecond, reminder: time.Minute, tripAfter: 3,
		}, slog.New(slog.NewTextHandler(&buf, nil)), nopObserver{}, nil)
		a.probeSucceeded(a.probeStarted(), fastProbe)
		a.probeFailed(a.probeStarted(), errDown)
		a.probeSucceeded(a.probeStarted(), fastProbe)
		if got := buf.String(); strings.Count(got, "\n") != 3 || strings.Contains(got, "changesNotLogged") {
			t.Errorf("connected, unreachable, connected logged:\n%s\nwant three lines, none with changesNotLogged", got)
		}
	})
}
