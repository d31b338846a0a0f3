package cache

import "time"

// flapWindow is how soon after a recovery line a new departure from
// "connected" is kept out of the log. A Redis that flaps (connections reset
// every few milliseconds, say) then costs a few lines, not two per flap;
// if it stays away longer than this, the departure is logged then.
const flapWindow = 5 * time.Second

// stateLog decides which availability changes get a log line. Health and
// metrics always show every change; only the log is damped.
type stateLog struct {
	reminder time.Duration

	started      bool      // the first state has been logged
	away         bool      // a departure from connected was logged, its recovery not yet
	lastRecovery time.Time // when "connected" was last logged
	lastReminder time.Time
	skipped      int // changes not logged since the last line
}

func rank(s Status) int {
	switch s {
	case StatusConnected:
		return 0
	case StatusDegraded:
		return 1
	}
	return 2
}

// change is called for each status change. It reports whether to log it,
// and how many changes went unlogged before it.
func (s *stateLog) change(from, to Status, now time.Time) (log bool, skipped int) {
	switch {
	case !s.started:
		// The first connection is not a recovery: it opens no flap window.
		s.started = true
		if to == StatusConnected {
			return true, 0
		}
		log = true
	case to == StatusConnected:
		log = s.away
	case rank(to) > rank(from):
		log = s.away || now.Sub(s.lastRecovery) >= flapWindow
	default: // better, but not yet connected
		log = s.away
	}
	if !log {
		s.skipped++
		return false, 0
	}
	return true, s.logged(to, now)
}

// ongoing is called on each probe while Redis is not connected. announce
// says to log a departure that was kept quiet and has now lasted; remind,
// to say again that Redis is still unreachable.
func (s *stateLog) ongoing(status Status, now time.Time) (announce, remind bool, skipped int) {
	switch {
	case !s.away && now.Sub(s.lastRecovery) >= flapWindow:
		return true, false, s.logged(status, now)
	case s.away && status == StatusDisconnected && now.Sub(s.lastReminder) >= s.reminder:
		s.lastReminder = now
		return false, true, 0
	}
	return false, false, 0
}

func (s *stateLog) logged(to Status, now time.Time) (skipped int) {
	skipped, s.skipped = s.skipped, 0
	if to == StatusConnected {
		s.away, s.lastRecovery = false, now
	} else {
		s.away, s.lastReminder = true, now
	}
	return skipped
}
