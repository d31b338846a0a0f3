package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
	"github.com/school-erp/cache-service/internal/auth"
)

// Live subscriptions: the compiled path of cacheChanged. Through gqlgen a
// subscription costs a goroutine of its own (about 8 KiB of stack) that
// waits on its channel, and each event is executed and marshalled once
// per subscription, then marshalled again as a message. A change that
// goes to 10 000 subscribers is the same few bytes 10 000 times, so the
// usual subscription, cacheChanged selecting its fields (with or without
// withValue), is run here instead:
//
//   - The subscribe message is parsed, validated and checked by an
//     executor configured as gqlgen's (the same extensions, caches and
//     limits: configureExecutor), so it is refused exactly as gqlgen
//     would; anything this path does not run, or any refusal at all
//     (auth, the bounds, a bad key, subscriptions off), is handed to
//     gqlgen untouched, which answers it as it always has.
//   - The subscription is a cache.Sink: the hub queues changes on it
//     directly; no goroutine waits for them.
//   - A socket's writer goroutine runs only while some of its
//     subscriptions have events queued, and writes each event as a frame
//     of text rendered once per change for every subscription of the same
//     selection (an eventShape), with only the id differing. With
//     withValue, the value is read once per change for all of them too
//     (gqlgen reads it once per subscriber), when the first of them is
//     written: the key's value when the event was sent, as documented.
//
// The frames are byte for byte what gqlgen writes (live_test.go runs both
// paths side by side), and the bounds, RESYNC and slow-consumer rules are
// the same as eventQueue's.

// liveSubscriptions is the compiled path: what it needs to admit a
// subscription, and the shapes its events are rendered in.
type liveSubscriptions struct {
	exec     *executor.Executor
	resolver *Resolver
	auth     *auth.Authenticator

	mu     sync.Mutex
	shapes map[string]*eventShape
	// started counts the subscriptions this path runs (for tests).
	started atomic.Uint64
}

// maxShapes bounds the shapes kept for sharing; a selection beyond them
// gets a shape of its own (aliases are the client's to choose).
const maxShapes = 256

// changeField is a CacheChange field an eventShape renders.
type changeField int

const (
	changeKey changeField = iota + 1
	changeKindField
	changeEtag
	changeAt
	changeTags
	changeValue // the value read for the change with withValue, else null
	changeTypename
)

var changeFields = map[string]changeField{
	"key": changeKey, "kind": changeKindField, "etag": changeEtag, "at": changeAt,
	"tags": changeTags, "value": changeValue, "__typename": changeTypename,
}

// eventShape is a selection of cacheChanged: its response name and its
// fields in order. last is the payload of the change rendered last, which
// every subscription of the shape shares.
type eventShape struct {
	alias  string
	names  []string
	fields []changeField
	// read, with withValue, reads a key's value for SET and INCREMENTED
	// events (nil on a miss or an error, as the resolver has it).
	read func(key string) []byte
	last atomic.Pointer[renderedChange]
	// key names the shape in liveSubscriptions.shapes; subs counts its
	// subscriptions (under liveSubscriptions.mu).
	key  string
	subs int
}

type renderedChange struct {
	change  *cache.Change
	payload []byte
}

