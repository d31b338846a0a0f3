package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Leases against stampedes. When a hot key is missing, Fetch gives one
// caller a lease (a random token held in Redis beside the key, for a
// while) to compute the value, and makes the others wait for it, woken by
// Redis's invalidation message when the key is written, instead of each
// recomputing it. The holder writes with SetOptions.Lease, which stores and
// releases the lease in one step, and is refused (ErrLeaseInvalid) if the
// lease expired or was revoked: every other write of the key (a set, a
// delete, a compare-and-set, an increment, a tag invalidation) revokes it,
// so a slow holder cannot write back a value computed before the data
// changed.

// ErrLeaseInvalid means a write with a lease was refused: the lease had
// expired, or another write of the key revoked it. Nothing was written.
var ErrLeaseInvalid = errors.New("lease invalid")

// FetchResult is what Fetch answered.
type FetchResult struct {
	// Entry is the value on a hit; nil on a miss.
	Entry *Entry
	// Lease, on a miss, is this caller's token: compute the value and
	// write it with SetOptions.Lease before the lease runs out.
	Lease string
	// Pending says another caller holds the lease and the value did not
	// arrive within the wait: compute it without writing, or ask again.
	Pending bool
	// Waited is how long Fetch waited for another caller's value.
	Waited time.Duration
}

// Fetch reads key; on a miss it grants this caller a lease for leaseTTL
// if nobody holds one, or else waits up to wait (bounded by ctx) for the
// holder to write the value. While Redis is unavailable it grants no lease
// and does not wait: a hit from the fallback tier is returned, and otherwise
// ErrUnavailable (every caller computes).
//
// Waiting needs client-side caching (Redis's invalidation messages wake the
// waiters); without it Fetch answers Pending at once rather than poll.
func (c *Client) Fetch(ctx context.Context, key string, leaseTTL, wait time.Duration) (FetchResult, error) {
	start := time.Now()
	var r FetchResult
	err := checkKey(key)
	switch {
	case err != nil:
	case leaseTTL < time.Millisecond || leaseTTL > c.opts.MaxTTL:
		err = fmt.Errorf("%w: a lease lasts from 1ms to %s", ErrInvalidInput, seconds(c.opts.MaxTTL))
	case wait < 0:
		err = fmt.Errorf("%w: the wait must not be negative", ErrInvalidInput)
	default:
		r, err = c.fetch(ctx, c.redisKey(key), leaseTTL, wait)
	}
	outcome := readOutcome(r.Entry != nil, err)
	switch {
	case err != nil:
	case r.Lease != "":
		outcome = OutcomeLeaseGranted
	case r.Pending:
		outcome = OutcomePending
	case r.Waited > 0:
		outcome = OutcomeWaitedHit
	}
	var backend Backend
	if r.Entry != nil {
		backend = r.Entry.Backend
	} else if err == nil {
		backend = BackendRedis
	}
	c.observe(OpFetch, outcome, backend, start)
	return r, err
}

func (c *Client) fetch(ctx context.Context, rk string, leaseTTL, wait time.Duration) (FetchResult, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackFetch(rk, *refused)
	}
	var woken <-chan struct{}
	if wait > 0 && !c.clientCacheOff() {
		// Before the first read: a write that lands between that read and
		// the wait must still wake us.
		var done func()
		woken, done = c.waiters.add(rk)
		defer done()
	}
	token := newLeaseToken()
	args := []string{token, strconv.FormatInt(leaseTTL.Milliseconds(), 10)}
	started := time.Now()
	until := started.Add(wait)
	if dl, ok := ctx.Deadline(); ok {
		// Answer pending a little before the caller's deadline, rather
		// than at it, so the answer still gets out.
		if margin := min(50*time.Millisecond, time.Until(dl)/10); until.After(dl.Add(-margin)) {
			until = dl.Add(-margin)
		}
	}
	for {
		opCtx, lazy := c.commandContext(ctx)
		res := c.runScripts(opCtx, vk, []writeCmds{fetchScript.cmds(vk, []string{rk, c.leaseKey(rk)}, args...)})[0]
		r, state, err := c.fetchReply(res)
		if err != nil {
			o := c.failed(ctx, opCtx, epoch, OpFetch, err)
			lazy.Cancel()
			if o.fallback {
				return c.fallbackFetch(rk, o)
			}
			return FetchResult{}, o.err
		}
		c.avail.succeeded()
		waited := time.Since(started)
		if state != leaseOut {
			lazy.Cancel()
			if state == granted {
				r.Lease = token
			}
			if r.Entry != nil && woken != nil && waited > time.Millisecond {
				r.Waited = waited
			}
			return r, nil
		}
		if woken == nil || !time.Now().Before(until) {
			lazy.Cancel()
			r := FetchResult{Pending: true}
			if woken != nil {
				r.Waited = waited
			}
			return r, nil
		}
		// A tracked read of the key, so that Redis tells this client when
		// it is written (its reply, a miss, changes nothing here).
		_ = vk.DoCache(opCtx, vk.B().Get().Key(rk).Cache().Pin(), c.opts.ClientCacheTTL).Error()
		lazy.Cancel()
		timer := time.NewTimer(time.Until(until))
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			return FetchResult{Pending: true, Waited: time.Since(started)}, nil
		}
		woken = c.waiters.rearm(rk, woken)
	}
}

