package cache

import (
	"context"
	"sync"
	"time"
)

// healthPoll is how often the health watch compares Health with what it
// last sent. The availability owner (availability.go) keeps its state in
// atomics that the request path reads without a lock; a poll of them is
// cheaper than a callback on each of its transitions, and a dashboard needs
// no finer grain than this.
const healthPoll = 50 * time.Millisecond

// healthWatch sends Health to its watchers when the status, the breaker,
// or what is known of keyspace notifications changes; never for a probe
// that changed none of them. One goroutine polls, from the first
// WatchHealth to Close.
type healthWatch struct {
	c        *Client
	mu       sync.Mutex
	watchers map[chan Health]struct{}
	last     Health
	started  bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// WatchHealth returns Health now and then again on each change of its
// Status, Breaker or KeyspaceNotifications, until ctx ends; then the
// channel is closed. A watcher that has not read the previous snapshot
// gets only the latest: a dashboard wants the state, not every step.
func (c *Client) WatchHealth(ctx context.Context) <-chan Health {
	hw := c.healthWatch
	ch := make(chan Health, 1)
	ch <- c.Health()
	hw.mu.Lock()
	if hw.watchers == nil {
		hw.watchers = map[chan Health]struct{}{}
	}
	hw.watchers[ch] = struct{}{}
	if !hw.started {
		hw.started = true
		hw.last = c.Health()
		pollCtx, cancel := context.WithCancel(context.Background())
		hw.cancel, hw.done = cancel, make(chan struct{})
		go hw.run(pollCtx)
	}
	hw.mu.Unlock()
	context.AfterFunc(ctx, func() {
		hw.mu.Lock()
		defer hw.mu.Unlock()
		if _, ok := hw.watchers[ch]; ok {
			delete(hw.watchers, ch)
			close(ch)
		}
	})
	return ch
}

func (hw *healthWatch) run(ctx context.Context) {
	defer close(hw.done)
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h := hw.c.Health()
		hw.mu.Lock()
		if h.Status != hw.last.Status || h.Breaker != hw.last.Breaker || h.KeyspaceNotifications != hw.last.KeyspaceNotifications {
			hw.last = h
			for ch := range hw.watchers {
				select {
				case <-ch: // unread: replaced by the latest
				default:
				}
				ch <- h
			}
		}
		hw.mu.Unlock()
	}
}

func (hw *healthWatch) stop() {
	hw.mu.Lock()
	started := hw.started
	hw.mu.Unlock()
	if started {
		hw.cancel()
		<-hw.done
	}
	hw.mu.Lock()
	defer hw.mu.Unlock()
	for ch := range hw.watchers {
		close(ch)
	}
	clear(hw.watchers)
}
