package cache

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"
)

// The operations beyond get and set: entries with their TTL and ETag,
// conditional writes, counters, TTL control and batches. Tags are in
// tags.go. Each follows the same rules as Set and Get: the key rules, the
// breaker, the fallback's contract, truthful errors.

// ErrConditionNotMet means a conditional write was refused by its
// condition: nothing was written. SetResult.CurrentETag says what the key
// holds.
var ErrConditionNotMet = errors.New("condition not met")

// ETag is the entity tag of a stored value: the SHA-1 of its bytes as Redis
// holds them, in lowercase hex. Redis computes the same digest
// (redis.sha1hex), which is what makes a compare-and-set on it atomic.
func ETag(stored []byte) string {
	sum := sha1.Sum(stored)
	return hex.EncodeToString(sum[:])
}

func checkETag(etag string) error {
	if len(etag) != 2*sha1.Size {
		return fmt.Errorf("%w: an etag is %d hexadecimal digits", ErrInvalidInput, 2*sha1.Size)
	}
	if _, err := hex.DecodeString(etag); err != nil {
		return fmt.Errorf("%w: an etag is %d hexadecimal digits", ErrInvalidInput, 2*sha1.Size)
	}
	return nil
}

// Entry is a value with what a caller needs to update it safely.
type Entry struct {
	// Value is the JSON value (a value that is not JSON is returned as a
	// JSON string, as Get does).
	Value json.RawMessage
	// TTL is the time left before the key expires; zero when it does not.
	TTL time.Duration
	// ETag identifies the stored bytes; pass it as Condition.IfETag to
	// write only if nobody changed the value meanwhile.
	ETag    string
	Backend Backend
}

// GetEntry returns the value at key with its remaining TTL and ETag, in one
// round trip, or nil on a miss. It reads Redis every time (not the local
// cache): it is for read-modify-write, where the TTL and ETag must be
// current.
func (c *Client) GetEntry(ctx context.Context, key string) (*Entry, error) {
	start := time.Now()
	var e *Entry
	err := checkKey(key)
	if err == nil {
		e, err = c.getEntry(ctx, c.redisKey(key))
	}
	var backend Backend
	if e != nil {
		backend = e.Backend
	}
	c.observe(OpEntry, readOutcome(e != nil, err), backend, start)
	return e, err
}

