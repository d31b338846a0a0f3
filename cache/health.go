package cache

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is Redis's availability as the service sees it.
type Status string

const (
	// StatusConnected: Redis answers, fast.
	StatusConnected Status = "connected"
	// StatusDegraded: Redis answers, but slower than Options.DegradedLatency
	// or with commands failing since the last probe.
	StatusDegraded Status = "degraded"
	// StatusDisconnected: Redis cannot be reached (or refuses us, as with a
	// wrong password). Operations return at once without trying it.
	StatusDisconnected Status = "disconnected"
)

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
	// Addr is the server this client talks to.
	Addr string
	// Server holds what INFO reported; nil when INFO could not be read (for
	// instance when the ACL user may not run it).
	Server *ServerInfo
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
	info := &ServerInfo{}
	var redisVersion string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "valkey_version":
			info.Version = "valkey " + v
		case "redis_version":
			redisVersion = v
		case "used_memory":
			info.UsedMemory, _ = strconv.ParseInt(v, 10, 64)
		case "uptime_in_seconds":
			info.UptimeSeconds, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if info.Version == "" && redisVersion != "" {
		info.Version = "redis " + redisVersion
	}
	return info
}

// LatencyMs is Latency in milliseconds, rounded to microseconds.
func (h Health) LatencyMs() float64 {
	return float64(h.Latency.Round(time.Microsecond).Microseconds()) / 1000
}
