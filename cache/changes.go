package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Changes: every write this service makes to a caller's key is announced on
// a pub/sub channel in the service's own namespace, and Watch hands the
// announcements, from every instance on the same Redis, to Go callers.
//
// Why this shape:
//
//   - One subscription connection per process (a dedicated valkey-go
//     connection, PSUBSCRIBE), whatever the number of watchers: Redis sees
//     one subscriber per instance, and a watcher costs a channel and a map
//     entry, no connection and no goroutine. In a Cluster, one more per
//     master, for keyspace notifications (changes_cluster.go says why).
//   - Redis pub/sub is at-most-once. A message published while this
//     instance's subscription connection is broken is lost for it, and a
//     watcher that does not keep up cannot be waited for without holding up
//     the others. Both cases are told to the watcher instead of hidden: a
//     Change of kind ChangeResync says that changes may have been missed
//     since its At, so that the caller reads again. A watcher gets exactly
//     one RESYNC per break of the connection (when the subscription is back),
//     and one per overflow of its queue (which replaces what was queued).
//   - Keyspace notifications (notify-keyspace-events, set by the operator,
//     never by this service) add what the service cannot announce itself:
//     expiries, evictions, and writes by other programs. The service's own
//     writes would then arrive twice, once from Redis and once from the
//     service; the service's announcement is preferred (it carries the
//     ETag, the tags and the kind of operation), so a keyspace write event
//     is held for keyspaceHold and dropped when the service's announcement
//     of the same key arrives meanwhile. Expiries and evictions are never
//     held. A service announcement later than keyspaceHold (a Redis under
//     heavy load) shows up as a second event for the same write, never as
//     a lost one.
//
// The hub below is the one owner of this state: the subscription's state
// (subscribed or not, and since when changes may have been lost), the
// watchers, their queues and the held keyspace events. Every transition
// happens under its mutex, in the methods named after the event.

// ChangeKind says what happened to a key.
type ChangeKind string

const (
	// ChangeSet: the key was written (a set, a set-many entry, a lease
	// fill, or a write by another program seen through keyspace
	// notifications).
	ChangeSet ChangeKind = "SET"
	// ChangeDelete: the key was deleted.
	ChangeDelete ChangeKind = "DELETE"
	// ChangeExpired: the key's TTL ran out (keyspace notifications only).
	ChangeExpired ChangeKind = "EXPIRED"
	// ChangeEvicted: Redis evicted the key under its maxmemory policy
	// (keyspace notifications only).
	ChangeEvicted ChangeKind = "EVICTED"
	// ChangeInvalidated: the key was deleted by InvalidateTags; Tags holds
	// the tag.
	ChangeInvalidated ChangeKind = "INVALIDATED"
	// ChangeIncremented: the counter at the key was incremented.
	ChangeIncremented ChangeKind = "INCREMENTED"
	// ChangeTTL: the key's TTL was set or removed (Expire); its value did
	// not change.
	ChangeTTL ChangeKind = "TTL_CHANGED"
	// ChangeResync: changes may have been missed since At (the
	// subscription connection to Redis broke, or the watcher's queue
	// overflowed). Key is empty; the watcher should read again what it
	// shows.
	ChangeResync ChangeKind = "RESYNC"
)

// Change is one change of a key, as Watch delivers it.
type Change struct {
	Key  string
	Kind ChangeKind
	// ETag is the new value's ETag for SET and INCREMENTED by this
	// service; empty otherwise (a keyspace notification carries no value).
	ETag string
	// At is when the instance that made the change announced it, or when
	// this instance received a keyspace notification; for RESYNC, the time
	// from which changes may have been missed.
	At time.Time
	// Tags are the tags the write carried (SET), or the tag invalidated
	// (INVALIDATED).
	Tags []string
}

// WatchFilter selects the changes a watcher gets: those of any key in
// Keys, of any key starting with Prefix, or carrying any of Tags (a write
// with the tag, or an invalidation of it). At least one must be set.
// RESYNC is delivered to every watcher.
type WatchFilter struct {
	Keys   []string
	Prefix string
	Tags   []string
}

