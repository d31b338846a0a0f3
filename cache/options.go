package cache

import (
	"crypto/tls"
	"log/slog"
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

	// MaxKeyBytes is the longest key a caller may pass, before the prefix.
	MaxKeyBytes = 512

	// failuresToTrip is how many operations in a row must fail for lack of
	// Redis before requests stop waiting on it and the monitor takes over.
	failuresToTrip = 3
)

// Options configure a Client. The zero value of every field means its
// default, so Options{Addr: "localhost:6379"} is a complete configuration.
type Options struct {
	// Addr is the Redis server as host:port.
	Addr string
	// Username and Password authenticate with AUTH; both empty sends none.
	Username string
	Password string
	// DB is the logical database selected on every connection.
	DB int
	// TLSConfig, when set, makes every connection use TLS.
	TLSConfig *tls.Config
	// ClientName is sent with CLIENT SETNAME so operators can tell the
	// service's connections apart in CLIENT LIST.
	ClientName string

	// KeyPrefix is put in front of every key. The zero value means
	// DefaultKeyPrefix; set NoKeyPrefix to use keys as given.
	KeyPrefix   string
	NoKeyPrefix bool

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

	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" && !o.NoKeyPrefix {
		o.KeyPrefix = DefaultKeyPrefix
	}
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
