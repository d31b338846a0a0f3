package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func testAvailability(withMemory bool) *availability {
	var m *memoryTier
	if withMemory {
		m = newMemoryTier(1 << 20)
	}
	return newAvailability(availabilityConfig{
		addrs: "test", degradedLatency: 100 * time.Millisecond, reminder: time.Minute, tripAfter: 3,
	}, slog.New(slog.DiscardHandler), nopObserver{}, m)
}

var (
	fastProbe = probeResult{latency: time.Millisecond, mode: ModeStandalone}
	slowProbe = probeResult{latency: time.Second, mode: ModeStandalone}
	errDown   = errors.New("connection refused")
)

// closedAvailability returns an owner whose first probe succeeded.
func closedAvailability(t *testing.T, withMemory bool) *availability {
	t.Helper()
	a := testAvailability(withMemory)
	if !a.probeSucceeded(a.probeStarted(), fastProbe) {
		t.Fatal("first probe did not count")
	}
	return a
}

// openAvailability returns an owner whose breaker tripped after being
// closed.
func openAvailability(t *testing.T, withMemory bool) *availability {
	t.Helper()
	a := closedAvailability(t, withMemory)
	a.probeFailed(a.probeStarted(), errDown)
	return a
}

func TestAvailabilityTransitions(t *testing.T) {
	type want struct {
		state  breaker
		status Status
		reason string // a substring of Health.Reason; "" to skip
		epoch  uint64 // epoch added by the event
	}
	tests := []struct {
		name  string
		start func(*testing.T) *availability
		event func(*availability)
		want  want
	}{
		{"new: open and disconnected until a probe answers", func(*testing.T) *availability { return testAvailability(false) },
			func(*availability) {}, want{open, StatusDisconnected, ReasonConnecting, 0}},
		{"open + probe starts = half-open", func(t *testing.T) *availability { return openAvailability(t, false) },
			func(a *availability) { a.probeStarted() }, want{halfOpen, StatusDisconnected, "", 0}},
		{"half-open + probe answers = closed, connected", func(t *testing.T) *availability { return openAvailability(t, false) },
			func(a *availability) { a.probeSucceeded(a.probeStarted(), fastProbe) }, want{closed, StatusConnected, "", 0}},
		{"half-open + probe fails = open", func(t *testing.T) *availability { return openAvailability(t, false) },
			func(a *availability) { a.probeFailed(a.probeStarted(), errDown) }, want{open, StatusDisconnected, "refused", 0}},
		{"closed + probe starts = closed", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) { a.probeStarted() }, want{closed, StatusConnected, "", 0}},
		{"closed + slow probe = closed, degraded", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) { a.probeSucceeded(a.probeStarted(), slowProbe) }, want{closed, StatusDegraded, "slow", 0}},
		{"closed + probe fails = open, new epoch", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) { a.probeFailed(a.probeStarted(), errDown) }, want{open, StatusDisconnected, "refused", 1}},
		{"closed + 2 unreachable = closed", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 2 {
					a.failed(a.epoch.Load(), unreachable, errDown, false)
				}
			}, want{closed, StatusConnected, "", 0}},
		{"closed + 3 unreachable = open", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 3 {
					a.failed(a.epoch.Load(), unreachable, errDown, false)
				}
			}, want{open, StatusDisconnected, "refused", 1}},
		{"closed + 2 unreachable, a success, 2 more = closed", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for i := range 5 {
					if i == 2 {
						a.succeeded()
						continue
					}
					a.failed(a.epoch.Load(), unreachable, errDown, false)
				}
			}, want{closed, StatusConnected, "", 0}},
		{"cluster + 3 unreachable = closed (only the probe decides)", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 3 {
					a.failed(a.epoch.Load(), unreachable, errDown, true)
				}
			}, want{closed, StatusConnected, "", 0}},
		{"closed + a failover's READONLY replies = closed", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 5 {
					a.failed(a.epoch.Load(), switching, errors.New("READONLY"), false)
				}
			}, want{closed, StatusConnected, "", 0}},
		{"closed + failures from an earlier epoch = unchanged", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 5 {
					a.failed(a.epoch.Load()+7, unreachable, errDown, false)
				}
			}, want{closed, StatusConnected, "", 0}},
		{"closed + a timeout = closed, degraded at once", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) { a.failed(a.epoch.Load(), timedOut, errors.New("i/o timeout"), false) },
			want{closed, StatusDegraded, "timed out", 0}},
		{"closed + error replies and resets = unchanged", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				for range 5 {
					a.failed(a.epoch.Load(), notAnOutage, errors.New("WRONGTYPE"), false)
					a.connectionReset()
				}
			}, want{closed, StatusConnected, "", 0}},
		{"degraded by requests + next clean probe = connected", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				a.failed(a.epoch.Load(), timedOut, errors.New("i/o timeout"), false)
				a.probeSucceeded(a.probeStarted(), fastProbe) // sees the failure
				a.probeSucceeded(a.probeStarted(), fastProbe) // sees none
			}, want{closed, StatusConnected, "", 0}},
		{"probe started before a trip and answering after it does not count", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				ticket := a.probeStarted()
				for range 3 {
					a.failed(a.epoch.Load(), unreachable, errDown, false)
				}
				if a.probeSucceeded(ticket, fastProbe) {
					t.Error("probeSucceeded with a ticket from before the trip = true; want false")
				}
			}, want{open, StatusDisconnected, "refused", 1}},
		{"probe started before a trip and failing after it = open, one epoch", func(t *testing.T) *availability { return closedAvailability(t, false) },
			func(a *availability) {
				ticket := a.probeStarted()
				for range 3 {
					a.failed(a.epoch.Load(), unreachable, errDown, false)
				}
				a.probeFailed(ticket, errDown)
			}, want{open, StatusDisconnected, "refused", 1}},
		{"stopped + probe answers = stays open", func(t *testing.T) *availability { return openAvailability(t, false) },
			func(a *availability) {
				a.stop()
				a.probeSucceeded(a.probeStarted(), fastProbe)
			}, want{open, StatusDisconnected, "", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.start(t)
			before := a.epoch.Load()
			tt.event(a)
			h := a.snapshot()
			if got := a.breaker(); got != tt.want.state {
				t.Errorf("breaker = %s; want %s", got.State(), tt.want.state.State())
			}
			if h.Breaker != a.breaker().State() {
				t.Errorf("Health().Breaker = %s; breaker is %s", h.Breaker, a.breaker().State())
			}
			if h.Status != tt.want.status {
				t.Errorf("Health().Status = %s (reason %q); want %s", h.Status, h.Reason, tt.want.status)
			}
			if tt.want.reason != "" && !strings.Contains(h.Reason, tt.want.reason) {
				t.Errorf("Health().Reason = %q; want it to mention %q", h.Reason, tt.want.reason)
			}
			if got := a.epoch.Load() - before; got != tt.want.epoch {
				t.Errorf("epoch moved by %d; want %d", got, tt.want.epoch)
			}
		})
	}
}

