package graph

import (
	"context"
	"errors"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// readFailure turns a failed read into what the client sees: an outage is a
// miss with a warning (the response still has data), anything else an error.
func readFailure(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, cache.ErrUnavailable):
		addWarning(ctx, WarningRedisUnavailable, "Redis is unavailable; the read was answered as a miss")
		return nil
	case errors.Is(err, cache.ErrNoReply):
		addWarning(ctx, WarningNoReply, "Redis did not reply in time; the read was answered as a miss")
		return nil
	}
	return err
}

// writeFailure says why a write was not confirmed, in the payload's terms.
// Errors that are not about Redis (bad input, bugs) come back as err.
func writeFailure(err error) (model.CacheWriteFailure, string, error) {
	switch {
	case errors.Is(err, cache.ErrUnavailable):
		return model.CacheWriteFailureRedisUnavailable, "Redis is unavailable; nothing was written.", nil
	case errors.Is(err, cache.ErrNoReply):
		return model.CacheWriteFailureNoReply, "Redis did not reply in time; the write may or may not have been applied.", nil
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
	return m
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