// MaxWatchKeys is the most keys (and, separately, tags) one watcher may
// name.
const MaxWatchKeys = 1000

// DefaultWatchQueue is a watcher's queue length when Options.WatchQueue is
// zero.
const DefaultWatchQueue = 256

// ErrChangesOff is Watch's error when Options.DisableChanges is set.
var ErrChangesOff = errors.New("cache: change notifications are off (Options.DisableChanges)")

// KeyspaceNotifications says whether Redis sends keyspace notifications
// that give expiries, evictions and other programs' writes.
type KeyspaceNotifications string

const (
	// KeyspaceOn: notify-keyspace-events has K and the classes for
	// string, generic, expired and evicted events (for example "KEA").
	KeyspaceOn KeyspaceNotifications = "on"
	// KeyspaceOff: notify-keyspace-events is set without them (the
	// default is empty).
	KeyspaceOff KeyspaceNotifications = "off"
	// KeyspaceUnknown: not yet known, or CONFIG GET is refused (managed
	// services often rename or forbid CONFIG). The subscription is made
	// anyway: if Redis sends them, they are used.
	KeyspaceUnknown KeyspaceNotifications = "unknown"
)

// keyspaceHold is how long a keyspace write event waits for the service's
// own announcement of the same key before it is delivered as another
// program's write.
const keyspaceHold = 25 * time.Millisecond

// changesChannelName is the channel's name inside the service's namespace:
// like every internal name it has a space, which no caller's key can.
const changesChannelName = "changes"

// ChangeObserver, when Options.Observer implements it too, counts what
// the change hub does, for metrics.
type ChangeObserver interface {
	// ObserveChangeDropped reports n changes dropped from a watcher's full
	// queue (replaced by one RESYNC).
	ObserveChangeDropped(n int)
	// ObserveResync reports one RESYNC queued for a watcher; reason is
	// "overflow", "reconnect" or "lost" (an instance could not publish
	// some of its changes).
	ObserveResync(reason string)
}

// wireChange is a Change as published: short names, since every write
// sends one.
type wireChange struct {
	Key  string     `json:"k"`
	Kind ChangeKind `json:"t"`
	ETag string     `json:"e,omitempty"`
	At   int64      `json:"a"` // Unix microseconds
	Tags []string   `json:"g,omitempty"`
}

// changesChannel is the Redis channel every instance publishes to and
// subscribes to.
func (c *Client) changesChannel() string { return c.internalKey(changesChannelName) }

// keyspacePrefix is the start of the keyspace notification channel of
// every key under the prefix.
func (c *Client) keyspacePrefix() string {
	return "__keyspace@" + strconv.Itoa(c.opts.DB) + "__:" + c.opts.KeyPrefix
}

// publish announces changes that Redis confirmed. The write does not wait
// for it: the changes go into the publisher's queue (publisher.go), which
// keeps their order. Nothing is published for the fallback tier: its
// values are this process's own. (ctx and vk are the write's; the
// publisher uses its own.)
func (c *Client) publish(_ context.Context, _ *valkeyClient, changes ...Change) {
	if c.opts.DisableChanges || len(changes) == 0 {
		return
	}
	c.publisher.enqueue(changes)
}

// clientKey is the caller's key of a Redis key, or false for a key outside
// the prefix or one of the service's own.
func (c *Client) clientKey(rk string) (string, bool) {
	k, ok := strings.CutPrefix(rk, c.opts.KeyPrefix)
	return k, ok && checkKey(k) == nil
}

// Watch returns the changes matching filter, from every instance on this
// Redis, until ctx ends; then the channel is closed. It waits (within the
// dial and command timeouts) for the subscription connection when this is
// the process's first watcher, so that a change made after Watch returns
// reaches the watcher; when Redis cannot be reached it returns anyway, and
// the watcher gets one RESYNC once the subscription is made. The queue
// holds Options.WatchQueue changes; a watcher that falls further behind
// loses what was queued and gets one RESYNC in its place.
//
// A Change is shared by every watcher it goes to (one copy however many
// watch it, and a queue slot is a pointer): treat it as read-only.
func (c *Client) Watch(ctx context.Context, filter WatchFilter) (<-chan *Change, error) {
	q := changeQueue(make(chan *Change, c.opts.WatchQueue))
	if err := c.WatchSink(ctx, filter, q); err != nil {
		return nil, err
	}
	return q, nil
}

