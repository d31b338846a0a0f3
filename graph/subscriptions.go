package graph

import (
	"context"
	"errors"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// Changes is what the subscription resolvers need from the cache;
// *cache.Client implements it.
type Changes interface {
	Watch(ctx context.Context, filter cache.WatchFilter) (<-chan *cache.Change, error)
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
	changes, err := r.Changes.Watch(ctx, f)
	if err != nil {
		end()
		if errors.Is(err, cache.ErrChangesOff) {
			return nil, coded(codeSubscriptionsOff, "change notifications are off on this instance (SUBSCRIPTIONS_ENABLED=false)")
		}
		return nil, err
	}
	obs := sock.reg.opts.Observer
	out := make(chan *model.CacheChange)
	go func() {
		defer end()
		defer close(out)
		slow := time.NewTimer(sock.reg.opts.SlowTimeout)
		defer slow.Stop()
		for x := range changes {
			m := &model.CacheChange{Key: x.Key, Kind: changeKinds[x.Kind], At: x.At.UTC().Format(time.RFC3339Nano), Tags: x.Tags}
			if m.Tags == nil {
				m.Tags = []string{}
			}
			if x.ETag != "" {
				m.Etag = &x.ETag
			}
			if withValue && (x.Kind == cache.ChangeSet || x.Kind == cache.ChangeIncremented) {
				if v, _, err := r.Cache.Get(ctx, x.Key); err == nil && v != nil {
					m.Value = model.JSON(v)
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