type fetchState int

const (
	hit fetchState = iota
	granted
	leaseOut
)

// fetchReply reads the fetch script's reply: {1, value, pttl} a hit, {2}
// the lease granted, {3} a lease out.
func (c *Client) fetchReply(res valkey.ValkeyResult) (FetchResult, fetchState, error) {
	arr, err := res.ToArray()
	if err != nil {
		return FetchResult{}, 0, err
	}
	if len(arr) == 0 {
		return FetchResult{}, 0, fmt.Errorf("%w: unexpected reply to the fetch script", ErrRejected)
	}
	switch n, _ := arr[0].AsInt64(); n {
	case 2:
		return FetchResult{}, granted, nil
	case 3:
		return FetchResult{}, leaseOut, nil
	}
	if len(arr) != 3 {
		return FetchResult{}, 0, fmt.Errorf("%w: unexpected reply to the fetch script", ErrRejected)
	}
	b, err := arr[1].AsBytes()
	if err != nil {
		return FetchResult{}, 0, err
	}
	if err := c.checkStored(b); err != nil {
		return FetchResult{}, 0, err
	}
	e := &Entry{Value: asJSON(b), ETag: ETag(b), Backend: BackendRedis}
	if ms, _ := arr[2].AsInt64(); ms > 0 {
		e.TTL = time.Duration(ms) * time.Millisecond
	}
	return FetchResult{Entry: e}, hit, nil
}

func (c *Client) fallbackFetch(rk string, refused outcome) (FetchResult, error) {
	var e *Entry
	if refused.fallback && c.avail.withFallback(func(m *memoryTier) error {
		if v, ttl, ok := m.getEntry(rk); ok {
			e = &Entry{Value: v, TTL: ttl, ETag: ETag(v), Backend: BackendMemory}
		}
		return nil
	}) == nil && e != nil {
		return FetchResult{Entry: e}, nil
	}
	// No lease while Redis cannot hold one: every caller computes.
	return FetchResult{}, fmt.Errorf("%w; no lease granted: compute the value", refused.err)
}

func newLeaseToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// waitList wakes the callers of Fetch waiting for a key when Redis says the
// key changed (valkey-go's OnInvalidations), or when the connection that
// carried the tracking closed (a nil batch: anything may have changed).
type waitList struct {
	mu   sync.Mutex
	keys map[string]chan struct{}
	refs map[string]int
}

func newWaitList() *waitList {
	return &waitList{keys: map[string]chan struct{}{}, refs: map[string]int{}}
}

// add registers a waiter for key and returns the channel that closes when
// the key changes, and a func to call when done waiting.
func (w *waitList) add(key string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.keys[key]
	if !ok {
		ch = make(chan struct{})
		w.keys[key] = ch
	}
	w.refs[key]++
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.refs[key]--; w.refs[key] <= 0 {
			delete(w.refs, key)
			if w.keys[key] == ch {
				delete(w.keys, key)
			}
		}
	}
}

// rearm returns the channel for key's next change, after one closed (or
// the wait timed out: then it is the same channel).
func (w *waitList) rearm(key string, current <-chan struct{}) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.keys[key]
	if !ok {
		ch = make(chan struct{})
		w.keys[key] = ch
	}
	return ch
}

// invalidated is valkey-go's OnInvalidations callback: it must be quick.
func (w *waitList) invalidated(msgs []valkey.ValkeyMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.keys) == 0 {
		return
	}
	if msgs == nil {
		for k, ch := range w.keys {
			close(ch)
			delete(w.keys, k)
		}
		return
	}
	for _, m := range msgs {
		k, err := m.ToString()
		if err != nil {
			continue
		}
		if ch, ok := w.keys[k]; ok {
			close(ch)
			delete(w.keys, k)
		}
	}
}

// GetOrComputeLease and GetOrComputeWait are GetOrCompute's lease length
// and longest wait for another caller's value.
const (
	GetOrComputeLease = 10 * time.Second
	GetOrComputeWait  = 2 * time.Second
)

// GetOrCompute returns the value at key, computing it with compute on a
// miss, with stampede protection: of the callers that miss at once (on any
// instance), one computes and writes the value (with ttl) and the others
// wait for it, up to GetOrComputeWait. A caller that waits in vain, or
// finds Redis unavailable, computes the value itself and returns it without
// writing it.
func (c *Client) GetOrCompute(ctx context.Context, key string, ttl time.Duration, compute func(context.Context) (json.RawMessage, error)) (json.RawMessage, error) {
	r, err := c.Fetch(ctx, key, GetOrComputeLease, GetOrComputeWait)
	switch {
	case err == nil && r.Entry != nil:
		return r.Entry.Value, nil
	case err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrNoReply):
		return nil, err
	}
	v, err := compute(ctx)
	if err != nil {
		return nil, err
	}
	if r.Lease != "" {
		// A refused lease (revoked meanwhile) leaves the newer value in
		// place; the value computed is still this caller's answer.
		_, _ = c.SetWith(ctx, key, v, SetOptions{TTL: ttl, Lease: r.Lease})
	}
	return v, nil
}