// A Sink is a watcher's queue, kept by the caller of WatchSink: the hub
// puts each matching change into it straight from its fan-out, with no
// goroutine between, so that a caller holding many watchers (a
// subscription server) can queue them as its own type of event, on the
// channel its consumer reads. Its methods are called one at a time, under
// the hub's lock: they must be quick, must not block and must not call the
// Client.
type Sink interface {
	// Offer queues x, or reports false when the queue is full.
	Offer(x *Change) bool
	// Drain empties the queue to make room for one RESYNC, and reports how
	// many changes it dropped and the At of the oldest of them (zero when
	// none). The RESYNC that follows must find room.
	Drain() (dropped int, oldest time.Time)
	// Close: no change will follow (ctx ended, or the Client closed).
	Close()
}

// WatchSink is Watch into the caller's own queue (see Sink): the same
// filter, RESYNCs and waiting for the subscription, until ctx ends; then
// the hub calls s.Close.
func (c *Client) WatchSink(ctx context.Context, filter WatchFilter, s Sink) error {
	wait, err := c.watchSink(ctx, filter, s)
	if err == nil && wait != nil {
		wait()
	}
	return err
}

// WatchSinkAsync is WatchSink without the wait: the watcher is registered
// when it returns, and when the subscription is not live yet the wait
// (for it, within the dial and command timeouts) happens in a goroutine
// of its own, with the same outcome: the watcher gets one RESYNC unless
// the subscription comes within the wait. For a caller that must not
// block on Redis, such as a socket's reader.
func (c *Client) WatchSinkAsync(ctx context.Context, filter WatchFilter, s Sink) error {
	wait, err := c.watchSink(ctx, filter, s)
	if err == nil && wait != nil {
		go wait()
	}
	return err
}

// watchSink checks the filter and registers the watcher; wait, when not
// nil, waits for the subscription.
func (c *Client) watchSink(ctx context.Context, filter WatchFilter, s Sink) (wait func(), _ error) {
	if c.opts.DisableChanges {
		return nil, ErrChangesOff
	}
	if err := checkFilter(filter); err != nil {
		return nil, err
	}
	w := &watcher{sink: s, prefix: filter.Prefix}
	if len(filter.Keys) > 0 {
		w.keys = make(map[string]struct{}, len(filter.Keys))
		for _, k := range filter.Keys {
			w.keys[k] = struct{}{}
		}
	}
	if len(filter.Tags) > 0 {
		w.tags = make(map[string]struct{}, len(filter.Tags))
		for _, t := range filter.Tags {
			w.tags[t] = struct{}{}
		}
	}
	h := c.changes
	ready := h.add(w)
	context.AfterFunc(ctx, func() { h.remove(w) })
	if ready == nil {
		return nil, nil
	}
	return func() {
		t := time.NewTimer(c.opts.DialTimeout + c.opts.CommandTimeout)
		defer t.Stop()
		select {
		case <-ready:
		case <-t.C:
		case <-ctx.Done():
		}
		h.waited(w)
	}, nil
}

// changeQueue is Watch's Sink: a buffered channel of the hub's changes.
type changeQueue chan *Change

func (q changeQueue) Offer(x *Change) bool {
	select {
	case q <- x:
		return true
	default:
		return false
	}
}

func (q changeQueue) Drain() (int, time.Time) {
	n, oldest := 0, time.Time{}
	for {
		select {
		case old := <-q:
			n++
			if oldest.IsZero() || old.At.Before(oldest) {
				oldest = old.At
			}
		default:
			return n, oldest
		}
	}
}

func (q changeQueue) Close() { close(q) }

