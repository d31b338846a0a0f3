package cache

import (
	"testing"
	"time"
)

func TestStateLogDampsFlapping(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		from, to Status
		at       time.Duration
		wantLog  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"outage and recovery are both logged", []step{
			{StatusConnected, StatusDisconnected, time.Second, true},
			{StatusDisconnected, StatusConnected, 2 * time.Second, true},
		}},
		{"a recovery from a departure that was not logged is not logged", []step{
			{StatusConnected, StatusDisconnected, 0, true},
			{StatusDisconnected, StatusConnected, time.Second, true},
			{StatusConnected, StatusDisconnected, 2 * time.Second, false},
			{StatusDisconnected, StatusConnected, 3 * time.Second, false},
		}},
		{"a flap right after a recovery is quiet, both ways", []step{
			{StatusConnected, StatusDisconnected, 0, true},
			{StatusDisconnected, StatusConnected, 50 * time.Millisecond, true},
			{StatusConnected, StatusDisconnected, 100 * time.Millisecond, false},
			{StatusDisconnected, StatusConnected, 150 * time.Millisecond, false},
			{StatusConnected, StatusDegraded, 200 * time.Millisecond, false},
			{StatusDegraded, StatusConnected, 250 * time.Millisecond, false},
		}},
		{"a departure after the window is logged again", []step{
			{StatusConnected, StatusDisconnected, 0, true},
			{StatusDisconnected, StatusConnected, time.Second, true},
			{StatusConnected, StatusDisconnected, time.Second + flapWindow, true},
		}},
		{"worsening after a logged degradation is logged", []step{
			{StatusConnected, StatusDegraded, 0, true},
			{StatusDegraded, StatusDisconnected, 100 * time.Millisecond, true},
			{StatusDisconnected, StatusConnected, 200 * time.Millisecond, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateLog{reminder: time.Minute, started: true}
			for i, st := range tt.steps {
				if got, _ := s.change(st.from, st.to, at(st.at)); got != st.wantLog {
					t.Errorf("step %d (%s -> %s at %s): log = %v; want %v", i, st.from, st.to, st.at, got, st.wantLog)
				}
			}
		})
	}
}

func TestStateLogAnnouncesAQuietOutageThatLasts(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	s := stateLog{reminder: time.Minute, started: true}
	s.change(StatusConnected, StatusDisconnected, t0)
	s.change(StatusDisconnected, StatusConnected, t0.Add(time.Second))
	if log, _ := s.change(StatusConnected, StatusDisconnected, t0.Add(2*time.Second)); log {
		t.Fatal("a departure 1s after a recovery was logged; want it quiet")
	}
	if announce, _, _ := s.ongoing(StatusDisconnected, t0.Add(3*time.Second)); announce {
		t.Error("announced 2s after the recovery; want to wait for the flap window")
	}
	announce, _, skipped := s.ongoing(StatusDisconnected, t0.Add(time.Second+flapWindow))
	if !announce || skipped != 1 {
		t.Errorf("ongoing() after the window = announce %v, skipped %d; want true, 1", announce, skipped)
	}
	if _, remind, _ := s.ongoing(StatusDisconnected, t0.Add(time.Second+flapWindow+time.Minute)); !remind {
		t.Error("no reminder a minute into the outage")
	}
}
