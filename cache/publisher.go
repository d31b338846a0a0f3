package cache

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// publishQueue bounds the announcements waiting to be published; a write
// that finds it full does not wait (see publisher).
const publishQueue = 8192

// publishBatch is the most announcements sent in one pipeline.
const publishBatch = 512

// publisher sends the announcements of confirmed writes (changes.go), in
// the order the writes were confirmed, from one goroutine: a write only
// queues its announcement, so announcing costs the write no round trip,
// and under load many announcements share one pipeline. When the queue is
// full (Redis slower than the writes) or a PUBLISH fails, announcements
// are lost; the next batch then begins with a RESYNC announcement dated
// from the first loss, so that every watcher on every instance learns it
// may have missed changes, rather than not learning it at all.
type publisher struct {
	c     *Client
	queue chan queued
	// channel is c.changesChannel(), built once (opts do not change).
	channel string
	// deadline bounds each batch's pipeline (the publisher's goroutine
	// only).
	deadline sendDeadline
	// lostSince is the Unix microsecond time of the first announcement
	// lost since the last RESYNC was published; zero when none was.
	lostSince atomic.Int64
	start     sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// queued is an announcement waiting in the queue. A single write's SET
// carries the digest of its value rather than the ETag: the hexadecimal
// text is written straight into the message by the publisher's goroutine,
// so the write allocates no string for it (and need not keep the value,
// which its caller may reuse).
type queued struct {
	wireChange
	sum    [sha1.Size]byte
	hasSum bool
}

func newPublisher(c *Client) *publisher {
	return &publisher{c: c, channel: c.changesChannel(), queue: make(chan queued, publishQueue), stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *publisher) enqueue(changes []Change) {
	now := time.Now().UnixMicro()
	for _, x := range changes {
		p.put(queued{wireChange: wireChange{Key: x.Key, Kind: x.Kind, ETag: x.ETag, At: now, Tags: x.Tags}})
	}
}

// enqueueSet queues the announcement of a write of value at key, as
// enqueue does with a Change of kind SET and the value's ETag.
func (p *publisher) enqueueSet(key string, value []byte, tags []string) {
	p.put(queued{wireChange: wireChange{Key: key, Kind: ChangeSet, At: time.Now().UnixMicro(), Tags: tags}, sum: sha1.Sum(value), hasSum: true})
}

func (p *publisher) put(x queued) {
	x.own()
	p.start.Do(func() { go p.run() })
	select {
	case p.queue <- x:
	default:
		p.lost(x.At)
	}
}

// own gives the announcement its own copy of its key and tags. They may
// be the caller's bytes (the GraphQL layer reads keys and tags out of the
// request body without copying, and the body's buffer serves the next
// request once this one returns), and the publisher reads them later, on
// its own goroutine. One allocation holds all of them.
func (x *queued) own() { x.Key, x.Tags = ownStrings(x.Key, x.Tags) }

// publishSet announces a confirmed write of value at key, as publish does
// with Change{Key: key, Kind: ChangeSet, ETag: ETag(value), Tags: tags}.
func (c *Client) publishSet(key string, value []byte, tags []string) {
	if c.opts.DisableChanges {
		return
	}
	c.publisher.enqueueSet(key, value, tags)
}

func (p *publisher) lost(at int64) { p.lostSince.CompareAndSwap(0, at) }

func (p *publisher) run() {
	defer close(p.done)
	batch := make([]queued, 0, publishBatch)
	for {
		select {
		case x := <-p.queue:
			batch = append(batch, x)
		case <-p.stop:
			// Close: what is queued goes out, within one command timeout.
			for more := true; more; {
				select {
				case x := <-p.queue:
					batch = append(batch, x)
				default:
					more = false
				}
			}
			p.send(batch)
			return
		}
		for len(batch) < publishBatch {
			select {
			case x := <-p.queue:
				batch = append(batch, x)
				continue
			default:
			}
			break
		}
		p.send(batch)
		batch = batch[:0]
	}
}

// send publishes batch, after a RESYNC announcement if some were lost.
func (p *publisher) send(batch []queued) {
	vk := p.c.vk.Load()
	if len(batch) == 0 || vk == nil {
		if len(batch) > 0 {
			p.lost(batch[0].At)
		}
		return
	}
	ch := p.channel
	cmds := make([]valkey.Completed, 0, len(batch)+1)
	// Every message of the batch is written into one buffer; a message is
	// never changed once written (a longer buffer is a new array).
	buf := make([]byte, 0, 128*len(batch))
	lost := p.lostSince.Swap(0)
	if lost != 0 {
		b, _ := json.Marshal(wireChange{Kind: ChangeResync, At: lost})
		cmds = append(cmds, vk.B().Publish().Channel(ch).Message(valkey.BinaryString(b)).Build().Pin())
	}
	for _, x := range batch {
		start := len(buf)
		buf = appendWire(buf, x)
		cmds = append(cmds, vk.B().Publish().Channel(ch).Message(valkey.BinaryString(buf[start:len(buf):len(buf)])).Build().Pin())
	}
	ctx := p.deadline.arm(p.c.opts.CommandTimeout)
	defer p.deadline.disarm()
	// DoMulti even for one command: in a cluster, valkey-go sends Do's
	// PUBLISH (no key) to a random node, and announcements sent through
	// different nodes can arrive out of order (TestCluster).
	for i, r := range vk.DoMulti(ctx, cmds...) {
		if r.Error() != nil {
			if i == 0 && lost != 0 {
				p.lost(lost)
			} else {
				p.lost(batch[max(0, i-len(cmds)+len(batch))].At)
			}
			return
		}
	}
}

// appendWire appends x encoded as json.Marshal encodes its wireChange (the
// same fields, in the same order), the ETag written from the digest when
// x has one. Strings that need escaping are left to encoding/json.
func appendWire(buf []byte, x queued) []byte {
	buf = append(buf, `{"k":`...)
	buf = appendJSONString(buf, x.Key)
	buf = append(buf, `,"t":`...)
	buf = appendJSONString(buf, string(x.Kind))
	switch {
	case x.hasSum:
		buf = append(buf, `,"e":"`...)
		buf = hex.AppendEncode(buf, x.sum[:])
		buf = append(buf, '"')
	case x.ETag != "":
		buf = append(buf, `,"e":`...)
		buf = appendJSONString(buf, x.ETag)
	}
	buf = append(buf, `,"a":`...)
	buf = strconv.AppendInt(buf, x.At, 10)
	if len(x.Tags) > 0 {
		buf = append(buf, `,"g":[`...)
		for i, t := range x.Tags {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, t)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string: as it is when it has only
// printable ASCII that JSON does not escape, by encoding/json otherwise.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			q, _ := json.Marshal(s) // a string: cannot fail
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// sendDeadline is the context of one batch: the command timeout from
// when the batch is sent, as context.WithTimeout(context.Background(), d)
// gives, without a new context, timer and channel for every batch. A
// timer stopped before it fired is armed again for the next batch; one
// that fired (or may be firing) is left to close its own channel, and the
// next batch gets a new timer and channel.
type sendDeadline struct {
	at    time.Time
	done  chan struct{}
	timer *time.Timer
}

// arm starts the deadline d from now and returns the batch's context.
func (s *sendDeadline) arm(d time.Duration) context.Context {
	s.at = time.Now().Add(d)
	if s.timer == nil {
		done := make(chan struct{})
		s.done, s.timer = done, time.AfterFunc(d, func() { close(done) })
	} else {
		s.timer.Reset(d)
	}
	return (*sendContext)(s)
}

// disarm ends the batch: the timer is kept when it had not fired.
func (s *sendDeadline) disarm() {
	if !s.timer.Stop() {
		s.timer, s.done = nil, nil
	}
}

// sendContext is a sendDeadline seen as a context.Context (valkey-go's
// DoMulti reads Deadline, Done and Err while the batch is in flight).
type sendContext sendDeadline

func (c *sendContext) Deadline() (time.Time, bool) { return c.at, true }
func (c *sendContext) Done() <-chan struct{}       { return c.done }
func (c *sendContext) Value(any) any               { return nil }
func (c *sendContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// close publishes what is queued and stops the goroutine.
func (p *publisher) close() {
	p.start.Do(func() { close(p.done) }) // never started: nothing to wait for
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}