func TestFallbackLifetime(t *testing.T) {
	a := openAvailability(t, true)
	put := func(key string) error {
		return a.withFallback(func(m *memoryTier) error { return m.set(key, json.RawMessage(`1`), 0) })
	}
	has := func(key string) bool {
		var ok bool
		_ = a.withFallback(func(m *memoryTier) error { _, ok = m.get(key); return nil })
		return ok
	}
	if err := put("k1"); err != nil {
		t.Fatalf("fallback write while open = %v", err)
	}
	// Still down, probed and failed, tripped again by late failures: what
	// was acknowledged stays.
	a.probeFailed(a.probeStarted(), errDown)
	for range 3 {
		a.failed(a.epoch.Load(), unreachable, errDown, false)
	}
	if !has("k1") {
		t.Fatal("an acknowledged fallback write was lost while Redis stayed down")
	}
	// A write Redis confirmed (sent before the trip) removes the key's
	// older fallback value.
	_ = put("k2")
	a.confirmed("k2")
	if has("k2") {
		t.Error("fallback still holds k2 after Redis confirmed a later write of it")
	}
	// Confirmed back: emptied, and the fallback no longer answers.
	a.probeSucceeded(a.probeStarted(), fastProbe)
	if n, _ := a.memory.size(); n != 0 {
		t.Errorf("fallback holds %d entries after Redis is back; want 0", n)
	}
	if err := put("k3"); !errors.Is(err, errFallbackInactive) {
		t.Errorf("fallback write while closed = %v; want errFallbackInactive", err)
	}
	if a.snapshot().Fallback.Active {
		t.Error("Health().Fallback.Active while the breaker is closed")
	}
}

