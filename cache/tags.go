package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Tags: a write may name tags; InvalidateTags deletes every key written
// with any of them, through any instance.
//
// The index is one sorted set per tag, in the service's own namespace
// (internalKey, which no client key can be), holding the Redis keys
// written with the tag, scored by Redis's clock when the write began.
// A tagged write adds its index entries before it sets the key, so a key
// never exists with a tag the index does not know of. InvalidateTags reads
// the set, deletes the keys, and prunes the entries it read. That gives the
// guarantee README states: every key written with the tag before the call
// began is gone when it returns (other instances' local caches drop it as
// Redis's invalidation reaches them). A write running at the same time as
// the call may survive it; its entry is kept for the next one.
//
// Memory stays bounded without a TTL on the sets (a key's TTL may be
// extended after it was written, and the index must not go before the key):
// entries whose keys are gone are pruned, by InvalidateTags and by a slow
// background sweep of the tag sets, once they are older than tagHorizon.
// In a cluster the keys and the sets live in different slots; nothing here
// needs them together.

// MaxTags is the most tags one write may carry.
const MaxTags = 10

// tagHorizon is how long after its index entry a write may still set its
// key: longer than any operation's deadline. A prune leaves younger entries
// alone, since their write may be under way.
func (c *Client) tagHorizon() time.Duration {
	return max(minTagHorizon, 10*c.opts.CommandTimeout)
}

// minTagHorizon is a variable for the tests of pruning, which cannot wait
// a minute.
var minTagHorizon = time.Minute

func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%w: %d tags; the limit is %d", ErrInvalidInput, len(tags), MaxTags)
	}
	for _, t := range tags {
		if err := checkKey(t); err != nil {
			return fmt.Errorf("tag %q: %w", t, err)
		}
	}
	return nil
}

func (c *Client) tagSetKey(tag string) string { return c.internalKey("tag:" + tag) }

// tagEntry is an index entry a write made: its set, and its score when
// the entry is new (zero when the key was already in the set).
type tagEntry struct {
	set   string
	added int64
}

// tag adds key rk to the index of each tag, before the key is written, and
// returns the entries it made new.
func (c *Client) tag(caller, opCtx context.Context, epoch uint64, vk *valkeyClient, rk string, tags []string) ([]tagEntry, *outcome) {
	var calls []writeCmds
	var sets []string
	for _, t := range slices.Compact(slices.Sorted(slices.Values(tags))) {
		set := c.tagSetKey(t)
		sets = append(sets, set)
		calls = append(calls, tagAddScript.cmds(vk, []string{set}, rk))
	}
	res := c.runScripts(opCtx, vk, calls)
	if err := firstError(res); err != nil {
		o := c.failed(caller, opCtx, epoch, OpSet, err)
		return nil, &o
	}
	c.avail.succeeded()
	var made []tagEntry
	for i, r := range res {
		if arr, err := r.AsIntSlice(); err == nil && len(arr) == 2 && arr[1] == 1 {
			made = append(made, tagEntry{set: sets[i], added: arr[0]})
		}
	}
	return made, nil
}

// untag takes back the new index entries of a write its condition refused,
// so that the key is not invalidated by a tag it was never written with.
// A failure leaves an entry too many: the key may be deleted by that tag,
// which a cache can afford, and the entry is pruned once the key is gone.
func (c *Client) untag(ctx context.Context, vk *valkeyClient, rk string, made []tagEntry) {
	if len(made) == 0 {
		return
	}
	calls := make([]writeCmds, len(made))
	for i, e := range made {
		calls[i] = tagUndoScript.cmds(vk, []string{e.set}, rk, strconv.FormatInt(e.added, 10))
	}
	_ = c.runScripts(ctx, vk, calls)
}

