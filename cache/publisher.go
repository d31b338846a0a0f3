package cache

import (
	"context"
	"encoding/json"
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
	queue chan wireChange
	// lostSince is the Unix microsecond time of the first announcement
	// lost since the last RESYNC was published; zero when none was.
	lostSince atomic.Int64
	start     sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

func newPublisher(c *Client) *publisher {
	return &publisher{c: c, queue: make(chan wireChange, publishQueue), stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *publisher) enqueue(changes []Change) {
	p.start.Do(func() { go p.run() })
	now := time.Now().UnixMicro()
	for _, x := range changes {
		select {
		case p.queue <- wireChange{Key: x.Key, Kind: x.Kind, ETag: x.ETag, At: now, Tags: x.Tags}:
		default:
			p.lost(now)
		}
	}
}

func (p *publisher) lost(at int64) { p.lostSince.CompareAndSwap(0, at) }

func (p *publisher) run() {
	defer close(p.done)
	batch := make([]wireChange, 0, publishBatch)
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
func (p *publisher) send(batch []wireChange) {
	vk := p.c.vk.Load()
	if len(batch) == 0 || vk == nil {
		if len(batch) > 0 {
			p.lost(batch[0].At)
		}
		return
	}
	ch := p.c.changesChannel()
	cmds := make([]valkey.Completed, 0, len(batch)+1)
	lost := p.lostSince.Swap(0)
	if lost != 0 {
		b, _ := json.Marshal(wireChange{Kind: ChangeResync, At: lost})
		cmds = append(cmds, vk.B().Publish().Channel(ch).Message(valkey.BinaryString(b)).Build().Pin())
	}
	for _, x := range batch {
		b, _ := json.Marshal(x) // strings only: cannot fail
		cmds = append(cmds, vk.B().Publish().Channel(ch).Message(valkey.BinaryString(b)).Build().Pin())
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.c.opts.CommandTimeout)
	defer cancel()
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

// close publishes what is queued and stops the goroutine.
func (p *publisher) close() {
	p.start.Do(func() { close(p.done) }) // never started: nothing to wait for
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}