func TestFallbackOffInClusterMode(t *testing.T) {
	a := testAvailability(true)
	a.probeSucceeded(a.probeStarted(), probeResult{latency: time.Millisecond, mode: ModeCluster})
	a.probeFailed(a.probeStarted(), errDown)
	err := a.withFallback(func(m *memoryTier) error { return m.set("k", json.RawMessage(`1`), 0) })
	if !errors.Is(err, errFallbackInactive) {
		t.Errorf("fallback write in cluster mode = %v; want errFallbackInactive", err)
	}
	if h := a.snapshot(); h.Fallback.Active || h.Fallback.Off == "" {
		t.Errorf("Health().Fallback = %+v in cluster mode; want inactive, with the reason it is off", h.Fallback)
	}
}

// TestAvailabilityProperties drives the owner with random sequences of
// probe results, request failures, timeouts and resets, and checks after
// every step that Health and the fallback agree with the breaker, and that
// no write the fallback acknowledged disappears before Redis is confirmed
// back.
func TestAvailabilityProperties(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			a := testAvailability(true)
			acked := map[string]bool{} // fallback writes since the breaker last closed
			var pending *probeTicket
			for step := range 200 {
				var did string
				switch rng.IntN(9) {
				case 0:
					tk := a.probeStarted()
					pending, did = &tk, "probe starts"
				case 1:
					if pending == nil {
						continue
					}
					wasRefusing := a.breaker() != closed
					p := fastProbe
					if rng.IntN(3) == 0 {
						p = slowProbe
					}
					if a.probeSucceeded(*pending, p) && wasRefusing {
						clear(acked)
					}
					pending, did = nil, "probe answers"
				case 2:
					if pending == nil {
						continue
					}
					a.probeFailed(*pending, errDown)
					pending, did = nil, "probe fails"
				case 3:
					epoch := a.epoch.Load()
					if rng.IntN(4) == 0 && epoch > 0 {
						epoch-- // a request from before the last trip
					}
					a.failed(epoch, unreachable, errDown, false)
					did = "request cannot reach redis"
				case 4:
					a.failed(a.epoch.Load(), timedOut, errors.New("i/o timeout"), false)
					did = "request times out"
				case 5:
					a.succeeded()
					a.connectionReset()
					did = "request answered, connection reset"
				case 6, 7:
					key := fmt.Sprint("k", rng.IntN(20))
					err := a.withFallback(func(m *memoryTier) error { return m.set(key, json.RawMessage(`1`), 0) })
					if err == nil {
						acked[key] = true
					}
					did = "fallback write " + key
				case 8:
					key := fmt.Sprint("k", rng.IntN(20))
					a.confirmed(key)
					delete(acked, key)
					did = "redis confirms a write of " + key
				}
				h := a.snapshot()
				b := a.breaker()
				refusing := b != closed
				switch {
				case h.Breaker != b.State():
					t.Fatalf("step %d (%s): Health().Breaker = %s; breaker %s", step, did, h.Breaker, b.State())
				case refusing != (h.Status == StatusDisconnected):
					t.Fatalf("step %d (%s): breaker %s with status %s", step, did, b.State(), h.Status)
				case h.Fallback.Active != refusing:
					t.Fatalf("step %d (%s): fallback active = %v with breaker %s", step, did, h.Fallback.Active, b.State())
				case !refusing && h.Fallback.Entries != 0:
					t.Fatalf("step %d (%s): fallback holds %d entries with the breaker closed", step, did, h.Fallback.Entries)
				}
				for key := range acked {
					if _, ok := a.memory.get(key); !ok {
						t.Fatalf("step %d (%s): acknowledged fallback write %s lost before Redis was confirmed back", step, did, key)
					}
				}
			}
		})
	}
}
