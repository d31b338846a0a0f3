package graph

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// ttlFromSeconds checks ttlSeconds before it becomes a Duration, so that a
// huge value cannot overflow into a small or negative one. The upper limit
// (CACHE_MAX_TTL) is the cache's to check.
func ttlFromSeconds(ttlSeconds *int) (time.Duration, error) {
	switch {
	case ttlSeconds == nil:
		return 0, nil
	case *ttlSeconds <= 0:
		return 0, badInput("ttlSeconds must be a positive number of seconds, or omitted for no expiry; got %d", *ttlSeconds)
	case *ttlSeconds > math.MaxInt32:
		return 0, badInput("ttlSeconds must be at most %d (a GraphQL Int); got %d", math.MaxInt32, *ttlSeconds)
	}
	return time.Duration(*ttlSeconds) * time.Second, nil
}

// warnIfFallback tells the client that a read was answered by this
// instance's memory, not by Redis.
func warnIfFallback(ctx context.Context, backend cache.Backend) {
	if code, msg, ok := fallbackWarning(backend); ok {
		addWarning(ctx, code, msg)
	}
}

// fallbackWarning is the warning for a read answered by backend, if any:
// one rule for the resolvers and the compiled read path.
func fallbackWarning(backend cache.Backend) (code, message string, ok bool) {
	if backend == cache.BackendMemory {
		return WarningServedFromMemory, "Redis is unavailable; the read was answered by this instance's in-process fallback tier", true
	}
	return "", "", false
}

// The backends a payload names, shared by every payload (nothing writes
// through a payload's pointers): a write's payload costs no allocation for
// them.
var (
	backendRedis  = model.CacheBackendRedis
	backendMemory = model.CacheBackendMemory
)

func backendModel(b cache.Backend) *model.CacheBackend {
	switch b {
	case cache.BackendRedis:
		return &backendRedis
	case cache.BackendMemory:
		return &backendMemory
	}
	return nil
}

// readFailure turns a failed read into what the client sees: an outage is a
// miss with a warning (the response still has data), anything else an error.
func readFailure(ctx context.Context, err error) error {
	if code, msg, ok := readWarning(err); ok {
		addWarning(ctx, code, msg)
		return nil
	}
	return err
}

// readWarning is the warning a failed read answers as a miss with, when it
// is one: one rule for the resolvers and the compiled read path.
func readWarning(err error) (code, message string, ok bool) {
	switch {
	case errors.Is(err, cache.ErrUnavailable):
		return WarningRedisUnavailable, "Redis is unavailable; the read was answered as a miss", true
	case errors.Is(err, cache.ErrNoReply):
		return WarningNoReply, "Redis did not reply in time; the read was answered as a miss", true
	}
	return "", "", false
}

// writeFailure says why a write was not confirmed, in the payload's terms.
// Errors that are not about Redis (bad input, bugs) come back as err.
func writeFailure(err error) (model.CacheWriteFailure, string, error) {
	switch {
	case errors.Is(err, cache.ErrConditionNotMet):
		return model.CacheWriteFailureConditionNotMet, "The write's condition did not hold; nothing was written.", nil
	case errors.Is(err, cache.ErrLeaseInvalid):
		return model.CacheWriteFailureLeaseInvalid, "The lease had expired or was revoked by another write of the key; nothing was written.", nil
	case errors.Is(err, cache.ErrUnavailable):
		return model.CacheWriteFailureRedisUnavailable, "Redis did not execute the write (unreachable, or the request's deadline passed before it was sent); nothing was written.", nil
	case errors.Is(err, cache.ErrNoReply):
		return model.CacheWriteFailureNoReply, "Redis did not reply in time; the write may or may not have been applied.", nil
	case errors.Is(err, cache.ErrNotCounter):
		return model.CacheWriteFailureRejected, "Redis rejected the increment: " + cache.ErrNotCounter.Error() + ". Nothing was changed.", nil
	case errors.Is(err, cache.ErrRejected):
		return model.CacheWriteFailureRejected, "Redis rejected the write; nothing was written.", nil
	}
	return "", "", err
}

var redisStatuses = map[cache.Status]model.RedisStatus{
	cache.StatusConnected:    model.RedisStatusConnected,
	cache.StatusDegraded:     model.RedisStatusDegraded,
	cache.StatusDisconnected: model.RedisStatusDisconnected,
}

