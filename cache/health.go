package cache

import (
	"fmt"
	"strconv"
	"time"
)

// Status is Redis's availability as the service sees it.
type Status string

const (
	// StatusConnected: Redis answers, fast.
	StatusConnected Status = "connected"
	// StatusDegraded: Redis answers, but slower than Options.DegradedLatency,
	// with commands timing out or failing since the last probe, or (in a
	// cluster) with some nodes down.
	StatusDegraded Status = "degraded"
	// StatusDisconnected: Redis cannot be reached (or refuses us, as with a
	// wrong password). Operations return at once without trying it.
	StatusDisconnected Status = "disconnected"
)

// ReasonConnecting is Health.Reason until the first attempt to reach Redis
// has finished.
const ReasonConnecting = "connecting"

// Health is a snapshot of what the background probe last saw. Reading it
// sends nothing to Redis.
type Health struct {
	Status Status
	// Since is when Status began.
	Since time.Time
	// CheckedAt is when the last probe finished; zero before the first.
	CheckedAt time.Time
	// Latency is the round trip of the last successful PING; zero if none.
	Latency time.Duration
	// Reason says why Status is degraded or disconnected; empty when connected.
	Reason string
	// LastError is the most recent failure seen, kept after recovery so an
	// operator can see what happened; LastErrorAt is when.
	LastError   string
	LastErrorAt time.Time
	// Addr is the server this client talks to: the configured address, or
	// for Sentinel the current master once known.
	Addr string
	// Mode is how Redis is reached; empty until first connected.
	Mode Mode
	// TLS says whether connections use TLS.
	TLS bool
	// RESP is the protocol version negotiated (2 or 3); 0 if unknown.
	RESP int
	// Cluster describes the cluster in ModeCluster; nil otherwise.
	Cluster *ClusterInfo
	// Breaker is the circuit breaker's state; Fallback the fallback tier's;
	// ClientCache whether client-side caching is in use. They are read when
	// Health is called.
	Breaker     BreakerState
	Fallback    FallbackHealth
	ClientCache ClientCacheState
	// KeyspaceNotifications says whether Redis sends the keyspace
	// notifications Watch uses for expiries, evictions and other programs'
	// writes; unknown until the first Watch has subscribed.
	KeyspaceNotifications KeyspaceNotifications
	// ConnectionResets counts connections to Redis that the server or the
	// network closed under the client since it started (valkey-go
	// reconnects; a reset that Redis survives is not an outage).
	// LastConnectionResetAt is when the last one happened; zero if none.
	ConnectionResets      uint64
	LastConnectionResetAt time.Time
	// Server holds what INFO reported; nil when INFO could not be read (for
	// instance when the ACL user may not run it).
	Server *ServerInfo
}

// ClientCacheState says whether server-assisted client-side caching is in
// use.
type ClientCacheState string

const (
	ClientCacheOn  ClientCacheState = "on"
	ClientCacheOff ClientCacheState = "off"
	// ClientCacheUnsupported: configured on, but the server refused CLIENT
	// TRACKING, so reads go to Redis every time.
	ClientCacheUnsupported ClientCacheState = "unsupported"
	// ClientCacheUnknown: configured on, but Redis is disconnected (not yet
	// reached since start, or gone), so no connection says whether the
	// server allows tracking, and no read is cached meanwhile.
	ClientCacheUnknown ClientCacheState = "unknown"
)

// ClusterInfo is the state of a Redis Cluster as the probe saw it.
type ClusterInfo struct {
	// State is cluster_state from CLUSTER INFO: "ok" or "fail".
	State string
	// KnownNodes is cluster_known_nodes; Nodes how many the client knows
	// and Reachable how many of those answered the probe's PING.
	KnownNodes int
	Nodes      int
	Reachable  int
}

// ServerInfo is the part of INFO the health report shows.
type ServerInfo struct {
	Version       string
	UsedMemory    int64
	UptimeSeconds int64
}

// MemoryUsage formats used memory the way the health format shows it,
// for instance "1.2MB".
func (s ServerInfo) MemoryUsage() string {
	return formatBytes(s.UsedMemory)
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "KMGTP"[exp])
}

// parseInfo reads the fields ServerInfo needs from an INFO reply.
func parseInfo(text string) *ServerInfo {
	f := infoFields(text)
	info := &ServerInfo{}
	info.UsedMemory, _ = strconv.ParseInt(f["used_memory"], 10, 64)
	info.UptimeSeconds, _ = strconv.ParseInt(f["uptime_in_seconds"], 10, 64)
	switch {
	case f["valkey_version"] != "":
		info.Version = "valkey " + f["valkey_version"]
	case f["redis_version"] != "":
		info.Version = "redis " + f["redis_version"]
	}
	return info
}

// LatencyMs is Latency in milliseconds, rounded to microseconds.
func (h Health) LatencyMs() float64 {
	return float64(h.Latency.Round(time.Microsecond).Microseconds()) / 1000
}
