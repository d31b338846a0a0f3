// Package cache is the service's Redis (or Valkey) cache client: a wrapper
// around one valkey-go client that survives Redis being absent, slow or
// restarted.
//
// [New] returns at once and connects in the background, retrying with
// exponential backoff; it never fails because Redis is down. A monitor
// goroutine probes Redis (PING, then INFO where the ACL allows it) and keeps
// one availability state, [StatusConnected], [StatusDegraded] or
// [StatusDisconnected], that [Client.Health] returns without sending
// anything to Redis.
//
// One owner, in availability.go, keeps the circuit breaker ([BreakerState])
// in front of Redis, the failure counters and the health snapshot: the
// breaker opens when requests cannot reach Redis (no connection can be
// opened, or the server cannot serve) or a probe fails, goes half-open
// while the monitor probes, and closes when a probe that began after the
// trip is answered. While it is open, operations return [ErrUnavailable]
// at once: nothing waits on a dial. A connection that the server or the
// network closes under the client is not an outage: valkey-go reconnects,
// reads in flight are sent again, and a write that may have been applied
// reports [ErrNoReply] and is never sent twice.
//
// With Options.Fallback set to [FallbackMemory], a bounded in-process store
// answers while the breaker refuses Redis, and every operation says which
// [Backend] served it; fallback.go states its contract. Every operation
// runs under Options.CommandTimeout, retries included, so no caller is held
// longer. A miss is not an error: [Client.Get] reports it as a nil value. A
// write reports an error unless it was confirmed; [ErrNoReply] says the
// outcome is unknown, [ErrRejected] that Redis refused, [ErrUnavailable]
// that it was not executed.
//
// Beyond Get, Set, Delete, Exists and GetMany: [Client.GetEntry] returns a
// value with its TTL and [ETag] (the SHA-1 of the stored bytes, which Redis
// computes too); [Client.SetWith] writes with a TTL, tags and a
// [Condition] (IfAbsent, or IfETag for an atomic compare-and-set, refused
// with [ErrConditionNotMet]); [Client.Increment] is an atomic 64-bit
// counter whose TTL is set only when it is created; [Client.Expire] sets or
// removes a TTL; [Client.SetMany] and [Client.DeleteMany] batch writes
// with a result per entry (not atomic across keys); and
// [Client.InvalidateTags] deletes every key written with a tag (tags.go
// says how the index works and what it guarantees). [Client.Fetch] and
// [Client.GetOrCompute] protect a missing hot key from a stampede with a
// lease: one caller computes, the others wait for its value, and a stale
// write after the key changed is refused with [ErrLeaseInvalid]
// (leases.go).
//
// Every write that Redis confirms is announced on a pub/sub channel in the
// service's namespace; [Client.Watch] delivers the announcements of every
// instance on the same Redis, with expiries, evictions and other programs'
// writes from keyspace notifications when the server sends them. Delivery
// is at most once, and a watcher is told when it may have missed a change
// ([ChangeResync]); changes.go says why and how. [Client.WatchHealth]
// sends health transitions.
//
// State changes are logged once each: a WARN when Redis becomes
// unreachable (with the cause), at most one reminder per
// Options.OutageReminder while it stays so, an INFO when it is back; a Redis
// that flaps is damped to a few lines. An [Observer] sees every operation
// and change, for metrics.
// Operations never log per call, except for commands Redis rejects, which
// are throttled to one line per kind of error per reminder interval.
//
// Every key is stored under Options.KeyPrefix; callers never see or choose
// the prefix. Values are JSON text.
package cache