func checkFilter(f WatchFilter) error {
	switch {
	case len(f.Keys) == 0 && f.Prefix == "" && len(f.Tags) == 0:
		return fmt.Errorf("%w: watch at least one key, a prefix or a tag", ErrInvalidInput)
	case len(f.Keys) > MaxWatchKeys:
		return fmt.Errorf("%w: %d keys; the limit is %d", ErrInvalidInput, len(f.Keys), MaxWatchKeys)
	case len(f.Tags) > MaxWatchKeys:
		return fmt.Errorf("%w: %d tags; the limit is %d", ErrInvalidInput, len(f.Tags), MaxWatchKeys)
	}
	for _, k := range f.Keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	for _, t := range f.Tags {
		if err := checkKey(t); err != nil {
			return fmt.Errorf("tag %q: %w", t, err)
		}
	}
	if f.Prefix != "" {
		if err := checkKey(f.Prefix); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
	}
	return nil
}

// watcher is one Watch: its filter and its queue. Only the hub offers to
// sink, under its mutex; the hub closes it when the watcher is removed.
type watcher struct {
	keys   map[string]struct{}
	prefix string
	tags   map[string]struct{}
	sink   Sink
	// missedSince is set while changes may be being missed (the
	// subscription is not live): RESYNC, with it as At, is due once it is.
	missedSince time.Time
	// waiting: Watch is still waiting for the subscription; if it comes
	// meanwhile, the watcher has missed nothing it was promised.
	waiting bool
	removed bool
	// seen is the index's epoch of the last delivery that reached it.
	seen uint64
}

// changeHub owns the subscription connection and the watchers (see the
// comment at the top of this file).
type changeHub struct {
	c   *Client
	obs ChangeObserver

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	// index finds the watchers of a change (watchindex.go).
	index watcherIndex
	// started: the subscription loop runs (from the first Watch to Close).
	started bool
	// live: the subscription is confirmed; ready is closed when it
	// becomes so, and replaced when it breaks.
	live  bool
	ready chan struct{}
	// aliveAt is the last moment the subscription was known to carry
	// everything: when it was confirmed, or its last message. A break
	// loses what was published after it, at worst.
	aliveAt time.Time
	notify  KeyspaceNotifications
	// keyspaceMissed is set while a cluster master's keyspace
	// subscription is broken (changes_cluster.go): the time from which
	// its events may be lost.
	keyspaceMissed time.Time
	// held are keyspace write events waiting for the service's own
	// announcement (keyspaceHold), in arrival order; heldByKey indexes
	// them.
	held      []*heldChange
	heldByKey map[string][]*heldChange
	flush     *time.Timer
	// echoes are announcements, in a Cluster, whose keyspace echo had not
	// arrived yet (see announced), in arrival order; echoesByKey counts
	// the unexpired, unused ones of each key.
	echoes      []*dueEcho
	echoesByKey map[string]int

	cancel context.CancelFunc
	done   chan struct{}
}

type heldChange struct {
	change   *Change
	deadline time.Time
	dropped  bool
}

type dueEcho struct {
	key      string
	deadline time.Time
	used     bool
}

func newChangeHub(c *Client) *changeHub {
	h := &changeHub{c: c, watchers: map[*watcher]struct{}{}, index: newWatcherIndex(), ready: make(chan struct{}), notify: KeyspaceUnknown, heldByKey: map[string][]*heldChange{}, echoesByKey: map[string]int{}}
	h.obs, _ = c.opts.Observer.(ChangeObserver)
	return h
}

// add registers w, starting the subscription loop on the first watcher.
// It returns a channel closed when the subscription is live, or nil when
// it already is.
func (h *changeHub) add(w *watcher) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[w] = struct{}{}
	h.index.add(w)
	if !h.started {
		h.started = true
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done = cancel, make(chan struct{})
		go h.run(ctx)
	}
	if h.live {
		return nil
	}
	w.missedSince = time.Now()
	w.waiting = true
	return h.ready
}

// waited: Watch stopped waiting for the subscription. If it did not come,
// the watcher keeps its missedSince and gets RESYNC when it does.
func (h *changeHub) waited(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.waiting = false
}

// remove unregisters w and closes its channel.
func (h *changeHub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.removed {
		return
	}
	w.removed = true
	delete(h.watchers, w)
	h.index.remove(w)
	w.sink.Close()
}