func (c *Client) getEntry(ctx context.Context, rk string) (*Entry, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackEntry(rk, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	// MULTI makes the value and its TTL one snapshot. Redis out of memory
	// refuses commands queued in a MULTI, though reads are allowed: then
	// both are read plainly, one after the other in the same pipeline.
	res := vk.DoMulti(opCtx,
		vk.B().Multi().Build().Pin(), vk.B().Get().Key(rk).Build().Pin(), vk.B().Pttl().Key(rk).Build().Pin(), vk.B().Exec().Build().Pin())
	exec, err := res[3].ToArray()
	if err == nil && len(exec) == 2 {
		return c.entryFrom(ctx, opCtx, epoch, rk, exec[0], exec[1])
	}
	if _, isReply := valkey.IsValkeyErr(err); !isReply {
		if err == nil {
			err = fmt.Errorf("unexpected reply to EXEC: %d elements", len(exec))
		}
		return c.fallbackEntry(rk, c.failed(ctx, opCtx, epoch, OpEntry, err))
	}
	plain := vk.DoMulti(opCtx, vk.B().Get().Key(rk).Build().Pin(), vk.B().Pttl().Key(rk).Build().Pin())
	v, err := plain[0].ToMessage()
	if err != nil && !valkey.IsValkeyNil(err) {
		return c.fallbackEntry(rk, c.failed(ctx, opCtx, epoch, OpEntry, err))
	}
	pt, err := plain[1].ToMessage()
	if err != nil {
		return c.fallbackEntry(rk, c.failed(ctx, opCtx, epoch, OpEntry, err))
	}
	return c.entryFrom(ctx, opCtx, epoch, rk, v, pt)
}

// entryFrom builds an Entry from the replies to GET and PTTL.
func (c *Client) entryFrom(caller, opCtx context.Context, epoch uint64, rk string, value, pttl valkey.ValkeyMessage) (*Entry, error) {
	b, err := value.AsBytes()
	switch {
	case valkey.IsValkeyNil(err):
		c.avail.succeeded()
		return nil, nil
	case err != nil:
		return c.fallbackEntry(rk, c.failed(caller, opCtx, epoch, OpEntry, err))
	}
	c.avail.succeeded()
	if err := c.checkStored(b); err != nil {
		return nil, err
	}
	ms, err := pttl.AsInt64()
	if err != nil {
		return nil, fmt.Errorf("%w: unexpected reply to PTTL: %w", ErrRejected, err)
	}
	e := &Entry{Value: asJSON(b), ETag: ETag(b), Backend: BackendRedis}
	if ms > 0 {
		e.TTL = time.Duration(ms) * time.Millisecond
	}
	return e, nil
}

func (c *Client) fallbackEntry(rk string, refused outcome) (*Entry, error) {
	var e *Entry
	if !refused.fallback || c.avail.withFallback(func(m *memoryTier) error {
		if v, ttl, ok := m.getEntry(rk); ok {
			e = &Entry{Value: v, TTL: ttl, ETag: ETag(v), Backend: BackendMemory}
		}
		return nil
	}) != nil {
		return nil, refused.err
	}
	if e == nil {
		// A miss from memory still says who answered.
		return nil, nil
	}
	return e, nil
}

// Condition is what a conditional write requires of the key's current
// value. The zero value requires nothing.
type Condition struct {
	// IfAbsent stores only if the key holds no value (SET NX).
	IfAbsent bool
	// IfETag stores only if the key holds a value with this ETag: a
	// compare-and-set, atomic in Redis.
	IfETag string
}

func (cond Condition) holds(exists bool, current string) bool {
	switch {
	case cond.IfAbsent:
		return !exists
	case cond.IfETag != "":
		return exists && current == cond.IfETag
	}
	return true
}

func (cond Condition) check() error {
	switch {
	case cond.IfAbsent && cond.IfETag != "":
		return fmt.Errorf("%w: ifAbsent and ifEtag cannot both be set", ErrInvalidInput)
	case cond.IfETag != "":
		return checkETag(cond.IfETag)
	}
	return nil
}

// SetOptions refine Set.
type SetOptions struct {
	// TTL: zero keeps the value until deleted.
	TTL time.Duration
	// Condition, when set, makes the write conditional.
	Condition
	// Tags name groups the key belongs to, for InvalidateTags.
	Tags []string
	// Lease, from Fetch, makes the write the lease holder's: it stores and
	// releases the lease, or is refused with ErrLeaseInvalid when the lease
	// expired or was revoked. Not with a Condition.
	Lease string
}

// SetResult says how a write ended.
type SetResult struct {
	Backend Backend
	// CurrentETag is, when the condition refused the write
	// (ErrConditionNotMet), the ETag of the value the key holds; empty
	// when it holds none.
	CurrentETag string
}

// SetWith stores value at key as Set does, with a TTL, a condition and
// tags. A nil error means the write was confirmed; ErrConditionNotMet
// that the condition refused it (nothing written, CurrentETag set).
func (c *Client) SetWith(ctx context.Context, key string, value json.RawMessage, opts SetOptions) (SetResult, error) {
	start := time.Now()
	var r SetResult
	err := c.checkSet(key, value, opts.TTL)
	if err == nil {
		err = opts.Condition.check()
	}
	if err == nil && opts.Lease != "" {
		err = checkLease(opts)
	}
	if err == nil {
		err = checkTags(opts.Tags)
	}
	if err == nil {
		r, err = c.setWith(ctx, c.redisKey(key), value, opts)
	}
	c.observe(OpSet, writeOutcome(err), r.Backend, start)
	return r, err
}

func (c *Client) setWith(ctx context.Context, rk string, value json.RawMessage, opts SetOptions) (SetResult, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackSetWith(rk, value, opts, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	var made []tagEntry
	if len(opts.Tags) > 0 {
		// The index first: a key never exists with a tag the index does
		// not know of (see tags.go).
		var failed *outcome
		if made, failed = c.tag(ctx, opCtx, epoch, vk, rk, opts.Tags); failed != nil {
			return c.fallbackSetWith(rk, value, opts, *failed)
		}
	}
	w := c.setCmds(vk, rk, value, opts)
	res, failed := c.write(ctx, opCtx, epoch, OpSet, vk, rk, w)
	if failed != nil {
		return c.fallbackSetWith(rk, value, opts, *failed)
	}
	r, err := setReply(opts, res[0])
	if errors.Is(err, ErrConditionNotMet) || errors.Is(err, ErrLeaseInvalid) {
		c.untag(opCtx, vk, rk, made)
	}
	if err == nil {
		if key, ok := c.clientKey(rk); ok {
			c.publishSet(key, value, opts.Tags)
		}
	}
	return r, err
}

// setReply reads the reply to a write with opts.
func setReply(opts SetOptions, reply valkey.ValkeyResult) (SetResult, error) {
	switch {
	case opts.IfAbsent:
		// SET NX GET: nil when it stored, the old value when not.
		old, err := reply.AsBytes()
		if valkey.IsValkeyNil(err) {
			return SetResult{Backend: BackendRedis}, nil
		}
		if err != nil {
			return SetResult{}, fmt.Errorf("%w: unexpected reply to SET NX GET: %w", ErrRejected, err)
		}
		return SetResult{Backend: BackendRedis, CurrentETag: ETag(old)}, ErrConditionNotMet
	case opts.IfETag != "":
		return casReply(reply)
	case opts.Lease != "":
		if n, err := reply.AsInt64(); err != nil || n != 1 {
			return SetResult{Backend: BackendRedis}, ErrLeaseInvalid
		}
	}
	return SetResult{Backend: BackendRedis}, nil
}

// setCmds builds the commands of a write with opts. Every write but one
// with a lease revokes the key's lease (see leases.go).
func (c *Client) setCmds(vk *valkeyClient, rk string, value json.RawMessage, opts SetOptions) writeCmds {
	switch {
	case opts.Lease != "":
		return leaseSetScript.cmds(vk, []string{rk, c.leaseKey(rk)}, opts.Lease, string(value), px(opts.TTL))
	case opts.IfETag != "":
		return casScript.cmds(vk, []string{rk, c.leaseKey(rk)}, opts.IfETag, string(value), px(opts.TTL))
	case opts.IfAbsent:
		args := []string{string(value), "NX", "GET"}
		if opts.TTL > 0 {
			args = append(args, "PX", px(opts.TTL))
		}
		return c.revoking(vk, rk, vk.B().Arbitrary("SET").Keys(rk).Args(args...).Build().Pin())
	}
	set := vk.B().Set().Key(rk).Value(valkey.BinaryString(value))
	switch {
	case opts.TTL == 0:
		return c.revoking(vk, rk, set.Build().Pin())
	case opts.TTL%time.Second == 0:
		return c.revoking(vk, rk, set.Ex(opts.TTL).Build().Pin())
	}
	return c.revoking(vk, rk, set.Px(opts.TTL).Build().Pin())
}

func px(ttl time.Duration) string { return strconv.FormatInt(ttl.Milliseconds(), 10) }

// revoking sends cmds with the deletion of rk's lease after them, in the
// same pipeline (the lease key is in rk's slot). The slice has room for
// writeFenced's fence, so that a write's commands are one allocation.
func (c *Client) revoking(vk *valkeyClient, rk string, cmds ...valkey.Completed) writeCmds {
	all := make([]valkey.Completed, 0, len(cmds)+2)
	all = append(all, cmds...)
	return writeCmds{cmds: append(all, vk.B().Del().Key(c.leaseKey(rk)).Build().Pin())}
}

// casReply reads the compare-and-set script's reply: {1} stored; {0, etag}
// refused, with the current value's etag; {0} refused, no value there.
func casReply(r valkey.ValkeyResult) (SetResult, error) {
	arr, err := r.ToArray()
	if err != nil || len(arr) == 0 {
		return SetResult{}, fmt.Errorf("%w: unexpected reply to the compare-and-set script: %v", ErrRejected, err)
	}
	stored, _ := arr[0].AsInt64()
	if stored == 1 {
		return SetResult{Backend: BackendRedis}, nil
	}
	res := SetResult{Backend: BackendRedis}
	if len(arr) > 1 {
		res.CurrentETag, _ = arr[1].ToString()
	}
	return res, ErrConditionNotMet
}

func (c *Client) fallbackSetWith(rk string, value json.RawMessage, opts SetOptions, refused outcome) (SetResult, error) {
	if !refused.fallback {
		return SetResult{}, refused.err
	}
	var stored bool
	var current string
	err := c.avail.withFallback(func(m *memoryTier) error {
		var err error
		stored, current, err = m.setIf(rk, value, opts.TTL, opts.Tags, opts.Condition)
		return err
	})
	switch {
	case err == nil && stored:
		return SetResult{Backend: BackendMemory}, nil
	case err == nil:
		return SetResult{Backend: BackendMemory, CurrentETag: current}, ErrConditionNotMet
	case errors.Is(err, errFallbackFull):
		return SetResult{}, fmt.Errorf("%w; the fallback tier is full (%d bytes) and did not take the write either", refused.err, c.opts.FallbackMaxBytes)
	}
	return SetResult{}, refused.err
}

// Increment adds by to the 64-bit integer stored at key, creating it at 0
// first, atomically, and returns the new value. ttl, when not zero, is
// applied only when the increment creates the key: later increments do not
// extend it (a fixed window, as a rate limiter needs). A key holding
// anything but an integer, or a sum that would overflow, is ErrRejected.
func (c *Client) Increment(ctx context.Context, key string, by int64, ttl time.Duration) (int64, Backend, error) {
	start := time.Now()
	var n int64
	var backend Backend
	err := checkKey(key)
	if err == nil {
		err = c.checkTTL(ttl)
	}
	if err == nil {
		n, backend, err = c.increment(ctx, c.redisKey(key), by, ttl)
	}
	c.observe(OpIncrement, writeOutcome(err), backend, start)
	return n, backend, err
}

func (c *Client) increment(ctx context.Context, rk string, by int64, ttl time.Duration) (int64, Backend, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackIncrement(rk, by, ttl, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	incr := vk.B().Incrby().Key(rk).Increment(by).Build().Pin()
	w := c.revoking(vk, rk, incr)
	if ttl > 0 {
		// SET NX creates the key with its TTL only when it is absent; in
		// one transaction with the INCRBY, so the key cannot expire in
		// between and come back without one.
		w = c.revoking(vk, rk,
			vk.B().Multi().Build().Pin(),
			vk.B().Set().Key(rk).Value("0").Nx().Px(ttl).Build().Pin(),
			incr,
			vk.B().Exec().Build().Pin(),
		)
	}
	res, failed := c.write(ctx, opCtx, epoch, OpIncrement, vk, rk, w)
	if failed != nil {
		return c.fallbackIncrement(rk, by, ttl, *failed)
	}
	reply := res[0]
	if ttl > 0 {
		exec, err := res[3].ToArray()
		if err != nil || len(exec) != 2 {
			return 0, "", fmt.Errorf("%w: unexpected reply to the increment: %v", ErrRejected, err)
		}
		if err := exec[1].Error(); err != nil {
			return 0, "", counterRejected(err)
		}
		n, err := exec[1].AsInt64()
		if err != nil {
			return 0, "", counterRejected(err)
		}
		c.incremented(opCtx, vk, rk, n)
		return n, BackendRedis, nil
	}
	n, err := reply.AsInt64()
	if err != nil {
		return 0, "", counterRejected(err)
	}
	c.incremented(opCtx, vk, rk, n)
	return n, BackendRedis, nil
}

// incremented announces a counter's new value.
func (c *Client) incremented(ctx context.Context, vk *valkeyClient, rk string, n int64) {
	if key, ok := c.clientKey(rk); ok {
		c.publish(ctx, vk, Change{Key: key, Kind: ChangeIncremented, ETag: ETag(strconv.AppendInt(nil, n, 10))})
	}
}

// ErrNotCounter, wrapped with ErrRejected, is why Increment was refused.
var ErrNotCounter = errors.New("the key holds a value that is not a 64-bit integer, or the sum would overflow")

func counterRejected(err error) error {
	return fmt.Errorf("%w: %w (%w)", ErrRejected, ErrNotCounter, err)
}

func (c *Client) fallbackIncrement(rk string, by int64, ttl time.Duration, refused outcome) (int64, Backend, error) {
	if !refused.fallback {
		if code := replyCode(refused.err); errors.Is(refused.err, ErrRejected) && (code == "ERR" || code == "WRONGTYPE") {
			// INCRBY's own refusals: not an integer, overflow, another type.
			return 0, "", counterRejected(refused.err)
		}
		return 0, "", refused.err
	}
	var n int64
	err := c.avail.withFallback(func(m *memoryTier) error {
		var err error
		n, err = m.incr(rk, by, ttl)
		return err
	})
	switch {
	case err == nil:
		return n, BackendMemory, nil
	case errors.Is(err, ErrNotCounter):
		return 0, "", fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.Is(err, errFallbackFull):
		return 0, "", fmt.Errorf("%w; the fallback tier is full (%d bytes) and did not take the write either", refused.err, c.opts.FallbackMaxBytes)
	}
	return 0, "", refused.err
}

// parseCounter reads a stored counter.
func parseCounter(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, ErrNotCounter
	}
	return n, nil
}

func addCounter(n, by int64) (int64, error) {
	if by > 0 && n > math.MaxInt64-by || by < 0 && n < math.MinInt64-by {
		return 0, ErrNotCounter
	}
	return n + by, nil
}

// Expire sets a new TTL on key, or removes its TTL when ttl is zero, and
// reports whether the key existed.
func (c *Client) Expire(ctx context.Context, key string, ttl time.Duration) (bool, Backend, error) {
	start := time.Now()
	var existed bool
	var backend Backend
	err := checkKey(key)
	if err == nil {
		err = c.checkTTL(ttl)
	}
	if err == nil {
		existed, backend, err = c.expire(ctx, c.redisKey(key), ttl)
	}
	c.observe(OpExpire, deleteOutcome(existed, err), backend, start)
	return existed, backend, err
}

func (c *Client) expire(ctx context.Context, rk string, ttl time.Duration) (bool, Backend, error) {
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		return c.fallbackExpire(rk, ttl, *refused)
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	// PEXPIRE says whether the key existed; PERSIST only whether it had a
	// TTL, so EXISTS goes with it.
	w := one(vk.B().Pexpire().Key(rk).Milliseconds(ttl.Milliseconds()).Build().Pin())
	if ttl == 0 {
		w = writeCmds{cmds: []valkey.Completed{vk.B().Exists().Key(rk).Build().Pin(), vk.B().Persist().Key(rk).Build().Pin()}}
	}
	res, failed := c.write(ctx, opCtx, epoch, OpExpire, vk, rk, w)
	if failed != nil {
		return c.fallbackExpire(rk, ttl, *failed)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return false, "", fmt.Errorf("%w: unexpected reply: %w", ErrRejected, err)
	}
	if key, ok := c.clientKey(rk); ok && n > 0 {
		c.publish(opCtx, vk, Change{Key: key, Kind: ChangeTTL})
	}
	return n > 0, BackendRedis, nil
}

func (c *Client) fallbackExpire(rk string, ttl time.Duration, refused outcome) (bool, Backend, error) {
	var existed bool
	if !refused.fallback || c.avail.withFallback(func(m *memoryTier) error {
		existed = m.expire(rk, ttl)
		return nil
	}) != nil {
		return false, "", refused.err
	}
	return existed, BackendMemory, nil
}

// MaxBatch is the most entries one SetMany or DeleteMany may carry.
const MaxBatch = 100

// SetEntry is one write of a SetMany.
type SetEntry struct {
	Key   string
	Value json.RawMessage
	TTL   time.Duration
	Tags  []string
}

// WriteResult is one write's outcome in a batch: a nil Err means it was
// confirmed, by Backend.
type WriteResult struct {
	Backend Backend
	Err     error
}

// SetMany stores several values, each as Set does, in one round trip per
// server (per slot group in a cluster). results[i] answers entries[i]; one
// entry's failure never hides another's. It is not atomic across keys:
// some may be stored and others not. The error is non-nil only when the
// batch as a whole is refused (more than MaxBatch entries).
func (c *Client) SetMany(ctx context.Context, entries []SetEntry) ([]WriteResult, error) {
	start := time.Now()
	if len(entries) > MaxBatch {
		c.observe(OpSetMany, OutcomeInvalid, "", start)
		return nil, fmt.Errorf("%w: %d entries; the limit is %d", ErrInvalidInput, len(entries), MaxBatch)
	}
	results := make([]WriteResult, len(entries))
	for i, e := range entries {
		err := c.checkSet(e.Key, e.Value, e.TTL)
		if err == nil {
			err = checkTags(e.Tags)
		}
		results[i].Err = err
	}
	c.batch(ctx, OpSetMany, batchWrites{
		results: results,
		key:     func(i int) string { return c.redisKey(entries[i].Key) },
		cmds: func(vk *valkeyClient, i int) writeCmds {
			e := entries[i]
			return c.setCmds(vk, c.redisKey(e.Key), e.Value, SetOptions{TTL: e.TTL})
		},
		fallback: func(i int, refused outcome) WriteResult {
			e := entries[i]
			r, err := c.fallbackSetWith(c.redisKey(e.Key), e.Value, SetOptions{TTL: e.TTL, Tags: e.Tags}, refused)
			return WriteResult{Backend: r.Backend, Err: err}
		},
		before: func(opCtx context.Context, epoch uint64, vk *valkeyClient, idx []int) map[int]outcome {
			return c.tagBatch(ctx, opCtx, epoch, vk, idx, entries)
		},
	})
	var changes []Change
	for i, r := range results {
		if r.Err == nil && r.Backend == BackendRedis {
			changes = append(changes, Change{Key: entries[i].Key, Kind: ChangeSet, ETag: ETag(entries[i].Value), Tags: entries[i].Tags})
		}
	}
	c.announce(ctx, changes)
	c.observe(OpSetMany, batchOutcome(results), batchBackend(results), start)
	return results, nil
}

// DeleteResult is one delete's outcome in a DeleteMany.
type DeleteResult struct {
	// Deleted says a value existed and was removed.
	Deleted bool
	Backend Backend
	Err     error
}

// DeleteMany removes several keys, each as Delete does, in one round trip
// per server (per slot group in a cluster). results[i] answers keys[i]. It
// is not atomic across keys.
func (c *Client) DeleteMany(ctx context.Context, keys []string) ([]DeleteResult, error) {
	start := time.Now()
	if len(keys) > MaxBatch {
		c.observe(OpDeleteMany, OutcomeInvalid, "", start)
		return nil, fmt.Errorf("%w: %d keys; the limit is %d", ErrInvalidInput, len(keys), MaxBatch)
	}
	writes := make([]WriteResult, len(keys))
	for i, k := range keys {
		writes[i].Err = checkKey(k)
	}
	deleted := make([]bool, len(keys))
	replies := c.batch(ctx, OpDeleteMany, batchWrites{
		results: writes,
		key:     func(i int) string { return c.redisKey(keys[i]) },
		cmds: func(vk *valkeyClient, i int) writeCmds {
			return c.revoking(vk, c.redisKey(keys[i]), vk.B().Del().Key(c.redisKey(keys[i])).Build().Pin())
		},
		fallback: func(i int, refused outcome) WriteResult {
			d, b, err := c.fallbackDelete(c.redisKey(keys[i]), refused)
			deleted[i] = d
			return WriteResult{Backend: b, Err: err}
		},
	})
	results := make([]DeleteResult, len(keys))
	var changes []Change
	for i, w := range writes {
		if w.Err == nil && w.Backend == BackendRedis {
			n, _ := replies[i][0].AsInt64()
			deleted[i] = n > 0
			if deleted[i] {
				changes = append(changes, Change{Key: keys[i], Kind: ChangeDelete})
			}
		}
		results[i] = DeleteResult{Deleted: deleted[i], Backend: w.Backend, Err: w.Err}
	}
	c.announce(ctx, changes)
	c.observe(OpDeleteMany, batchOutcome(writes), batchBackend(writes), start)
	return results, nil
}

// announce publishes the changes of a batch, after it, within a command
// timeout of its own.
func (c *Client) announce(ctx context.Context, changes []Change) {
	vk := c.vk.Load()
	if len(changes) == 0 || vk == nil {
		return
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	c.publish(opCtx, vk, changes...)
}

// batchWrites describes independent writes sent as one batch.
type batchWrites struct {
	// results holds each write's outcome; an entry with Err already set
	// (invalid input) is not sent.
	results []WriteResult
	key     func(i int) string
	cmds    func(vk *valkeyClient, i int) writeCmds
	// fallback answers write i when Redis did not execute it.
	fallback func(i int, refused outcome) WriteResult
	// before, when set, runs before the writes for the entries to send,
	// and returns the ones that must not be sent, with why.
	before func(opCtx context.Context, epoch uint64, vk *valkeyClient, idx []int) map[int]outcome
}

// batch sends the writes of b in one pipeline (valkey-go splits it by slot
// in a cluster), each fenced as writeFenced does, and sends again, within
// the deadline, those Redis certainly did not execute, as write does. It
// fills b.results and returns the replies of each write that Redis
// confirmed.
func (c *Client) batch(ctx context.Context, op Op, b batchWrites) [][]valkey.ValkeyResult {
	replies := make([][]valkey.ValkeyResult, len(b.results))
	var idx []int
	for i, r := range b.results {
		if r.Err == nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return replies
	}
	vk, epoch, refused := c.acquire(ctx)
	if refused != nil {
		for _, i := range idx {
			b.results[i] = b.fallback(i, *refused)
		}
		return replies
	}
	opCtx, lazy := c.commandContext(ctx)
	defer lazy.Cancel()
	if b.before != nil {
		failed := b.before(opCtx, epoch, vk, idx)
		kept := idx[:0]
		for _, i := range idx {
			if o, ok := failed[i]; ok {
				b.results[i] = b.fallback(i, o)
				continue
			}
			kept = append(kept, i)
		}
		idx = kept
	}
	for attempt := 0; len(idx) > 0; attempt++ {
		var all []valkey.Completed
		offsets := make([]int, len(idx)+1)
		for n, i := range idx {
			offsets[n] = len(all)
			all = append(all, b.cmds(vk, i).cmds...)
			if !c.clientCacheOff() {
				all = append(all, vk.B().Pttl().Key(b.key(i)).Build().Pin())
			}
		}
		offsets[len(idx)] = len(all)
		res := vk.DoMulti(opCtx, all...)
		var again []int
		var outage error
		outcomes := map[int]outcome{}
		for n, i := range idx {
			mine := res[offsets[n]:offsets[n+1]]
			if !c.clientCacheOff() {
				mine = mine[:len(mine)-1] // the fence
			}
			err := firstError(mine)
			if err == nil {
				replies[i] = mine
				b.results[i] = WriteResult{Backend: BackendRedis}
				c.avail.confirmed(b.key(i))
				continue
			}
			o := classify(ctx, opCtx, err)
			if o.kind != notAnOutage && outage == nil {
				outage = err
			}
			if errors.Is(o.err, ErrRejected) {
				c.rejected.log(c.log, string(op), err)
			}
			outcomes[i] = o
		}
		if outage == nil {
			c.avail.succeeded()
		} else {
			c.avail.failed(epoch, classify(ctx, opCtx, outage).kind, outage, c.cluster())
		}
		_, closedNow := c.avail.allow()
		for i, o := range outcomes {
			o.fallback = !closedNow && errors.Is(o.err, ErrUnavailable) && ctx.Err() == nil
			if o.resend && !o.fallback && attempt < maxResends && !(attempt >= 1 && isDialFailure(o.err)) && opCtx.Err() == nil {
				again = append(again, i)
				b.results[i] = WriteResult{Err: o.err}
				continue
			}
			b.results[i] = b.fallback(i, o)
		}
		if len(again) == 0 {
			break
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-opCtx.Done():
			return replies
		}
		slices.Sort(again)
		idx = again
	}
	return replies
}

func batchOutcome(results []WriteResult) Outcome {
	for _, r := range results {
		if r.Err != nil {
			return writeOutcome(r.Err)
		}
	}
	return OutcomeStored
}

func batchBackend(results []WriteResult) Backend {
	for _, r := range results {
		if r.Backend != "" {
			return r.Backend
		}
	}
	return ""
}

func checkLease(opts SetOptions) error {
	switch {
	case opts.IfAbsent || opts.IfETag != "":
		return fmt.Errorf("%w: a write with a lease takes no condition (the lease is the condition)", ErrInvalidInput)
	case len(opts.Lease) != 32:
		return fmt.Errorf("%w: a lease is the 32-character token cacheFetch gave", ErrInvalidInput)
	}
	if _, err := hex.DecodeString(opts.Lease); err != nil {
		return fmt.Errorf("%w: a lease is the 32-character token cacheFetch gave", ErrInvalidInput)
	}
	return nil
}
