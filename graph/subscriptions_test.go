package graph

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
)

type slowCount struct {
	nopSubscriptionObserver
	slow atomic.Int32
}

func (o *slowCount) ObserveSocketRefused(reason string) {
	if reason == "slow" {
		o.slow.Add(1)
	}
}

// The queue the hub fills for a cacheChanged subscription: one model per
// change however many queues it goes to, the oldest dropped change's time
// for the RESYNC, and a socket whose client takes nothing after an
// overflow is closed as too slow, one that takes something is not.
func TestEventQueue(t *testing.T) {
	newQueue := func(obs *slowCount) *eventQueue {
		reg := NewSockets()
		reg.opts = SubscriptionOptions{Queue: 3, SlowTimeout: 100 * time.Millisecond, Observer: obs}.withDefaults()
		return newEventQueue(&socket{reg: reg})
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	change := func(i int) *cache.Change {
		return &cache.Change{Key: "k", Kind: cache.ChangeSet, At: at.Add(time.Duration(i) * time.Second)}
	}

	t.Run("shares the model of a change", func(t *testing.T) {
		obs := &slowCount{}
		a, b := newQueue(obs), newQueue(obs)
		b.sock.reg = a.sock.reg
		x := change(0)
		if !a.Offer(x) || !b.Offer(x) {
			t.Fatal("Offer to an empty queue = false")
		}
		if ma, mb := <-a.ch, <-b.ch; ma != mb || ma.Key != "k" || ma.Kind != "SET" || ma.At != "2026-01-02T03:04:05.0000006Z" {
			t.Errorf("models %p %+v and %p %+v; want one, SET k at 2026-01-02T03:04:05.0000006Z", ma, ma, mb, mb)
		}
	})

	t.Run("slow after an overflow when nothing is taken", func(t *testing.T) {
		obs := &slowCount{}
		q := newQueue(obs)
		for i := 2; i >= 0; i-- {
			if !q.Offer(change(i)) {
				t.Fatalf("Offer(%d) = false on a queue of 3", i)
			}
		}
		if q.Offer(change(3)) {
			t.Fatal("Offer to a full queue = true")
		}
		if n, oldest := q.Drain(); n != 3 || !oldest.Equal(at) {
			t.Errorf("Drain() = %d, %s; want 3, %s", n, oldest, at)
		}
		q.Offer(&cache.Change{Kind: cache.ChangeResync, At: at})
		time.Sleep(300 * time.Millisecond)
		if got := obs.slow.Load(); got != 1 {
			t.Errorf("slow closes = %d; want 1", got)
		}
	})

	t.Run("not slow when it takes an event meanwhile", func(t *testing.T) {
		obs := &slowCount{}
		q := newQueue(obs)
		for i := range 3 {
			q.Offer(change(i))
		}
		q.Drain()
		q.Offer(&cache.Change{Kind: cache.ChangeResync, At: at})
		q.Offer(change(4))
		<-q.ch
		time.Sleep(300 * time.Millisecond)
		if got := obs.slow.Load(); got != 0 {
			t.Errorf("slow closes = %d; want 0", got)
		}
	})
}