// stop ends the subscription loop and closes every watcher's channel.
func (h *changeHub) stop() {
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if started {
		h.cancel()
		<-h.done
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.flush != nil {
		h.flush.Stop()
	}
	for w := range h.watchers {
		w.removed = true
		w.sink.Close()
	}
	clear(h.watchers)
	h.index = newWatcherIndex()
}

// run keeps the subscription: subscribe, wait for the connection to break,
// and subscribe again after the reconnect backoff.
func (h *changeHub) run(ctx context.Context) {
	defer close(h.done)
	failing := false // one log line when subscribing starts failing, one when it works again
	for attempt := 0; ; attempt++ {
		if vk := h.c.vk.Load(); vk != nil {
			ok, err := h.session(ctx, vk)
			switch {
			case ok:
				attempt = 0
				if failing {
					h.c.log.Info("change subscription made again")
				}
				failing = false
			case err != nil && ctx.Err() == nil && !failing:
				failing = true
				// An outage says so elsewhere; an ACL without the pub/sub
				// commands shows only here.
				h.c.log.Warn("change subscription failed; watchers get nothing until it works (an ACL user needs +psubscribe and channel access: see README)", slog.String("cause", describe(err)))
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.c.backoff(attempt)):
		}
	}
}

// session makes one subscription and holds it until its connection breaks
// or ctx ends; it reports whether the subscription was confirmed, and if
// not why.
func (h *changeHub) session(ctx context.Context, vk *valkeyClient) (bool, error) {
	dc, release := vk.Dedicate()
	defer release()
	// In a cluster this connection hears only the service's channel (which
	// the cluster broadcasts); keyspace notifications come from a
	// subscription on every master (changes_cluster.go).
	cluster := vk.Mode() == valkey.ClientModeCluster
	patterns := []string{globEscape(h.c.changesChannel())}
	if !cluster {
		patterns = append(patterns, globEscape(h.c.keyspacePrefix())+"*")
	}
	confirmed := make(chan struct{})
	var once sync.Once
	wait := dc.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: h.received,
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "psubscribe" && s.Count == int64(len(patterns)) {
				once.Do(func() { close(confirmed) })
			}
		},
	})
	subCtx, cancel := context.WithTimeout(ctx, h.c.opts.DialTimeout+h.c.opts.CommandTimeout)
	err := dc.Do(subCtx, dc.B().Psubscribe().Pattern(patterns...).Build()).Error()
	if err == nil {
		select {
		case <-confirmed:
		case err = <-wait:
			if err == nil {
				err = errors.New("subscription closed")
			}
		case <-subCtx.Done():
			err = subCtx.Err()
		}
	}
	cancel()
	if err != nil {
		return false, err
	}
	h.detectNotify(ctx, vk)
	if cluster {
		ksCtx, stopKeyspace := context.WithCancel(ctx)
		first, ksDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(ksDone)
			h.clusterKeyspace(ksCtx, vk, func() { close(first) })
		}()
		defer func() { stopKeyspace(); <-ksDone }()
		select {
		case <-first:
		case <-ctx.Done():
		}
	}
	h.subscribed()
	select {
	case <-wait:
	case <-ctx.Done():
	}
	h.broken()
	return true, nil
}

// globEscape quotes the glob characters of s for PSUBSCRIBE.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// subscribed: the subscription is confirmed. Every watcher that may have
// missed changes gets its RESYNC now.
func (h *changeHub) subscribed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = true
	h.aliveAt = time.Now()
	h.keyspaceMissed = time.Time{} // covered by the RESYNCs below
	close(h.ready)
	for w := range h.watchers {
		if !w.missedSince.IsZero() && !w.waiting {
			h.offer(w, &Change{Kind: ChangeResync, At: w.missedSince}, "reconnect")
		}
		w.missedSince = time.Time{}
	}
}

// broken: the subscription connection broke (or the hub is stopping).
// What was published since the subscription was last known alive may be
// lost to every watcher.
func (h *changeHub) broken() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = false
	h.ready = make(chan struct{})
	for w := range h.watchers {
		w.missedSince = h.aliveAt
	}
}

