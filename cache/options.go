package cache

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultKeyPrefix           = "school-erp:"
	DefaultDialTimeout         = 2 * time.Second
	DefaultCommandTimeout      = 500 * time.Millisecond
	DefaultMaxRetries          = 3
	DefaultReconnectMinBackoff = 50 * time.Millisecond
	DefaultReconnectMaxBackoff = 2 * time.Second
	DefaultProbeInterval       = 5 * time.Second
	DefaultDegradedLatency     = 100 * time.Millisecond
	DefaultOutageReminder      = time.Minute
	DefaultMaxValueBytes       = 1 << 20
	DefaultMaxTTL              = 30 * 24 * time.Hour
	DefaultClientName          = "school-erp-cache"
	DefaultFallbackMaxBytes    = 32 << 20
	DefaultClientCacheBytes    = 4 << 20
	DefaultClientCacheTTL      = time.Minute
	// MaxGetManyKeys is the most keys one GetMany may ask for.
	MaxGetManyKeys = 100

	// MaxKeyBytes is the longest key a caller may pass, before the prefix.
	MaxKeyBytes = 512

	// failuresToTrip is how many operations in a row must fail to reach
	// Redis (no connection could be opened, or the server cannot serve)
	// before the breaker opens. A connection that breaks under a command
	// is not such a failure.
	failuresToTrip = 3
)

// Options configure a Client. The zero value of every field means its
// default, so Options{Addr: "localhost:6379"} is a complete configuration.
//
// Exactly one of Addr, ClusterAddrs and Sentinel.Addrs names the servers.
type Options struct {
	// Addr is a standalone Redis server as host:port. (valkey-go notices
	// when it is a cluster node and then works as a cluster client.)
	Addr string
	// ClusterAddrs are seed nodes of a Redis Cluster.
	ClusterAddrs []string
	// Sentinel, when its Addrs are set, finds the master through Sentinel
	// and follows it across failovers.
	Sentinel SentinelOptions
	// Username and Password authenticate with AUTH; both empty sends none.
	Username string
	Password string
	// DB is the logical database selected on every connection (standalone
	// and Sentinel only; a cluster has only database 0).
	DB int
	// TLS, when set, makes every connection to Redis use TLS.
	TLS *TLSOptions
	// ClientName is sent with CLIENT SETNAME so operators can tell the
	// service's connections apart in CLIENT LIST.
	ClientName string

	// KeyPrefix is put in front of every key, always; the zero value means
	// DefaultKeyPrefix.
	KeyPrefix string

	// DialTimeout bounds opening one connection (TCP, TLS, HELLO/AUTH).
	DialTimeout time.Duration
	// CommandTimeout bounds each operation, retries included, so that a
	// dead or black-holed Redis can never hold a caller longer.
	CommandTimeout time.Duration
	// MaxRetries is how often valkey-go may retry a read-only command after
	// a network error, within CommandTimeout. Zero means DefaultMaxRetries;
	// a negative value disables retries.
	MaxRetries int
	// ReconnectMinBackoff and ReconnectMaxBackoff bound the wait between
	// attempts to reach Redis while it is down: it doubles from the minimum
	// up to the cap, and each wait is jittered between half and all of it.
	ReconnectMinBackoff time.Duration
	ReconnectMaxBackoff time.Duration
	// ProbeInterval is how often Redis is PINGed while it is up.
	ProbeInterval time.Duration
	// DegradedLatency is the PING round trip above which Redis is
	// reported degraded.
	DegradedLatency time.Duration
	// OutageReminder is the least time between two log lines saying that
	// Redis is still unreachable.
	OutageReminder time.Duration

	// MaxValueBytes is the largest value (JSON text) Set accepts.
	MaxValueBytes int
	// MaxTTL is the largest TTL Set accepts.
	MaxTTL time.Duration

	// DisableClientCache turns off server-assisted client-side caching.
	// When on (the default), Get, Exists and GetMany keep what Redis
	// returned in process memory, and Redis tells the client (RESP3 CLIENT
	// TRACKING) the moment a key changes, by any client, so the next read
	// sees it. A server that refuses tracking (RESP2, some managed
	// services) gets plain reads, and Health says so.
	DisableClientCache bool
	// ClientCacheBytes bounds the local cache of each connection (valkey-go
	// keeps one per connection); ClientCacheTTL bounds how long an entry is
	// kept locally (never longer than the key's own TTL).
	ClientCacheBytes int
	ClientCacheTTL   time.Duration

	// Fallback says what answers while Redis is unavailable: FallbackNone
	// (the zero value) or FallbackMemory, bounded by FallbackMaxBytes.
	Fallback         FallbackMode
	FallbackMaxBytes int

	// DisableChanges turns off change notifications: writes publish
	// nothing (saving a round trip each) and Watch returns ErrChangesOff.
	// See changes.go.
	DisableChanges bool
	// WatchQueue is how many changes each watcher's queue holds before a
	// RESYNC replaces them; zero means DefaultWatchQueue.
	WatchQueue int

	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
	// Observer receives every operation and state change, for metrics;
	// nil means none.
	Observer Observer
}

