package graph

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// Changes is what the subscription resolvers need from the cache;
// *cache.Client implements it.
type Changes interface {
	Watch(ctx context.Context, filter cache.WatchFilter) (<-chan *cache.Change, error)
	WatchSink(ctx context.Context, filter cache.WatchFilter, s cache.Sink) error
	WatchSinkAsync(ctx context.Context, filter cache.WatchFilter, s cache.Sink) error
	WatchHealth(ctx context.Context) <-chan cache.Health
}

var _ Changes = (*cache.Client)(nil)

var changeKinds = map[cache.ChangeKind]model.CacheChangeKind{
	cache.ChangeSet:         model.CacheChangeKindSet,
	cache.ChangeDelete:      model.CacheChangeKindDelete,
	cache.ChangeExpired:     model.CacheChangeKindExpired,
	cache.ChangeEvicted:     model.CacheChangeKindEvicted,
	cache.ChangeInvalidated: model.CacheChangeKindInvalidated,
	cache.ChangeIncremented: model.CacheChangeKindIncremented,
	cache.ChangeTTL:         model.CacheChangeKindTTLChanged,
	cache.ChangeResync:      model.CacheChangeKindResync,
}

// subscription admits one subscription on the socket in ctx: only over a
// WebSocket of the registry (gqlgen would otherwise answer a subscription
// sent by POST with its first event, holding the request open until then),
// within the socket's bound.
func (r *Resolver) subscription(ctx context.Context, field string) (func(), error) {
	sock := socketFrom(ctx)
	if sock == nil {
		return nil, coded(codeSubscriptionsOff, "subscriptions are served over WebSocket only (graphql-transport-ws at /graphql)")
	}
	if r.Changes == nil {
		return nil, coded(codeSubscriptionsOff, "subscriptions are off on this instance")
	}
	return sock.hold(field)
}

func (r *Resolver) cacheChanged(ctx context.Context, keys []string, prefix *string, tags []string, withValue bool) (<-chan *model.CacheChange, error) {
	sock := socketFrom(ctx)
	if sock != nil {
		if max := sock.reg.opts.MaxKeys; len(keys) > max || len(tags) > max {
			return nil, coded(codeSubscriptionLimit, "a subscription may name at most %d keys and %d tags (SUBSCRIPTION_MAX_KEYS)", max, max)
		}
	}
	end, err := r.subscription(ctx, "cacheChanged")
	if err != nil {
		return nil, err
	}
	f := cache.WatchFilter{Keys: keys, Tags: tags}
	if prefix != nil {
		if *prefix == "" {
			end()
			return nil, badInput("prefix must not be empty")
		}
		f.Prefix = *prefix
	}
	if !withValue {
		// The usual case, and the one that comes by the thousand: the
		// hub queues the events on the channel gqlgen reads.
		q := newEventQueue(sock)
		if err := r.Changes.WatchSink(ctx, f, q); err != nil {
			end()
			return nil, watchError(err)
		}
		context.AfterFunc(ctx, end)
		return q.ch, nil
	}
	// With values, each event waits for a read of Redis: that needs a
	// goroutine of its own, between the hub and gqlgen.
	changes, err := r.Changes.Watch(ctx, f)
	if err != nil {
		end()
		return nil, watchError(err)
	}
	obs := sock.reg.opts.Observer
	out := make(chan *model.CacheChange)
	go func() {
		defer end()
		defer close(out)
		slow := time.NewTimer(sock.reg.opts.SlowTimeout)
		defer slow.Stop()
		for x := range changes {
			m := changeModel(x)
			if x.Kind == cache.ChangeSet || x.Kind == cache.ChangeIncremented {
				if v, _, err := r.Cache.Get(ctx, x.Key); err == nil && v != nil {
					withV := *m
					withV.Value = model.JSON(v)
					m = &withV
				}
			}
			slow.Reset(sock.reg.opts.SlowTimeout)
			select {
			case out <- m:
				obs.ObserveEvent("cacheChanged")
			case <-slow.C:
				// gqlgen's write to the socket is blocked: the client
				// reads nothing. The watch ends with the socket.
				sock.tooSlow()
			case <-ctx.Done():
				// The watch ends with ctx and closes changes.
			}
		}
	}()
	return out, nil
}