// detectNotify reads notify-keyspace-events; a refusal (CONFIG renamed or
// forbidden by the ACL) leaves the state unknown.
func (h *changeHub) detectNotify(ctx context.Context, vk *valkeyClient) {
	opCtx, cancel := context.WithTimeout(ctx, h.c.opts.CommandTimeout)
	defer cancel()
	state := KeyspaceUnknown
	if m, err := vk.Do(opCtx, vk.B().ConfigGet().Parameter("notify-keyspace-events").Build()).AsStrMap(); err == nil {
		if v, ok := m["notify-keyspace-events"]; ok {
			state = parseNotify(v)
		}
	}
	h.mu.Lock()
	h.notify = state
	h.mu.Unlock()
}

// parseNotify reads a notify-keyspace-events value: on when keyspace
// events (K) are on for generic and string commands, expiries and
// evictions ("A" is all of them).
func parseNotify(v string) KeyspaceNotifications {
	if !strings.ContainsRune(v, 'K') {
		return KeyspaceOff
	}
	if strings.ContainsRune(v, 'A') {
		return KeyspaceOn
	}
	for _, class := range "g$xe" {
		if !strings.ContainsRune(v, class) {
			return KeyspaceOff
		}
	}
	return KeyspaceOn
}

func (h *changeHub) keyspace() KeyspaceNotifications {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notify
}

// received handles one message of the subscription (valkey-go calls it
// in order, from one goroutine).
func (h *changeHub) received(m valkey.PubSubMessage) {
	now := time.Now()
	if m.Channel == h.c.changesChannel() {
		var w wireChange
		if json.Unmarshal([]byte(m.Message), &w) != nil {
			return
		}
		if w.Kind == ChangeResync {
			// An instance could not announce some of its changes.
			h.resyncAll(time.UnixMicro(w.At), now)
			return
		}
		if checkKey(w.Key) != nil {
			return
		}
		h.announced(&Change{Key: w.Key, Kind: w.Kind, ETag: w.ETag, At: time.UnixMicro(w.At), Tags: w.Tags}, now)
		return
	}
	rk, ok := strings.CutPrefix(m.Channel, "__keyspace@"+strconv.Itoa(h.c.opts.DB)+"__:")
	if !ok {
		return
	}
	key, ok := h.c.clientKey(rk)
	if !ok {
		return
	}
	kind, hold := keyspaceKind(m.Message)
	if kind == "" {
		return
	}
	h.notified(&Change{Key: key, Kind: kind, At: now}, hold, now)
}

// keyspaceKind maps a keyspace event to a kind, and says whether it may
// be the service's own write (then it is held for the announcement).
func keyspaceKind(event string) (ChangeKind, bool) {
	switch event {
	case "expired":
		return ChangeExpired, false
	case "evicted":
		return ChangeEvicted, false
	case "del", "rename_from", "move_from":
		return ChangeDelete, true
	case "incrby", "incrbyfloat":
		return ChangeIncremented, true
	case "expire", "persist":
		return ChangeTTL, true
	case "new":
		return "", false // with 'n': the write that created it follows
	}
	return ChangeSet, true // set, setrange, append, rename_to, and other types' writes
}

// announced: a change published by an instance of the service. Keyspace
// events of the same key still held are its own echo, and dropped.
func (h *changeHub) announced(x *Change, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aliveAt = now
	for _, held := range h.heldByKey[x.Key] {
		held.dropped = true
	}
	if len(h.heldByKey[x.Key]) == 0 && h.notify != KeyspaceOff && h.c.cluster() {
		// In a Cluster the keyspace events come from each master on a
		// connection of their own, not the one that carries the
		// announcements, so the echo of this write may still be on its
		// way (standalone, Redis sends it first on the same connection):
		// without this it arrived as a second SET without etag. The next
		// keyspace write event of the key within keyspaceHold is that echo,
		// and dropped; only one, as a master sends a key's events in order,
		// so a later write by another program still comes through.
		h.pruneEchoes(now)
		h.echoes = append(h.echoes, &dueEcho{key: x.Key, deadline: now.Add(keyspaceHold)})
		h.echoesByKey[x.Key]++
	}
	delete(h.heldByKey, x.Key)
	h.deliver(x)
}

