package cache

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Keyspace notifications in a Redis Cluster.
//
// A node sends keyspace notifications only to its own subscribers, and only
// for the keys it holds: Redis does not broadcast them over the cluster bus
// (classic PUBLISH it does broadcast), and it has no sharded form of them.
// So the hub keeps, beside its one subscription to the service's channel, a
// PSUBSCRIBE of the keyspace pattern on every master, and follows the
// masters as they change (failover, a node added or removed): the set of
// masters is read again with CLUSTER SLOTS every ProbeInterval, and at once
// after a master's subscription breaks. Replicas are left out: they apply
// their master's writes and would send the same events a second time (an
// expiry as a "del").
//
// The service's own channel stays classic pub/sub, not sharded (SPUBLISH
// and SSUBSCRIBE): one subscription on any node hears every instance's
// announcements, whatever the slots of the keys, where sharded pub/sub
// would pin the whole service's traffic to the one shard that owns the
// channel's slot and move it on every resharding of that slot. The cost is
// that the cluster bus carries each announcement to every node.
//
// A master's subscription that breaks while the hub's session lasts loses
// that master's expiries, evictions and other programs' writes until it
// is made again (on the same node or the replica promoted in its place):
// every watcher then gets one RESYNC dated from the break.

// clusterKeyspace holds the keyspace subscriptions of every master until
// ctx ends. first is called once, when the first round of subscriptions is
// confirmed or has failed, so that the hub reports itself live only once
// the masters it could reach are heard.
func (h *changeHub) clusterKeyspace(ctx context.Context, vk *valkeyClient, first func()) {
	type sub struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	subs := map[string]*sub{}
	ended := make(chan string, 1)
	defer func() {
		for _, s := range subs {
			s.cancel()
			<-s.done
		}
	}()
	var firstOnce sync.Once
	tick := time.NewTicker(h.c.opts.ProbeInterval)
	defer tick.Stop()
	for attempt := 0; ; {
		masters, err := clusterMasters(ctx, vk, h.c.opts.CommandTimeout)
		var round sync.WaitGroup
		if err == nil {
			attempt = 0
			for addr, s := range subs {
				if !masters[addr] {
					s.cancel()
					<-s.done
					delete(subs, addr)
				}
			}
			nodes := vk.Nodes()
			for addr := range masters {
				node, ok := nodes[addr]
				if _, running := subs[addr]; running || !ok {
					continue
				}
				sctx, cancel := context.WithCancel(ctx)
				s := &sub{cancel: cancel, done: make(chan struct{})}
				subs[addr] = s
				round.Add(1)
				go func() {
					defer close(s.done)
					h.keyspaceSession(sctx, node, round.Done)
					if sctx.Err() == nil {
						select {
						case ended <- addr:
						case <-ctx.Done():
						}
					}
				}()
			}
		} else {
			attempt++
		}
		round.Wait()
		firstOnce.Do(first)
		var retry <-chan time.Time
		if err != nil {
			retry = time.After(h.c.backoff(attempt))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-retry:
		case addr := <-ended:
			if s := subs[addr]; s != nil {
				<-s.done
				delete(subs, addr)
			}
			// A break may be a failover: give the cluster a moment to
			// promote a replica before asking who the masters are.
			select {
			case <-ctx.Done():
				return
			case <-time.After(h.c.backoff(0)):
			}
		}
	}
}

// keyspaceSession makes one keyspace subscription on node and holds it
// until its connection breaks or ctx ends. confirmed is called once,
// whether the subscription was made or not.
func (h *changeHub) keyspaceSession(ctx context.Context, node valkey.Client, confirmed func()) {
	var confirmOnce sync.Once
	defer confirmOnce.Do(confirmed)
	dc, release := node.Dedicate()
	defer release()
	pattern := globEscape(h.c.keyspacePrefix()) + "*"
	ok := make(chan struct{})
	var once sync.Once
	wait := dc.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: h.received,
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "psubscribe" {
				once.Do(func() { close(ok) })
			}
		},
	})
	subCtx, cancel := context.WithTimeout(ctx, h.c.opts.DialTimeout+h.c.opts.CommandTimeout)
	err := dc.Do(subCtx, dc.B().Psubscribe().Pattern(pattern).Build()).Error()
	if err == nil {
		select {
		case <-ok:
		case <-wait:
			err = errors.New("subscription closed")
		case <-subCtx.Done():
			err = subCtx.Err()
		}
	}
	cancel()
	if err != nil {
		return
	}
	h.keyspaceSubscribed()
	confirmOnce.Do(confirmed)
	select {
	case <-wait:
		if ctx.Err() == nil {
			h.keyspaceBroken()
		}
	case <-ctx.Done():
	}
}

// clusterMasters asks one node which nodes are masters (CLUSTER SLOTS: the
// first node of each slot range), as addresses in the form valkey-go's
// Nodes uses.
func clusterMasters(ctx context.Context, vk *valkeyClient, timeout time.Duration) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ranges, err := vk.Do(ctx, vk.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, err
	}
	masters := map[string]bool{}
	for _, r := range ranges {
		fields, err := r.ToArray()
		if err != nil || len(fields) < 3 {
			continue
		}
		node, err := fields[2].ToArray()
		if err != nil || len(node) < 2 {
			continue
		}
		host, err1 := node[0].ToString()
		port, err2 := node[1].AsInt64()
		if err1 != nil || err2 != nil || host == "" || host == "?" {
			continue
		}
		masters[net.JoinHostPort(host, strconv.FormatInt(port, 10))] = true
	}
	if len(masters) == 0 {
		return nil, errors.New("CLUSTER SLOTS names no master")
	}
	return masters, nil
}

// keyspaceBroken: a master's keyspace subscription broke while the hub's
// session lasts; what it would have sent since it was last heard may be
// lost.
func (h *changeHub) keyspaceBroken() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keyspaceMissed.IsZero() {
		h.keyspaceMissed = h.aliveAt
	}
}

// keyspaceSubscribed: a master's keyspace subscription is made. After a
// break every watcher gets its RESYNC.
func (h *changeHub) keyspaceSubscribed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keyspaceMissed.IsZero() || !h.live {
		// Not live: the hub's own subscription is being made again, and
		// its RESYNC (subscribed) covers this break too.
		return
	}
	resync := &Change{Kind: ChangeResync, At: h.keyspaceMissed}
	h.keyspaceMissed = time.Time{}
	for w := range h.watchers {
		h.offer(w, resync, "reconnect")
	}
}
