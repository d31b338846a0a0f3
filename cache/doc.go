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
// While Redis is unreachable, operations return [ErrUnavailable] at once:
// nothing waits on a dial. The request gate doubles as the circuit breaker
// ([BreakerState]): open while Redis is down, half-open while the monitor
// probes it, closed again once it answers. With Options.Fallback set to
// [FallbackMemory], a bounded in-process store answers instead while Redis
// is unavailable, and every operation says which [Backend] served it. Otherwise every operation runs under
// Options.CommandTimeout, retries of read-only commands included, so no
// caller is held longer. A miss is not an error: [Client.Get] reports it as
// found == false. A write reports an error unless Redis confirmed it;
// [ErrNoReply] says the outcome is unknown, [ErrRejected] that Redis refused.
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