// tagBatch indexes the tags of the entries at idx in one pipeline, and
// returns the entries whose index could not be written.
func (c *Client) tagBatch(caller, opCtx context.Context, epoch uint64, vk *valkeyClient, idx []int, entries []SetEntry) map[int]outcome {
	var calls []writeCmds
	var owner []int
	for _, i := range idx {
		rk := c.redisKey(entries[i].Key)
		for _, t := range slices.Compact(slices.Sorted(slices.Values(entries[i].Tags))) {
			calls = append(calls, tagAddScript.cmds(vk, []string{c.tagSetKey(t)}, rk))
			owner = append(owner, i)
		}
	}
	if len(calls) == 0 {
		return nil
	}
	failed := map[int]outcome{}
	var outage error
	for n, r := range c.runScripts(opCtx, vk, calls) {
		err := r.Error()
		if err == nil {
			continue
		}
		o := classify(caller, opCtx, err)
		if o.kind != notAnOutage && outage == nil {
			outage = err
		}
		failed[owner[n]] = o
	}
	if outage != nil {
		refusing := c.avail.failed(epoch, classify(caller, opCtx, outage).kind, outage, c.cluster())
		for i, o := range failed {
			o.fallback = refusing && errors.Is(o.err, ErrUnavailable) && caller.Err() == nil
			failed[i] = o
		}
	}
	return failed
}