// payload is the message payload for x: gqlgen's Response, {"data":...},
// as json.Marshal writes it (strings quoted by gqlgen's scalar, then the
// whole compacted with <, >, &, U+2028 and U+2029 escaped, as
// encoding/json writes a RawMessage).
func (s *eventShape) payload(x *cache.Change) []byte {
	if r := s.last.Load(); r != nil && r.change == x {
		return r.payload
	}
	var value []byte
	if s.read != nil && (x.Kind == cache.ChangeSet || x.Kind == cache.ChangeIncremented) {
		value = s.read(x.Key)
	}
	var b bytes.Buffer
	b.WriteString(`{"data":{"`)
	b.WriteString(s.alias)
	b.WriteString(`":{`)
	for i, f := range s.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(s.names[i])
		b.WriteString(`":`)
		switch f {
		case changeKey:
			graphql.MarshalString(x.Key).MarshalGQL(&b)
		case changeKindField:
			b.WriteString(strconv.Quote(changeKinds[x.Kind].String()))
		case changeEtag:
			if x.ETag == "" {
				b.WriteString("null")
			} else {
				graphql.MarshalString(x.ETag).MarshalGQL(&b)
			}
		case changeAt:
			graphql.MarshalString(x.At.UTC().Format(time.RFC3339Nano)).MarshalGQL(&b)
		case changeTags:
			b.WriteByte('[')
			for j, t := range x.Tags {
				if j > 0 {
					b.WriteByte(',')
				}
				graphql.MarshalString(t).MarshalGQL(&b)
			}
			b.WriteByte(']')
		case changeValue:
			model.JSON(value).MarshalGQL(&b)
		case changeTypename:
			b.WriteString(`"CacheChange"`)
		}
	}
	b.WriteString("}}}")
	p, err := json.Marshal(json.RawMessage(b.Bytes()))
	if err != nil {
		// Not JSON: only a value can make it so, and the cache returns
		// JSON text only. Sent without it rather than not at all.
		return (&eventShape{alias: s.alias, names: s.names, fields: s.fields}).payload(x)
	}
	s.last.Store(&renderedChange{change: x, payload: p})
	return p
}

// shape finds or makes the shape of a cacheChanged field's selection, or
// reports false when this path does not render it.
func (l *liveSubscriptions) shape(f *ast.Field, withValue bool) (*eventShape, bool) {
	s := &eventShape{alias: f.Alias}
	if s.alias == "" {
		s.alias = f.Name
	}
	key := s.alias
	if withValue {
		s.read = l.readValue
		key = "\x01" + key
	}
	seen := map[string]bool{}
	for _, sel := range f.SelectionSet {
		sf, ok := sel.(*ast.Field)
		if !ok || len(sf.Directives) > 0 || len(sf.Arguments) > 0 || len(sf.SelectionSet) > 0 {
			return nil, false
		}
		kind, ok := changeFields[sf.Name]
		if !ok {
			return nil, false
		}
		name := sf.Alias
		if name == "" {
			name = sf.Name
		}
		if seen[name] {
			// GraphQL merges fields of one response name (validation
			// has made sure they agree); gqlgen's collection does that.
			return nil, false
		}
		seen[name] = true
		s.names = append(s.names, name)
		s.fields = append(s.fields, kind)
		key += "\x00" + name + "\x00" + sf.Name
	}
	if len(s.fields) == 0 {
		return nil, false
	}
	s.key = key
	l.mu.Lock()
	defer l.mu.Unlock()
	if known, ok := l.shapes[key]; ok {
		known.subs++
		return known, true
	}
	s.subs = 1
	if len(l.shapes) < maxShapes {
		l.shapes[key] = s
	}
	return s, true
}

// release: a subscription of shape s ended. A shape nobody uses any more
// is forgotten, with the payload (and, with withValue, the value) it
// kept.
func (l *liveSubscriptions) release(s *eventShape) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.subs--; s.subs > 0 {
		return
	}
	if l.shapes[s.key] == s {
		delete(l.shapes, s.key)
	}
	s.last.Store(nil)
}

// liveSub is one live cacheChanged subscription: the hub's Sink, and its
// place in its socket's write queue. pending, spare, queued and done are
// guarded by the socket's qmu.
type liveSub struct {
	sock   *socket
	id     string
	idJSON []byte // the id as a JSON string
	next   []byte // `,"id":…,"type":"next"}`, what follows the payload
	shape  *eventShape
	cancel context.CancelFunc
	end    func() // the socket's count of subscriptions

	finished       sync.Once
	pending, spare []*cache.Change
	queued         bool // in the socket's ready list
	done           bool // ended by this side (stop): the client's complete, or the socket is gone
	completing     bool // a complete is queued (or written) for it
}

// completeMarker in a pending queue: the hub ended the subscription (the
// cache is closing), so the client is told it is complete.
var completeMarker = &cache.Change{}