// pruneEchoes forgets the expected echoes whose time is over. Called with
// mu held.
func (h *changeHub) pruneEchoes(now time.Time) {
	n := 0
	for ; n < len(h.echoes) && !h.echoes[n].deadline.After(now); n++ {
		if e := h.echoes[n]; !e.used {
			if h.echoesByKey[e.key]--; h.echoesByKey[e.key] <= 0 {
				delete(h.echoesByKey, e.key)
			}
		}
		h.echoes[n] = nil
	}
	h.echoes = h.echoes[n:]
}

// echoArrived says whether a keyspace write event of key is the echo of
// an announcement that came first (see announced), and uses it up. Called
// with mu held.
func (h *changeHub) echoArrived(key string, now time.Time) bool {
	if len(h.echoes) == 0 {
		return false
	}
	h.pruneEchoes(now)
	if h.echoesByKey[key] == 0 {
		return false
	}
	for _, e := range h.echoes {
		if e.key == key && !e.used {
			e.used = true
			break
		}
	}
	if h.echoesByKey[key]--; h.echoesByKey[key] <= 0 {
		delete(h.echoesByKey, key)
	}
	return true
}

// resyncAll: an instance lost announcements since at; every watcher may
// have missed them.
func (h *changeHub) resyncAll(at, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aliveAt = now
	resync := &Change{Kind: ChangeResync, At: at}
	for w := range h.watchers {
		h.offer(w, resync, "lost")
	}
}

// notified: a keyspace notification. An expiry or eviction is delivered
// at once; a write is held for keyspaceHold (see the top of the file).
func (h *changeHub) notified(x *Change, hold bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aliveAt = now
	if h.notify == KeyspaceUnknown {
		h.notify = KeyspaceOn // CONFIG GET was refused, but Redis sends them
	}
	if !hold {
		h.deliver(x)
		return
	}
	if h.echoArrived(x.Key, now) {
		return
	}
	held := &heldChange{change: x, deadline: now.Add(keyspaceHold)}
	h.held = append(h.held, held)
	h.heldByKey[x.Key] = append(h.heldByKey[x.Key], held)
	if h.flush == nil {
		h.flush = time.AfterFunc(keyspaceHold, h.release)
	} else if len(h.held) == 1 {
		h.flush.Reset(keyspaceHold)
	}
}

// release delivers the held keyspace events whose hold is over.
func (h *changeHub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	n := 0
	for ; n < len(h.held) && !h.held[n].deadline.After(now); n++ {
		held := h.held[n]
		if !held.dropped {
			h.deliver(held.change)
			if rest := h.heldByKey[held.change.Key]; len(rest) > 0 && rest[0] == held {
				if len(rest) == 1 {
					delete(h.heldByKey, held.change.Key)
				} else {
					h.heldByKey[held.change.Key] = rest[1:]
				}
			}
		}
		h.held[n] = nil
	}
	h.held = h.held[n:]
	if len(h.held) > 0 {
		h.flush.Reset(time.Until(h.held[0].deadline))
	}
}

// deliver offers x to every watcher it matches. Called with mu held.
func (h *changeHub) deliver(x *Change) {
	h.index.each(x, func(w *watcher) { h.offer(w, x, "overflow") })
}

// offer queues x for w without waiting. When the queue is full, what it
// holds is dropped and one RESYNC takes its place, dated from the oldest
// change lost; later changes queue behind it. Called with mu held: the hub
// is the only sender, so the RESYNC always finds room.
func (h *changeHub) offer(w *watcher, x *Change, reason string) {
	if w.sink.Offer(x) {
		if x.Kind == ChangeResync && h.obs != nil {
			h.obs.ObserveResync(reason)
		}
		return
	}
	dropped, oldest := w.sink.Drain()
	since := x.At
	if !oldest.IsZero() && oldest.Before(since) {
		since = oldest
	}
	w.sink.Offer(&Change{Kind: ChangeResync, At: since})
	if h.obs != nil {
		h.obs.ObserveChangeDropped(dropped + 1)
		h.obs.ObserveResync("overflow")
	}
}