// SentinelOptions locate the master through Redis Sentinel.
type SentinelOptions struct {
	// Addrs are the Sentinels, host:port.
	Addrs []string
	// MasterSet is the name the Sentinels monitor the master under.
	MasterSet string
	// Username and Password authenticate with the Sentinels (which often
	// have credentials of their own).
	Username string
	Password string
	// TLS for the Sentinel connections; nil means plain TCP.
	TLS *TLSOptions
}

// Mode is how the client reaches Redis.
type Mode string

const (
	ModeStandalone Mode = "standalone"
	ModeSentinel   Mode = "sentinel"
	ModeCluster    Mode = "cluster"
)

func (o Options) validate() error {
	named := 0
	for _, set := range []bool{o.Addr != "", len(o.ClusterAddrs) > 0, len(o.Sentinel.Addrs) > 0} {
		if set {
			named++
		}
	}
	switch {
	case named != 1:
		return errors.New("cache: set exactly one of Options.Addr, ClusterAddrs and Sentinel.Addrs")
	case len(o.Sentinel.Addrs) > 0 && o.Sentinel.MasterSet == "":
		return errors.New("cache: Sentinel.MasterSet is empty")
	case len(o.ClusterAddrs) > 0 && o.DB != 0:
		return errors.New("cache: a cluster has only database 0")
	case o.Fallback != "" && o.Fallback != FallbackNone && o.Fallback != FallbackMemory:
		return errors.New("cache: Fallback must be FallbackNone or FallbackMemory")
	case strings.Contains(o.KeyPrefix, "{") && !strings.Contains(o.KeyPrefix[strings.Index(o.KeyPrefix, "{"):], "}"):
		// Redis would hash keys from that '{' to a '}' in the caller's key:
		// the service's own keys could not be put in the slot of the keys
		// they belong to (leases, in a cluster).
		return errors.New("cache: KeyPrefix has a '{' with no '}' after it; close the hash tag (\"{app}:\") or leave braces out")
	case o.Fallback == FallbackMemory && len(o.ClusterAddrs) > 0:
		return errors.New("cache: the memory fallback is off in cluster mode (one node down must not put every key in memory); use FallbackNone with ClusterAddrs")
	}
	return nil
}

// describeAddrs names the servers for logs and health.
func (o Options) describeAddrs() string {
	switch {
	case len(o.Sentinel.Addrs) > 0:
		return o.Sentinel.MasterSet + " via sentinels " + strings.Join(o.Sentinel.Addrs, ",")
	case len(o.ClusterAddrs) > 0:
		return strings.Join(o.ClusterAddrs, ",")
	}
	return o.Addr
}

func (o Options) withDefaults() Options {
	setDefault(&o.KeyPrefix, DefaultKeyPrefix)
	if o.ClientName == "" {
		o.ClientName = DefaultClientName
	}
	setDefault(&o.DialTimeout, DefaultDialTimeout)
	setDefault(&o.CommandTimeout, DefaultCommandTimeout)
	setDefault(&o.MaxRetries, DefaultMaxRetries)
	setDefault(&o.ReconnectMinBackoff, DefaultReconnectMinBackoff)
	setDefault(&o.ReconnectMaxBackoff, DefaultReconnectMaxBackoff)
	setDefault(&o.ProbeInterval, DefaultProbeInterval)
	setDefault(&o.DegradedLatency, DefaultDegradedLatency)
	setDefault(&o.OutageReminder, DefaultOutageReminder)
	setDefault(&o.MaxValueBytes, DefaultMaxValueBytes)
	setDefault(&o.MaxTTL, DefaultMaxTTL)
	setDefault(&o.Fallback, FallbackNone)
	setDefault(&o.FallbackMaxBytes, DefaultFallbackMaxBytes)
	setDefault(&o.ClientCacheBytes, DefaultClientCacheBytes)
	setDefault(&o.ClientCacheTTL, DefaultClientCacheTTL)
	setDefault(&o.WatchQueue, DefaultWatchQueue)
	o.WatchQueue = max(o.WatchQueue, 2)
	if o.ReconnectMinBackoff > o.ReconnectMaxBackoff {
		o.ReconnectMinBackoff = o.ReconnectMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