func healthModel(h cache.Health) *model.RedisHealth {
	m := &model.RedisHealth{
		Status:      redisStatuses[h.Status],
		StatusSince: h.Since.UTC().Format(time.RFC3339Nano),
		Reason:      nonEmpty(h.Reason),
		LastError:   nonEmpty(h.LastError),
	}
	if h.Latency > 0 {
		ms := h.LatencyMs()
		m.LatencyMs = &ms
	}
	if s := h.Server; s != nil {
		mem, uptime, version := s.MemoryUsage(), int(s.UptimeSeconds), s.Version
		m.MemoryUsage, m.UptimeSeconds, m.ServerVersion = &mem, &uptime, &version
	}
	m.LastErrorAt = timestamp(h.LastErrorAt)
	m.CheckedAt = timestamp(h.CheckedAt)
	m.TLS, m.Addr = h.TLS, h.Addr
	if mode, ok := redisModes[h.Mode]; ok {
		m.Mode = &mode
	}
	if h.RESP > 0 {
		m.RespVersion = &h.RESP
	}
	if cl := h.Cluster; cl != nil {
		m.Cluster = &model.ClusterHealth{State: nonEmpty(cl.State), KnownNodes: cl.KnownNodes, Nodes: cl.Nodes, Reachable: cl.Reachable}
	}
	m.Breaker = breakerStates[h.Breaker]
	m.ConnectionResets = int(min(h.ConnectionResets, math.MaxInt32))
	m.LastConnectionResetAt = timestamp(h.LastConnectionResetAt)
	m.ClientCache = clientCacheStates[h.ClientCache]
	m.KeyspaceNotifications = keyspaceStates[h.KeyspaceNotifications]
	m.Fallback = &model.FallbackHealth{
		Mode:    model.FallbackModeNone,
		Active:  h.Fallback.Active,
		Entries: h.Fallback.Entries,
		Bytes:   int(min(h.Fallback.Bytes, math.MaxInt32)),
		Off:     nonEmpty(h.Fallback.Off),
	}
	if h.Fallback.Mode == cache.FallbackMemory {
		m.Fallback.Mode = model.FallbackModeMemory
	}
	return m
}

var clientCacheStates = map[cache.ClientCacheState]model.ClientCacheState{
	cache.ClientCacheOn:          model.ClientCacheStateOn,
	cache.ClientCacheUnknown:     model.ClientCacheStateUnknown,
	cache.ClientCacheOff:         model.ClientCacheStateOff,
	cache.ClientCacheUnsupported: model.ClientCacheStateUnsupported,
}

var keyspaceStates = map[cache.KeyspaceNotifications]model.KeyspaceNotifications{
	"":                    model.KeyspaceNotificationsUnknown,
	cache.KeyspaceUnknown: model.KeyspaceNotificationsUnknown,
	cache.KeyspaceOn:      model.KeyspaceNotificationsOn,
	cache.KeyspaceOff:     model.KeyspaceNotificationsOff,
}

var breakerStates = map[cache.BreakerState]model.BreakerState{
	cache.BreakerClosed:   model.BreakerStateClosed,
	cache.BreakerOpen:     model.BreakerStateOpen,
	cache.BreakerHalfOpen: model.BreakerStateHalfOpen,
}

var redisModes = map[cache.Mode]model.RedisMode{
	cache.ModeStandalone: model.RedisModeStandalone,
	cache.ModeSentinel:   model.RedisModeSentinel,
	cache.ModeCluster:    model.RedisModeCluster,
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// ttlSecondsOf renders a remaining TTL for a client: whole seconds, rounded
// up (a key with 300ms left has not expired); nil for none.
func ttlSecondsOf(ttl time.Duration) *int {
	if ttl <= 0 {
		return nil
	}
	s := int((ttl + time.Second - 1) / time.Second)
	return &s
}

// atIndex is the context of element i of a list field: what is reported
// there carries the path [field, i].
func atIndex(ctx context.Context, i int) context.Context {
	return graphql.WithPathContext(ctx, graphql.NewPathWithIndex(i))
}

// addErrorHere reports err at the path of ctx, for a list element whose
// value is null because of it.
func addErrorHere(ctx context.Context, err error) {
	graphql.AddError(ctx, graphql.AddFieldLocationToError(ctx, err))
}

// setPayload is what a write answered: stored, refused by its condition
// (with the current etag), or not confirmed; an error only for what is not
// about Redis (bad input).
func setPayload(key string, ttlSeconds *int, res cache.SetResult, err error) (*model.CacheSetPayload, error) {
	if err != nil {
		failure, message, ferr := writeFailure(err)
		if ferr != nil {
			return nil, ferr
		}
		p := &model.CacheSetPayload{Key: key, Failure: &failure, Message: &message}
		if failure == model.CacheWriteFailureConditionNotMet {
			p.CurrentEtag = nonEmpty(res.CurrentETag)
		}
		return p, nil
	}
	return &model.CacheSetPayload{Key: key, Stored: true, TTLSeconds: ttlSeconds, Backend: backendModel(res.Backend)}, nil
}

func deletePayload(key string, deleted bool, backend cache.Backend, err error) (*model.CacheDeletePayload, error) {
	if err != nil {
		failure, message, ferr := writeFailure(err)
		if ferr != nil {
			return nil, ferr
		}
		return &model.CacheDeletePayload{Key: key, Failure: &failure, Message: &message}, nil
	}
	return &model.CacheDeletePayload{Key: key, Deleted: deleted, Backend: backendModel(backend)}, nil
}

func invalidateMessage(failure model.CacheWriteFailure, res cache.InvalidateResult) string {
	switch {
	case failure == model.CacheWriteFailureRedisUnavailable && res.Backend == cache.BackendMemory:
		return "Redis was not reached; this instance's fallback tier dropped the tagged entries it held. Invalidate again once Redis is back."
	case failure == model.CacheWriteFailureRedisUnavailable:
		return "Redis was not reached; nothing was invalidated. Invalidate again once Redis is back."
	case failure == model.CacheWriteFailureNoReply:
		return "Redis stopped replying partway: the keys counted were deleted, others may remain. Invalidate again."
	}
	return "Redis refused part of the invalidation: the keys counted were deleted, others may remain."
}