func watchError(err error) error {
	if errors.Is(err, cache.ErrChangesOff) {
		return coded(codeSubscriptionsOff, "change notifications are off on this instance (SUBSCRIPTIONS_ENABLED=false)")
	}
	return err
}

// changeModel is a change as the schema has it (without a value).
func changeModel(x *cache.Change) *model.CacheChange {
	m := &model.CacheChange{Key: x.Key, Kind: changeKinds[x.Kind], At: x.At.UTC().Format(time.RFC3339Nano), Tags: x.Tags}
	if m.Tags == nil {
		m.Tags = []string{}
	}
	if x.ETag != "" {
		m.Etag = &x.ETag
	}
	return m
}

// convertedChange is the last change an eventQueue turned into its model:
// the hub offers one change to every watcher it matches in turn, so all
// but the first of them find it here and share the model (gqlgen only
// reads it).
type convertedChange struct {
	change *cache.Change
	model  *model.CacheChange
}

// eventQueue is a cacheChanged subscription's queue (a cache.Sink): the
// channel gqlgen reads, filled by the hub's fan-out. No goroutine of the
// service stands between them, so a subscription costs gqlgen's goroutine
// and this queue. A client that takes nothing is seen when its queue
// overflows: if it has still taken nothing SlowTimeout later, the socket
// is closed (1008).
type eventQueue struct {
	sock *socket
	ch   chan *model.CacheChange
	// queued and drained count what the hub put in and took back (taken
	// by gqlgen = queued - drained - len(ch)).
	queued, drained atomic.Uint64
	watching        atomic.Bool // a slow check is armed
}

func newEventQueue(sock *socket) *eventQueue {
	return &eventQueue{sock: sock, ch: make(chan *model.CacheChange, sock.reg.opts.Queue)}
}

func (q *eventQueue) taken() uint64 {
	return q.queued.Load() - q.drained.Load() - uint64(len(q.ch))
}

func (q *eventQueue) Offer(x *cache.Change) bool {
	last := &q.sock.reg.lastChange
	var m *model.CacheChange
	if c := last.Load(); c != nil && c.change == x {
		m = c.model
	} else {
		m = changeModel(x)
		last.Store(&convertedChange{change: x, model: m})
	}
	select {
	case q.ch <- m:
		q.queued.Add(1)
		q.sock.reg.opts.Observer.ObserveEvent("cacheChanged")
		return true
	default:
		return false
	}
}

func (q *eventQueue) Drain() (int, time.Time) {
	n, oldest := 0, time.Time{}
	for drained := false; !drained; {
		select {
		case m := <-q.ch:
			n++
			if at, err := time.Parse(time.RFC3339Nano, m.At); err == nil && (oldest.IsZero() || at.Before(oldest)) {
				oldest = at
			}
		default:
			drained = true
		}
	}
	q.drained.Add(uint64(n))
	if q.watching.CompareAndSwap(false, true) {
		before := q.taken()
		time.AfterFunc(q.sock.reg.opts.SlowTimeout, func() {
			if q.taken() == before && len(q.ch) > 0 {
				q.sock.tooSlow()
			}
			q.watching.Store(false)
		})
	}
	return n, oldest
}

func (q *eventQueue) Close() { close(q.ch) }

var _ cache.Sink = (*eventQueue)(nil)

func (r *Resolver) redisHealthChanged(ctx context.Context) (<-chan *model.RedisHealth, error) {
	end, err := r.subscription(ctx, "redisHealthChanged")
	if err != nil {
		return nil, err
	}
	obs := socketFrom(ctx).reg.opts.Observer
	health := r.Changes.WatchHealth(ctx)
	out := make(chan *model.RedisHealth)
	go func() {
		defer end()
		defer close(out)
		for h := range health {
			select {
			case out <- healthModel(h):
				obs.ObserveEvent("redisHealthChanged")
			case <-ctx.Done():
			}
		}
	}()
	return out, nil
}