func (s *liveSub) Offer(x *cache.Change) bool {
	sock := s.sock
	sock.qmu.Lock()
	if s.done {
		sock.qmu.Unlock()
		return true // completed: dropped, not a reason for a RESYNC
	}
	if len(s.pending) >= sock.reg.opts.Queue {
		sock.qmu.Unlock()
		return false
	}
	s.pending = append(s.pending, x)
	sock.queueLocked(s)
	sock.qmu.Unlock()
	sock.reg.opts.Observer.ObserveEvent("cacheChanged")
	return true
}

func (s *liveSub) Drain() (int, time.Time) {
	sock := s.sock
	sock.qmu.Lock()
	n, oldest := len(s.pending), time.Time{}
	for _, x := range s.pending {
		if oldest.IsZero() || x.At.Before(oldest) {
			oldest = x.At
		}
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	sock.qmu.Unlock()
	return n, oldest
}

func (s *liveSub) Close() {
	s.finish()
	sock := s.sock
	sock.qmu.Lock()
	if !s.done && !s.completing {
		// The cache is closing: the client is told, as gqlgen tells it
		// when a subscription's channel is closed.
		s.completing = true
		s.pending = append(s.pending, completeMarker)
		sock.queueLocked(s)
	}
	sock.qmu.Unlock()
	s.cancel()
}

// finish gives back what the subscription holds: its place in the
// socket's count and its shape. Once, whoever ends it first.
func (s *liveSub) finish() {
	s.finished.Do(s.end)
}

var _ cache.Sink = (*liveSub)(nil)

// startLive runs a subscribe message on the compiled path, if it can; it
// reports false, having sent nothing and holding nothing, to leave the
// message to gqlgen.
func (sock *socket) startLive(id string, payload json.RawMessage) bool {
	l := sock.reg.live
	sock.mu.Lock()
	ctx, ok := sock.opCtx, sock.initOK
	sock.mu.Unlock()
	if l == nil || !ok || l.resolver.Changes == nil {
		return false
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if dec.Decode(params) != nil {
		return false
	}
	params.Headers = sock.headers
	ctx = graphql.StartOperationTrace(ctx)
	rc, errs := l.exec.CreateOperationContext(ctx, params)
	if errs != nil || rc.Operation == nil || rc.Operation.Operation != ast.Subscription || len(rc.Operation.SelectionSet) != 1 {
		return false
	}
	f, ok := rc.Operation.SelectionSet[0].(*ast.Field)
	if !ok || f.Name != "cacheChanged" || len(f.Directives) > 0 {
		return false
	}
	filter, withValue, ok := liveFilter(f.ArgumentMap(rc.Variables), sock.reg.opts.MaxKeys)
	if !ok || authorize(ctx, l.auth, model.ScopeRead) != nil {
		return false
	}
	shape, ok := l.shape(f, withValue)
	if !ok {
		return false
	}
	end, err := sock.hold("cacheChanged")
	if err != nil {
		l.release(shape)
		return false
	}
	idJSON, _ := json.Marshal(id)
	s := &liveSub{sock: sock, id: id, idJSON: idJSON, shape: shape}
	s.end = func() { end(); l.release(shape) }
	s.next = append(append([]byte(`,"id":`), idJSON...), `,"type":"next"}`...)
	subCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	// In the socket's map before the hub can end it (ended removes it).
	sock.mu.Lock()
	if sock.released {
		sock.mu.Unlock()
		cancel()
		s.finish()
		return true // nobody to answer
	}
	if sock.live == nil {
		sock.live = map[string]*liveSub{}
	}
	sock.live[id] = s
	sock.mu.Unlock()
	// Not WatchSink: while Redis is out of reach it waits for the
	// subscription, and this is the socket's reader (gqlgen runs its
	// resolvers in their own goroutine).
	if err := l.resolver.Changes.WatchSinkAsync(subCtx, filter, s); err != nil {
		sock.mu.Lock()
		delete(sock.live, id)
		sock.mu.Unlock()
		cancel()
		s.finish()
		return false
	}
	l.started.Add(1)
	return true
}

// liveFilter reads cacheChanged's arguments, as gqlgen has coerced them,
// into a filter and withValue, or reports false for anything the resolver
// would refuse.
func liveFilter(args map[string]any, maxKeys int) (_ cache.WatchFilter, withValue, ok bool) {
	var f cache.WatchFilter
	strs := func(name string) ([]string, bool) {
		v, present := args[name]
		if !present || v == nil {
			return nil, true
		}
		list, ok := v.([]any)
		if !ok || len(list) > maxKeys {
			return nil, false
		}
		out := make([]string, len(list))
		for i, e := range list {
			if out[i], ok = e.(string); !ok {
				return nil, false
			}
		}
		return out, true
	}
	if f.Keys, ok = strs("keys"); !ok {
		return f, false, false
	}
	if f.Tags, ok = strs("tags"); !ok {
		return f, false, false
	}
	if p, present := args["prefix"]; present && p != nil {
		s, isString := p.(string)
		if !isString || s == "" {
			return f, false, false
		}
		f.Prefix = s
	}
	if w, present := args["withValue"]; present && w != nil {
		if withValue, ok = w.(bool); !ok {
			return f, false, false
		}
	}
	return f, withValue, true
}

// readValue is a withValue event's read, as the resolver makes it: the
// value, or nil on a miss or any error (a value over the size limit, say).
func (l *liveSubscriptions) readValue(key string) []byte {
	v, _, err := l.resolver.Cache.Get(context.Background(), key)
	if err != nil {
		return nil
	}
	return v
}

// stopLive ends a live subscription the client completed, and answers
// with a complete of its own, as gqlgen does; it reports false when id is
// not one.
func (sock *socket) stopLive(id string) bool {
	sock.mu.Lock()
	s := sock.live[id]
	delete(sock.live, id)
	sock.mu.Unlock()
	if s == nil {
		return false
	}
	s.stop(true)
	return true
}

// stop ends the subscription from this side: no event is written for it
// any more (a complete is, if told), and the hub lets it go.
func (s *liveSub) stop(complete bool) {
	sock := s.sock
	sock.qmu.Lock()
	s.done = true
	queuedComplete := slices.Contains(s.pending, completeMarker)
	clear(s.pending)
	s.pending = s.pending[:0]
	switch {
	case queuedComplete:
		// The hub's complete, not taken yet: it still answers (the
		// subscription is in the ready list already).
		s.pending = append(s.pending, completeMarker)
	case s.completing:
		// The hub's complete was taken by the writer: that one answers.
	case complete:
		s.completing = true
		s.pending = append(s.pending, completeMarker)
		sock.queueLocked(s)
	}
	sock.qmu.Unlock()
	s.cancel()
	// The count now, not when the hub gets round to Close: a client at
	// its limit may subscribe again as soon as it has its complete.
	s.finish()
}

// stopAllLive ends every live subscription of a socket that is going.
func (sock *socket) stopAllLive() {
	sock.mu.Lock()
	live := sock.live
	sock.live = nil
	sock.mu.Unlock()
	for _, s := range live {
		s.stop(false)
	}
}

// queueLocked puts s in the ready list and starts the writer if none is
// running. Called with qmu held.
func (sock *socket) queueLocked(s *liveSub) {
	if !s.queued {
		s.queued = true
		sock.ready = append(sock.ready, s)
	}
	if !sock.writing {
		sock.writing = true
		sock.progressed() // the stretch without a write starts now
		go sock.writeLive()
	}
	sock.armSlowLocked()
}

// writeLive writes what the ready subscriptions have queued, one
// subscription's batch at a time, and ends when nothing is left. A write
// that fails means the socket is going: the writer then stays marked as
// running, so that none starts again, and the socket's end stops the
// subscriptions.
func (sock *socket) writeLive() {
	var buf []byte
	var payloads [][]byte
	cork := sock.ws.cork
	corked := false
	for {
		sock.qmu.Lock()
		if sock.head == len(sock.ready) {
			clear(sock.ready)
			sock.ready, sock.head = sock.ready[:0], 0
			sock.qmu.Unlock()
			// Written out before the writer lets go, so that an event
			// queued from now on finds a writer to send it.
			if corked {
				corked = false
				if cork.release() != nil {
					sock.writeFailed()
					return
				}
			}
			sock.qmu.Lock()
			if sock.head < len(sock.ready) {
				sock.qmu.Unlock()
				continue
			}
			sock.writing = false
			sock.qmu.Unlock()
			return
		}
		s := sock.ready[sock.head]
		sock.ready[sock.head] = nil
		sock.head++
		if sock.head >= 64 && sock.head*2 >= len(sock.ready) {
			// A writer that never catches up never empties the list:
			// what it has taken is let go of here.
			n := copy(sock.ready, sock.ready[sock.head:])
			clear(sock.ready[n:])
			sock.ready, sock.head = sock.ready[:n], 0
		}
		batch := s.pending
		s.pending, s.spare = s.spare[:0], nil
		s.queued = false
		done := s.done
		sock.qmu.Unlock()
		// Values are read from Redis before anything is corked, so that
		// no pong or close frame waits on a read.
		payloads = payloads[:0]
		if s.shape.read != nil && !done {
			if corked {
				corked = false
				if cork.release() != nil {
					sock.writeFailed()
					return
				}
			}
			for _, x := range batch {
				if x != completeMarker {
					payloads = append(payloads, s.shape.payload(x))
				}
			}
		}
		if !corked {
			cork.hold()
			corked = true
		}
		n := 0
		for _, x := range batch {
			if x != completeMarker && done {
				continue
			}
			if x == completeMarker {
				buf = append(append(append(buf[:0], `{"id":`...), s.idJSON...), `,"type":"complete"}`...)
				sock.ended(s)
			} else {
				var p []byte
				if s.shape.read != nil {
					p, n = payloads[n], n+1
				} else {
					p = s.shape.payload(x)
				}
				buf = append(append(append(buf[:0], `{"payload":`...), p...), s.next...)
			}
			if sock.ws.ws.Write(context.Background(), websocket.MessageText, buf) != nil {
				_ = cork.release()
				sock.writeFailed()
				return
			}
			sock.progressed()
		}
		clear(batch)
		clear(payloads)
		sock.qmu.Lock()
		if s.spare == nil {
			s.spare = batch[:0]
		}
		sock.qmu.Unlock()
	}
}

// ended forgets a subscription the hub ended, as the client's complete
// would.
func (sock *socket) ended(s *liveSub) {
	sock.mu.Lock()
	if sock.live[s.id] == s {
		delete(sock.live, s.id)
		delete(sock.ops, s.id)
	}
	sock.mu.Unlock()
}

// writeFailed: the socket is going. The writer stays marked as running,
// so that none starts again, and no slow check is armed any more.
func (sock *socket) writeFailed() {
	sock.qmu.Lock()
	sock.dead = true
	sock.qmu.Unlock()
	_ = sock.ws.ws.CloseNow()
}

// armSlowLocked watches a socket that has events waiting: if it writes
// none of them for the slow timeout, its client reads nothing, and it is
// closed with 1008 (the rule eventQueue and gqlgen's path follow too). A
// client that reads, however slowly, is not closed: its subscriptions
// overflow into RESYNCs instead. One timer per socket, and only while its
// writer runs. Called with qmu held.
func (sock *socket) armSlowLocked() {
	if sock.slowArmed || sock.dead {
		return
	}
	sock.slowArmed = true
	time.AfterFunc(sock.reg.opts.SlowTimeout, sock.checkSlow)
}

// progressed: a frame was written (or the writer started), now.
func (sock *socket) progressed() {
	sock.progressAt.Store(int64(time.Since(processStart)))
}

// processStart is what progress times count from (monotonic).
var processStart = time.Now()

// checkSlow is the slow timer.
func (sock *socket) checkSlow() {
	timeout := sock.reg.opts.SlowTimeout
	sock.qmu.Lock()
	stalled := time.Since(processStart) - time.Duration(sock.progressAt.Load())
	switch {
	case !sock.writing || sock.dead:
		sock.slowArmed = false // nothing waits
		sock.qmu.Unlock()
	case stalled < timeout:
		// Taking events: due again when this stretch would be too long.
		time.AfterFunc(timeout-stalled, sock.checkSlow)
		sock.qmu.Unlock()
	default:
		sock.slowArmed, sock.dead = false, true
		sock.qmu.Unlock()
		sock.tooSlow()
	}
}