// runScripts sends each call's EVALSHA in one pipeline, and those the
// server did not hold (NOSCRIPT: not executed) again in full.
func (c *Client) runScripts(ctx context.Context, vk *valkeyClient, calls []writeCmds) []valkey.ValkeyResult {
	cmds := make([]valkey.Completed, len(calls))
	for i, w := range calls {
		cmds[i] = w.cmds[0]
	}
	res := vk.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range res {
		if replyCode(r.Error()) == "NOSCRIPT" {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		evals := make([]valkey.Completed, len(again))
		for n, i := range again {
			evals[n] = calls[i].eval[0]
		}
		for n, r := range vk.DoMulti(ctx, evals...) {
			res[again[n]] = r
		}
	}
	return res
}

// InvalidateResult says what InvalidateTags did.
type InvalidateResult struct {
	// Deleted counts the keys removed (in Redis, or in the fallback tier
	// when Backend says so).
	Deleted int
	Backend Backend
}

// InvalidateTags deletes every key written with any of tags. When it
// returns without error, every key written with one of them before the
// call began is gone from Redis. While Redis is unavailable, it removes the
// tagged entries of the fallback tier and returns ErrUnavailable: Redis was
// not reached, and the invalidation must be made again once it is back.
func (c *Client) InvalidateTags(ctx context.Context, tags []string) (InvalidateResult, error) {
	start := time.Now()
	var r InvalidateResult
	err := checkTags(tags)
	if err == nil && len(tags) == 0 {
		err = fmt.Errorf("%w: no tags given", ErrInvalidInput)
	}
	if err == nil {
		r, err = c.invalidateTags(ctx, slices.Compact(slices.Sorted(slices.Values(tags))))
	}
	c.observe(OpInvalidateTags, deleteOutcome(r.Deleted > 0, err), r.Backend, start)
	return r, err
}

func (c *Client) invalidateTags(ctx context.Context, tags []string) (InvalidateResult, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackInvalidate(tags, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	deleted := 0
	for _, t := range tags {
		n, err := c.invalidateTag(opCtx, vk, t)
		deleted += n
		if err != nil {
			o := c.failed(ctx, opCtx, epoch, OpInvalidateTags, err)
			if o.fallback {
				r, ferr := c.fallbackInvalidate(tags, o)
				r.Deleted += deleted
				return r, ferr
			}
			return InvalidateResult{Deleted: deleted, Backend: BackendRedis}, fmt.Errorf("%w (after deleting %d keys)", o.err, deleted)
		}
	}
	c.avail.succeeded()
	return InvalidateResult{Deleted: deleted, Backend: BackendRedis}, nil
}

// invalidateTag deletes the keys in one tag set, a page at a time, and
// prunes the entries it read.
func (c *Client) invalidateTag(ctx context.Context, vk *valkeyClient, tag string) (int, error) {
	set := c.tagSetKey(tag)
	deleted := 0
	var cursor uint64
	for {
		page, err := vk.Do(ctx, vk.B().Zscan().Key(set).Cursor(cursor).Count(500).Build().Pin()).AsScanEntry()
		if err != nil {
			return deleted, err
		}
		pairs := page.Elements // key, score, key, score, ...
		if len(pairs) > 0 {
			var cmds []valkey.Completed
			for i := 0; i+1 < len(pairs); i += 2 {
				// Deleting the key revokes its lease too (see leases.go).
				cmds = append(cmds, vk.B().Del().Key(pairs[i]).Build().Pin(), vk.B().Del().Key(c.leaseKey(pairs[i])).Build().Pin())
				if !c.clientCacheOff() {
					// As writeFenced: this instance's next read of the
					// key sees it gone.
					cmds = append(cmds, vk.B().Pttl().Key(pairs[i]).Build().Pin())
				}
			}
			res := vk.DoMulti(ctx, cmds...)
			step := 2
			if !c.clientCacheOff() {
				step = 3
			}
			var gone []Change
			for i := 0; i < len(res); i += step {
				n, err := res[i].AsInt64()
				if err != nil {
					return deleted, err
				}
				deleted += int(n)
				if key, ok := c.clientKey(pairs[i/step*2]); ok && n > 0 {
					gone = append(gone, Change{Key: key, Kind: ChangeInvalidated, Tags: []string{tag}})
				}
			}
			c.publish(ctx, vk, gone...)
			if err := c.prune(ctx, vk, set, pairs); err != nil {
				return deleted, err
			}
		}
		if page.Cursor == 0 {
			return deleted, nil
		}
		cursor = page.Cursor
	}
}

// prune removes the index entries of pairs (key, score as read) whose keys
// are gone and which are older than the horizon (see tagPruneScript).
func (c *Client) prune(ctx context.Context, vk *valkeyClient, set string, pairs []string) error {
	args := append([]string{strconv.FormatInt(c.tagHorizon().Milliseconds(), 10)}, pairs...)
	return firstError(c.runScripts(ctx, vk, []writeCmds{tagPruneScript.cmds(vk, []string{set}, args...)}))
}

func (c *Client) fallbackInvalidate(tags []string, refused outcome) (InvalidateResult, error) {
	if !refused.fallback {
		return InvalidateResult{}, refused.err
	}
	n := 0
	if c.avail.withFallback(func(m *memoryTier) error {
		n = m.invalidateTags(tags)
		return nil
	}) != nil {
		return InvalidateResult{}, refused.err
	}
	return InvalidateResult{Deleted: n, Backend: BackendMemory},
		fmt.Errorf("%w; %d entries of the fallback tier were removed, but Redis was not reached: invalidate again when it is back", refused.err, n)
}

// sweepTags prunes dead entries from the tag sets, a bounded number per
// call: tags written once and never invalidated must not keep the keys of
// their long-gone entries forever. The monitor calls it now and then.
func (c *Client) sweepTags(ctx context.Context, vk *valkeyClient, budget int) {
	pattern := c.internalKey("tag:") + "*"
	for _, node := range vk.Nodes() {
		var cursor uint64
		for budget > 0 {
			page, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(100).Type("zset").Build().Pin()).AsScanEntry()
			if err != nil {
				break
			}
			for _, set := range page.Elements {
				if budget--; budget < 0 {
					break
				}
				c.pruneDead(ctx, vk, set)
			}
			if page.Cursor == 0 {
				break
			}
			cursor = page.Cursor
		}
	}
}

// pruneDead checks the oldest entries of one tag set and prunes those whose
// keys no longer exist.
func (c *Client) pruneDead(ctx context.Context, vk *valkeyClient, set string) {
	oldest, err := vk.Do(ctx, vk.B().Zrange().Key(set).Min("0").Max("63").Withscores().Build().Pin()).AsZScores()
	if err != nil || len(oldest) == 0 {
		return
	}
	cmds := make([]valkey.Completed, len(oldest))
	for i, z := range oldest {
		cmds[i] = vk.B().Exists().Key(z.Member).Build().Pin()
	}
	var dead []string
	for i, r := range vk.DoMulti(ctx, cmds...) {
		if n, err := r.AsInt64(); err == nil && n == 0 {
			dead = append(dead, oldest[i].Member, strconv.FormatInt(int64(oldest[i].Score), 10))
		}
	}
	if len(dead) > 0 {
		_ = c.prune(ctx, vk, set, dead)
	}
}
