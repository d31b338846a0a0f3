package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// Deployment environments accepted in APP_ENV.
const (
	EnvDevelopment = "development"
	EnvStaging     = "staging"
	EnvProduction  = "production"
)

// Config is the whole service configuration. The struct tags are the single
// source of truth for variable names, defaults and descriptions: `allowed`
// says, in words, which values are valid (used in error messages), and
// `secret` marks values that must never be echoed.
type Config struct {
	AppEnv          string        `env:"APP_ENV" envDefault:"development" envDescription:"Deployment environment; selects log format and production safeguards" allowed:"one of development, staging, production"`
	Port            int           `env:"PORT" envDefault:"5000" envDescription:"HTTP port to listen on (0 picks a free port)" allowed:"an integer from 0 to 65535"`
	Host            string        `env:"HOST" envDescription:"Address to listen on (PORT and METRICS_PORT); empty means 127.0.0.1 in development (loopback only: development is open to anyone who can connect) and every interface elsewhere; 0.0.0.0 or :: means every interface" allowed:"empty, an IP address, or a host name"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info" envDescription:"Minimum log level" allowed:"one of debug, info, warn, error"`
	LogFormat       string        `env:"LOG_FORMAT" envDescription:"Log format; empty means text in development and JSON elsewhere" allowed:"empty, text or json"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" envDescription:"How long in-flight requests may take to finish after SIGINT/SIGTERM and the drain; those still running are then cancelled" allowed:"a positive duration such as 10s"`
	DrainDelay      string        `env:"SHUTDOWN_DRAIN_DELAY" envDescription:"After SIGINT/SIGTERM, how long /health answers 503 while still serving, so load balancers stop sending traffic before the listener closes; empty means 0s in development, 5s elsewhere" allowed:"empty, or a duration of 0s or more such as 5s"`

	APITokens     string `env:"API_TOKENS" envDescription:"Bearer tokens as comma-separated name:scope:token entries; scope is read (the queries: redisHealth, cacheGet, cacheGetMany, cacheExists, cacheEntry) or write (also every mutation); tokens of at least 16 characters, without commas or spaces" allowed:"comma-separated name:scope:token entries" secret:"true"`
	APITokensFile string `env:"API_TOKENS_FILE" envDescription:"File with more tokens, one name:scope:token entry per line (# starts a comment), so they need not sit in the environment; read again on SIGHUP" allowed:"a readable file of name:scope:token lines"`

	GraphQLMaxComplexity  int           `env:"GRAPHQL_MAX_COMPLEXITY" envDefault:"250" envDescription:"Largest query complexity: one per field, plus one per key for cacheGetMany" allowed:"an integer from 1 to 100000"`
	GraphQLMaxDepth       int           `env:"GRAPHQL_MAX_DEPTH" envDefault:"8" envDescription:"Deepest selection nesting in an operation" allowed:"an integer from 1 to 100"`
	GraphQLMaxTokens      int           `env:"GRAPHQL_MAX_TOKENS" envDefault:"5000" envDescription:"Most lexical tokens the parser reads in a query document" allowed:"an integer from 100 to 1000000"`
	GraphQLMaxAliases     int           `env:"GRAPHQL_MAX_ALIASES" envDefault:"20" envDescription:"Most aliased fields in an operation" allowed:"an integer from 0 to 1000"`
	GraphQLMaxOperations  int           `env:"GRAPHQL_MAX_OPERATIONS" envDefault:"32" envDescription:"Most operations in one query document" allowed:"an integer from 1 to 100"`
	GraphQLMaxBodyBytes   int           `env:"GRAPHQL_MAX_BODY_BYTES" envDescription:"Largest request body; empty means 4 x CACHE_MAX_VALUE_BYTES + 64 KiB, room for the largest value however the client escapes it" allowed:"empty, or an integer from 1024 up"`
	GraphQLRequestTimeout time.Duration `env:"GRAPHQL_REQUEST_TIMEOUT" envDescription:"Deadline for a whole GraphQL request, from when its body has been read: cache operations that would start after it answer at once (NO_REPLY / not stored) instead of each waiting, and a request it ends before any field ran gets HTTP 503 DEADLINE_EXCEEDED; empty means twice REDIS_COMMAND_TIMEOUT" allowed:"empty, or a positive duration such as 1s"`
	GraphQLBodyTimeout    time.Duration `env:"GRAPHQL_BODY_TIMEOUT" envDefault:"10s" envDescription:"Time a GraphQL request's body may take to arrive, from when its headers were read; beyond it HTTP 408 BODY_TIMEOUT (GRAPHQL_REQUEST_TIMEOUT starts only once the body is in)" allowed:"a positive duration such as 10s"`
	GraphQLMaxInFlight    int           `env:"GRAPHQL_MAX_IN_FLIGHT" envDescription:"Most GraphQL requests this instance works on at once; beyond it a request is refused at once with HTTP 503 OVERLOADED and Retry-After instead of queueing (health endpoints are not counted); empty means 64 per CPU (GOMAXPROCS)" allowed:"empty, or an integer from 1 to 1000000"`
	GraphQLIntrospection  string        `env:"GRAPHQL_INTROSPECTION" envDescription:"Allow __schema and __type queries; empty means on in development, off elsewhere" allowed:"empty, true or false"`
	GraphQLPlayground     string        `env:"GRAPHQL_PLAYGROUND" envDescription:"Serve GraphiQL at /; empty means on in development, off elsewhere" allowed:"empty, true or false"`

	// The document caches are bounded in bytes: a count of entries bounds
	// nothing when one document may be megabytes long.
	GraphQLQueryCacheBytes       int `env:"GRAPHQL_QUERY_CACHE_BYTES" envDefault:"4194304" envDescription:"Size bound of the parsed-query cache in bytes, counting each document's text and the estimated size of its syntax tree; the least valuable documents are evicted first when it is full" allowed:"an integer from 65536 to 1073741824"`
	GraphQLAPQCacheBytes         int `env:"GRAPHQL_APQ_CACHE_BYTES" envDefault:"4194304" envDescription:"Size bound of the Automatic Persisted Query store in bytes (query texts by hash)" allowed:"an integer from 65536 to 1073741824"`
	GraphQLCacheMaxDocumentBytes int `env:"GRAPHQL_CACHE_MAX_DOCUMENT_BYTES" envDefault:"65536" envDescription:"A document whose entry would take more bytes than this is kept in neither cache: it is parsed each time, and sent whole by APQ clients" allowed:"an integer from 1024 to the smaller of GRAPHQL_QUERY_CACHE_BYTES and GRAPHQL_APQ_CACHE_BYTES"`
	// Counted as values are read, before the response is built.
	GraphQLMaxResponseBytes int `env:"GRAPHQL_MAX_RESPONSE_BYTES" envDefault:"16777216" envDescription:"Most bytes of values one response may hold; a query whose values take more is refused with RESPONSE_TOO_LARGE. Reads take as many keys at once as fit in what is left, at CACHE_MAX_VALUE_BYTES a key" allowed:"an integer from 1024 to 1073741824, and at least CACHE_MAX_VALUE_BYTES"`

	SubscriptionsEnabled           bool          `env:"SUBSCRIPTIONS_ENABLED" envDefault:"true" envDescription:"GraphQL subscriptions over WebSocket at /graphql (cacheChanged, redisHealthChanged); every write then also publishes its change to Redis (one PUBLISH each)" allowed:"true or false"`
	SubscriptionMaxKeys            int           `env:"SUBSCRIPTION_MAX_KEYS" envDefault:"100" envDescription:"Most keys (and, separately, tags) one cacheChanged subscription may name" allowed:"an integer from 1 to 1000"`
	SubscriptionMaxPerSocket       int           `env:"SUBSCRIPTION_MAX_PER_SOCKET" envDefault:"50" envDescription:"Most subscriptions running at once on one WebSocket; beyond it a subscription gets an error SUBSCRIPTION_LIMIT" allowed:"an integer from 1 to 10000"`
	SubscriptionMaxSocketsPerToken int           `env:"SUBSCRIPTION_MAX_SOCKETS_PER_TOKEN" envDefault:"1000" envDescription:"Most WebSockets open at once with one API token on this instance; beyond it connection_init is refused with close code 4429" allowed:"an integer from 1 to 1000000"`
	SubscriptionMaxSockets         int           `env:"SUBSCRIPTION_MAX_SOCKETS" envDefault:"10000" envDescription:"Most WebSockets open at once on this instance; beyond it the upgrade gets HTTP 503 OVERLOADED" allowed:"an integer from 1 to 1000000"`
	SubscriptionKeepAlive          time.Duration `env:"SUBSCRIPTION_KEEPALIVE" envDefault:"25s" envDescription:"Interval of the server's pings on each WebSocket; a client that sends nothing, not even a pong, for two intervals is disconnected" allowed:"a duration from 1s to 10m"`
	SubscriptionInitTimeout        time.Duration `env:"SUBSCRIPTION_INIT_TIMEOUT" envDefault:"10s" envDescription:"Time a WebSocket has after the upgrade to send connection_init; beyond it the socket is closed with 4408" allowed:"a duration from 100ms to 5m"`
	SubscriptionSlowTimeout        time.Duration `env:"SUBSCRIPTION_SLOW_TIMEOUT" envDefault:"30s" envDescription:"A WebSocket that has not taken an event for this long (its client does not read) is closed with 1008; meanwhile its subscriptions get RESYNC in place of what overflowed SUBSCRIPTION_QUEUE" allowed:"a duration from 1s to 1h"`
	SubscriptionQueue              int           `env:"SUBSCRIPTION_QUEUE" envDefault:"256" envDescription:"Changes queued for each subscription that has not sent the previous ones yet; beyond it what is queued is dropped and replaced by one RESYNC event" allowed:"an integer from 2 to 100000"`

	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS" envDescription:"Origins browsers may call /graphql from (comma-separated, e.g. https://erp.example.com); empty means any origin in development and none elsewhere" allowed:"comma-separated origins (scheme://host[:port]), or * outside production"`

	RateLimitRPS       float64 `env:"RATE_LIMIT_RPS" envDefault:"0" envDescription:"Requests per second each API token may make to /graphql on this instance, unless RATE_LIMIT_TOKENS gives it a limit of its own; 0 (the default) means tokens are not limited" allowed:"a number of 0 or more"`
	RateLimitBurst     int     `env:"RATE_LIMIT_BURST" envDescription:"Requests a token may make at once above RATE_LIMIT_RPS; empty means twice RATE_LIMIT_RPS" allowed:"empty, or an integer from 1 to 1000000 with RATE_LIMIT_RPS above 0"`
	RateLimitTokens    string  `env:"RATE_LIMIT_TOKENS" envDescription:"Limits of particular tokens, by token name: comma-separated name=rate/burst entries such as reporting=200/400,etl=50/100 (requests per second / at once; /burst left out means twice the rate); name=0 exempts that token from RATE_LIMIT_RPS" allowed:"comma-separated name=rate[/burst] entries, each name a token of API_TOKENS or API_TOKENS_FILE, rate a number of 0 or more, burst an integer from 1 to 1000000"`
	RateLimitAnonymous string  `env:"RATE_LIMIT_ANONYMOUS" envDefault:"1000/2000" envDescription:"Limit of anonymous calls per client address, where they are allowed (development without tokens; elsewhere they are refused before any limit), as rate/burst; 0 turns it off" allowed:"0, or rate[/burst] with rate a number above 0 and burst an integer from 1 to 1000000"`

	MetricsEnabled bool `env:"METRICS_ENABLED" envDefault:"true" envDescription:"Serve Prometheus metrics at /metrics" allowed:"true or false"`
	MetricsPort    int  `env:"METRICS_PORT" envDescription:"Serve /metrics on this port instead of PORT (empty: on PORT)" allowed:"empty, or an integer from 1 to 65535 other than PORT"`

	// Parsed one struct at a time by Load (env:"-" keeps the library out):
	// an env.ParseError names a Go field, and field names are unique only
	// within one struct (Config.Port, Redis.Port).
	Redis Redis `env:"-"`
	Cache Cache `env:"-"`

	// Set by Load, not read from the environment: SHUTDOWN_DRAIN_DELAY,
	// GRAPHQL_* and CORS_ALLOWED_ORIGINS resolved for APP_ENV, and the
	// tokens from API_TOKENS and API_TOKENS_FILE.
	// ListenHost is HOST resolved for APP_ENV: "" means every interface.
	ListenHost         string        `env:"-"`
	ShutdownDrainDelay time.Duration `env:"-"`
	Introspection      bool          `env:"-"`
	Playground         bool          `env:"-"`
	FieldSuggestions   bool          `env:"-"`
	MaxRequestBytes    int64         `env:"-"`
	MaxInFlight        int           `env:"-"`
	AllowedOrigins     []string      `env:"-"`
	Tokens             []Token       `env:"-"`
	// TokenRateLimits holds every token's limit by name: its own from
	// RATE_LIMIT_TOKENS, or else RATE_LIMIT_RPS and RATE_LIMIT_BURST.
	TokenRateLimits    map[string]RateLimit `env:"-"`
	AnonymousRateLimit RateLimit            `env:"-"`

	// ignoredByURL is what IgnoredByURL reports, found by Load.
	ignoredByURL []string
}

// Token is one API bearer token. Its LogValue shows the name and scope,
// never the token.
type Token struct {
	Name  string
	Scope string // "read" or "write"
	Value string
}

// LogValue hides the token's value.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// String hides the token's value too, so %v of a Token (or of a slice of
// them, where slog does not call LogValue) shows only its name and scope.
func (t Token) String() string { return t.Name + " (" + t.Scope + ")" }

// RateLimit is a steady rate with bursts above it. A zero RPS means no
// limit. (Its fields are set by Load, never read from the environment.)
type RateLimit struct {
	RPS   float64 `env:"-"`
	Burst int     `env:"-"`
}

// Off reports whether l limits nothing.
func (l RateLimit) Off() bool { return l.RPS == 0 }

func (l RateLimit) String() string {
	if l.Off() {
		return "off"
	}
	return strconv.FormatFloat(l.RPS, 'g', -1, 64) + "/" + strconv.Itoa(l.Burst)
}

// maxBurst bounds every burst.
const maxBurst = 1_000_000

// defaultBurst is the burst of a limit given as a rate alone: two seconds'
// worth, and at least one request.
func defaultBurst(rps float64) int {
	return int(min(maxBurst, max(1, math.Ceil(2*rps))))
}

// ParseRateLimit reads rate[/burst]: requests per second (0 for no limit)
// and optionally how many may come at once; the burst defaults to twice
// the rate.
func ParseRateLimit(s string) (RateLimit, error) {
	rate, burst, hasBurst := strings.Cut(strings.TrimSpace(s), "/")
	rps, err := strconv.ParseFloat(rate, 64)
	if err != nil || rps < 0 || math.IsInf(rps, 0) || math.IsNaN(rps) {
		return RateLimit{}, fmt.Errorf("rate %q must be a number of 0 or more", rate)
	}
	if !hasBurst {
		if rps == 0 {
			return RateLimit{}, nil
		}
		return RateLimit{RPS: rps, Burst: defaultBurst(rps)}, nil
	}
	if rps == 0 {
		return RateLimit{}, errors.New("a rate of 0 means no limit: leave the burst out")
	}
	b, err := strconv.Atoi(burst)
	if err != nil || b < 1 || b > maxBurst {
		return RateLimit{}, fmt.Errorf("burst %q must be an integer from 1 to %d", burst, maxBurst)
	}
	return RateLimit{RPS: rps, Burst: b}, nil
}

// Redis describes where Redis is and how the client treats it.
type Redis struct {
	URL       string `env:"REDIS_URL" envDescription:"redis:// or rediss:// URL with optional user, password and /db, and ?addr=host:port for more cluster seeds; it replaces REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB and REDIS_TLS, and setting one of them beside it is refused (except in the .env file when REDIS_URL comes from the environment, which wins)" allowed:"redis://[user[:password]@]host[:port][/db][?addr=host:port...] or rediss://..." secret:"true"`
	Host      string `env:"REDIS_HOST" envDefault:"localhost" envDescription:"Redis host name or IP address" allowed:"a non-empty host name or IP address"`
	Port      int    `env:"REDIS_PORT" envDefault:"6379" envDescription:"Redis port" allowed:"an integer from 1 to 65535"`
	Username  string `env:"REDIS_USERNAME" envDescription:"ACL user name (empty: the default user)" allowed:"any string"`
	Password  string `env:"REDIS_PASSWORD" envDescription:"Password for AUTH (empty: no AUTH)" allowed:"any string" secret:"true"`
	DB        int    `env:"REDIS_DB" envDefault:"0" envDescription:"Logical database number" allowed:"an integer of 0 or more"`
	TLS       bool   `env:"REDIS_TLS" envDescription:"Connect with TLS, verifying the server certificate; default false, but true in production" allowed:"true or false"`
	KeyPrefix string `env:"REDIS_KEY_PREFIX" envDefault:"school-erp:" envDescription:"Prefix the service puts in front of every key it touches" allowed:"any string, with every '{' closed by a '}' after it (a hash tag such as {app}: keeps all keys in one cluster slot)"`

	TLSCAFile             string `env:"REDIS_TLS_CA_FILE" envDescription:"PEM file of a private CA trusted beside the system roots" allowed:"a readable PEM file, with TLS on"`
	TLSCertFile           string `env:"REDIS_TLS_CERT_FILE" envDescription:"Client certificate (PEM) for mutual TLS; needs REDIS_TLS_KEY_FILE" allowed:"a readable PEM file, with TLS on and REDIS_TLS_KEY_FILE set"`
	TLSKeyFile            string `env:"REDIS_TLS_KEY_FILE" envDescription:"Key (PEM) of the client certificate" allowed:"a readable PEM file, with TLS on and REDIS_TLS_CERT_FILE set"`
	TLSServerName         string `env:"REDIS_TLS_SERVER_NAME" envDescription:"Name checked in the server certificate instead of the host dialled" allowed:"a host name, with TLS on"`
	TLSInsecureSkipVerify bool   `env:"REDIS_TLS_INSECURE_SKIP_VERIFY" envDefault:"false" envDescription:"Accept any server certificate (development only; refused in production)" allowed:"false in production; true or false elsewhere"`
	TLSAllowPlaintext     bool   `env:"REDIS_TLS_ALLOW_PLAINTEXT" envDefault:"false" envDescription:"Allow TLS to be turned off in production (a private network)" allowed:"true or false"`

	SentinelAddrs    []string `env:"REDIS_SENTINEL_ADDRS" envDescription:"Comma-separated Sentinel host:port list; with REDIS_SENTINEL_MASTER, find the master through Sentinel" allowed:"comma-separated host:port entries"`
	SentinelMaster   string   `env:"REDIS_SENTINEL_MASTER" envDescription:"Master set name the Sentinels monitor" allowed:"a name, set together with REDIS_SENTINEL_ADDRS"`
	SentinelUsername string   `env:"REDIS_SENTINEL_USERNAME" envDescription:"ACL user for the Sentinels" allowed:"any string"`
	SentinelPassword string   `env:"REDIS_SENTINEL_PASSWORD" envDescription:"Password for the Sentinels" allowed:"any string" secret:"true"`
	SentinelTLS      string   `env:"REDIS_SENTINEL_TLS" envDescription:"TLS to the Sentinels; empty means the same as REDIS_TLS (and the same CA and client certificate)" allowed:"empty, true or false"`
	ClusterAddrs     []string `env:"REDIS_CLUSTER_ADDRS" envDescription:"Comma-separated seed nodes of a Redis Cluster (host:port)" allowed:"comma-separated host:port entries"`

	DialTimeout         time.Duration `env:"REDIS_DIAL_TIMEOUT" envDefault:"2s" envDescription:"Time allowed to open one connection (TCP, TLS, AUTH)" allowed:"a positive duration such as 2s"`
	CommandTimeout      time.Duration `env:"REDIS_COMMAND_TIMEOUT" envDefault:"500ms" envDescription:"Deadline for each cache operation, retries included" allowed:"a positive duration such as 500ms"`
	MaxRetries          int           `env:"REDIS_MAX_RETRIES" envDefault:"3" envDescription:"Retries of read-only commands after a network error, within the command deadline" allowed:"an integer from 0 to 100"`
	ReconnectMinBackoff time.Duration `env:"REDIS_RECONNECT_MIN_BACKOFF" envDefault:"50ms" envDescription:"First delay between reconnect attempts; doubles each attempt, with jitter" allowed:"a positive duration no larger than REDIS_RECONNECT_MAX_BACKOFF"`
	ReconnectMaxBackoff time.Duration `env:"REDIS_RECONNECT_MAX_BACKOFF" envDefault:"2s" envDescription:"Cap on the delay between reconnect attempts" allowed:"a positive duration such as 2s"`
	HealthInterval      time.Duration `env:"REDIS_HEALTH_INTERVAL" envDefault:"5s" envDescription:"How often the background probe PINGs Redis while it is up" allowed:"a positive duration such as 5s"`
	DegradedLatency     time.Duration `env:"REDIS_DEGRADED_LATENCY" envDefault:"100ms" envDescription:"Probe round trip above which Redis is reported degraded" allowed:"a positive duration such as 100ms"`
	ClientCache         bool          `env:"REDIS_CLIENT_CACHE" envDefault:"true" envDescription:"Server-assisted client-side caching of reads (RESP3 CLIENT TRACKING); off by itself where the server refuses tracking" allowed:"true or false"`
	ClientCacheSizeMB   int           `env:"REDIS_CLIENT_CACHE_SIZE_MB" envDefault:"4" envDescription:"Local cache size per connection to each Redis server, in MiB (valkey-go keeps one cache per connection; the service opens one pipelined connection per server)" allowed:"an integer from 1 to 1024"`
	ClientCacheTTL      time.Duration `env:"REDIS_CLIENT_CACHE_TTL" envDefault:"60s" envDescription:"Longest time a read is kept locally (never longer than the key's own TTL); invalidations from Redis drop it sooner" allowed:"a duration of at least 1s, such as 60s"`
	Required            bool          `env:"REDIS_REQUIRED" envDefault:"false" envDescription:"Make GET /health answer 503 while Redis is disconnected" allowed:"true or false"`

	// Source says where the connection settings came from: "REDIS_URL" or
	// "REDIS_HOST". Mode is "standalone", "sentinel" or "cluster", and
	// SentinelTLSOn the resolved REDIS_SENTINEL_TLS. Load sets these; they
	// are not read from the environment.
	Source        string `env:"-"`
	Mode          string `env:"-"`
	SentinelTLSOn bool   `env:"-"`
}

// Cache holds limits on what clients may store and what answers while
// Redis is unavailable.
type Cache struct {
	MaxValueBytes    int           `env:"CACHE_MAX_VALUE_BYTES" envDefault:"1048576" envDescription:"Largest value, as JSON text in bytes, that cacheSet accepts" allowed:"an integer from 1 to 536870912"`
	MaxTTL           time.Duration `env:"CACHE_MAX_TTL" envDefault:"720h" envDescription:"Largest ttlSeconds that cacheSet accepts" allowed:"a duration from 1s to 68 years, such as 720h"`
	Fallback         string        `env:"CACHE_FALLBACK" envDescription:"What answers while Redis is unavailable: none (reads miss, writes not stored) or memory (a bounded in-process store); empty means memory in development, none elsewhere and with a cluster" allowed:"empty, none or memory (not memory with a cluster)"`
	FallbackMaxBytes int           `env:"CACHE_FALLBACK_MAX_BYTES" envDefault:"33554432" envDescription:"Size bound of the in-process fallback tier, in bytes" allowed:"an integer from 1024 to 1073741824"`
}

// InFlightPerCPU sizes the default GRAPHQL_MAX_IN_FLIGHT: this many per
// CPU the process may use (GOMAXPROCS, which follows a container's CPU
// limit). On the 2-core machine the service is built on, cacheSet
// throughput peaked between 16 and 64 requests in flight (8 000 to 11 500
// a second, p99 6 to 15 ms) and fell beyond (8 900 a second at 256, p99
// 95 ms): past that, queueing only adds latency. 64 per CPU (128 there)
// leaves room for requests waiting on a Redis across a network, which use
// no CPU, and bounds memory: a request in flight holds its body and its
// decoded value, about 2 MiB for a 1 MiB value (README, Limits).
const InFlightPerCPU = 64

// MaxKeyAllowance is room for a key and per-entry overhead beside the largest
// value in the fallback tier.
const MaxKeyAllowance = 1024

// Error is a configuration value that cannot be used. Its message names the
// variable, the value (redacted for secrets) and what is allowed.
type Error struct {
	Var     string
	Value   string
	Allowed string
	secret  bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s=%s: want %s", e.Var, e.shownValue(), e.Allowed)
}

func (e *Error) shownValue() string {
	if !e.secret {
		return strconv.Quote(e.Value)
	}
	if e.Value == "" {
		return `""`
	}
	// Everything between the scheme and the last "@" may be credentials,
	// whatever a URL parser makes of a password with "#" or "?" in it.
	scheme, rest, ok := strings.Cut(e.Value, "://")
	if !ok {
		return "(value hidden: it may hold a secret)"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return strconv.Quote(scheme + "://xxxxx" + rest[at:])
	}
	// No "@": shown only if what follows the scheme is plainly host[:port]
	// (redis://user:password with the host forgotten must not be echoed).
	authority, _, _ := strings.Cut(rest, "/")
	if host, port, err := net.SplitHostPort(authority); err == nil && host != "" && isDigits(port) || err != nil && !strings.Contains(authority, ":") {
		return strconv.Quote(e.Value)
	}
	return strconv.Quote(scheme + "://(hidden)")
}

// Load reads and validates the configuration. Each variable Config declares
// is looked up with getenv (os.Getenv in production) and, where that gives
// "", in dotenv (a .env file's variables, see ReadDotenv; nil for none): the
// environment wins over the file, and an empty value means the default.
// Load never reads or changes the process environment itself.
func Load(getenv func(string) string, dotenv map[string]string) (*Config, error) {
	// Never nil: given no Environment, the env library reads os.Environ.
	environ := map[string]string{}
	fromFile := map[string]bool{}
	for name := range fields() {
		v := getenv(name)
		if v == "" && dotenv[name] != "" {
			v, fromFile[name] = dotenv[name], true
		}
		if v != "" {
			environ[name] = v
		}
	}
	var cfg Config
	if err := parse(reflect.ValueOf(&cfg).Elem(), environ); err != nil {
		return nil, err
	}
	if err := cfg.validate(environ, fromFile); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// ReadDotenv reads the variables of a .env file. A file that does not exist
// gives an empty map: the file is optional.
func ReadDotenv(path string) (map[string]string, error) {
	vars, err := godotenv.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return vars, nil
}

// parse fills the struct v from environ, then each struct nested in it,
// one struct per call to the library, so that a ParseError's field name
// identifies one variable. (ParseWithOptions still builds its default
// options from os.Environ before environ replaces them; no value from the
// process reaches the Config, as TestLoadIgnoresTheProcessEnvironment
// checks.)
func parse(v reflect.Value, environ map[string]string) error {
	if err := env.ParseWithOptions(v.Addr().Interface(), env.Options{Environment: environ}); err != nil {
		return parseError(v.Type(), err, environ)
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Struct && f.CanSet() {
			if err := parse(f, environ); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseError turns the library's error for struct type t into an *Error
// naming the variable of the first field that failed; the message is ours,
// the library's text is never read.
func parseError(t reflect.Type, err error, environ map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) {
		for _, e := range agg.Errors {
			var perr env.ParseError
			if !errors.As(e, &perr) {
				continue
			}
			if f, ok := t.FieldByName(perr.Name); ok {
				if name := varName(f); name != "" {
					return invalid(name, environ[name])
				}
			}
		}
	}
	return fmt.Errorf("read configuration: %w", err)
}

// varName is the variable a struct field is read from ("" for none).
func varName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// invalid builds the Error for variable name, taking the allowed values and
// the secret flag from the struct tags.
func invalid(name, value string) *Error {
	f, ok := fields()[name]
	if !ok {
		return &Error{Var: name, Value: value, Allowed: "a valid value"}
	}
	return &Error{Var: name, Value: value, Allowed: f.allowed, secret: f.secret}
}

// Names lists every environment variable Config reads.
func Names() []string {
	var out []string
	for name := range fields() {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

type fieldInfo struct {
	allowed     string
	secret      bool
	def         string
	description string
}

// fields maps each variable name to its tags.
func fields() map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for name, f := range declared() {
		out[name] = f
	}
	return out
}

// declared yields each variable Config reads, with its tags, in the order
// the struct declares them.
func declared() func(yield func(string, fieldInfo) bool) {
	return func(yield func(string, fieldInfo) bool) {
		var walk func(t reflect.Type) bool
		walk = func(t reflect.Type) bool {
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
					if !walk(f.Type) {
						return false
					}
					continue
				}
				name := varName(f)
				if name == "" {
					continue
				}
				info := fieldInfo{
					allowed:     f.Tag.Get("allowed"),
					secret:      f.Tag.Get("secret") == "true",
					def:         f.Tag.Get("envDefault"),
					description: f.Tag.Get("envDescription"),
				}
				if !yield(name, info) {
					return false
				}
			}
			return true
		}
		walk(reflect.TypeFor[Config]())
	}
}

// Variable is one environment variable the configuration reads, as the
// Config struct's tags declare it.
type Variable struct {
	Name string
	// Default is the value used when the variable is unset or empty; ""
	// when the default depends on other variables (Description says how)
	// or is empty.
	Default     string
	Description string
}

// Variables lists every variable Config reads, in the order it declares
// them (related variables together), for --help.
func Variables() []Variable {
	var out []Variable
	for name, f := range declared() {
		out = append(out, Variable{Name: name, Default: f.def, Description: f.description})
	}
	return out
}

// validate checks the parsed values and resolves what depends on several of
// them. environ holds the variables that were given (non-empty), fromFile
// those of them that came from the .env file rather than the environment.
func (c *Config) validate(environ map[string]string, fromFile map[string]bool) error {
	type check struct {
		name string
		ok   bool
		val  any
	}
	r := &c.Redis
	checks := []check{
		{"APP_ENV", oneOf(c.AppEnv, EnvDevelopment, EnvStaging, EnvProduction), c.AppEnv},
		{"PORT", c.Port >= 0 && c.Port <= 65535, c.Port},
		{"HOST", c.Host == "" || net.ParseIP(c.Host) != nil || hostName.MatchString(c.Host), c.Host},
		{"LOG_LEVEL", oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"), c.LogLevel},
		{"LOG_FORMAT", oneOf(c.LogFormat, "", "text", "json"), c.LogFormat},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout > 0, c.ShutdownTimeout},
		{"REDIS_HOST", strings.TrimSpace(r.Host) != "", r.Host},
		{"REDIS_KEY_PREFIX", !strings.Contains(r.KeyPrefix, "{") || strings.Contains(r.KeyPrefix[strings.Index(r.KeyPrefix, "{"):], "}"), r.KeyPrefix},
		{"REDIS_PORT", r.Port >= 1 && r.Port <= 65535, r.Port},
		{"REDIS_DB", r.DB >= 0, r.DB},
		{"REDIS_DIAL_TIMEOUT", r.DialTimeout > 0, r.DialTimeout},
		{"REDIS_COMMAND_TIMEOUT", r.CommandTimeout > 0, r.CommandTimeout},
		{"REDIS_MAX_RETRIES", r.MaxRetries >= 0 && r.MaxRetries <= 100, r.MaxRetries},
		{"REDIS_RECONNECT_MAX_BACKOFF", r.ReconnectMaxBackoff > 0, r.ReconnectMaxBackoff},
		{"REDIS_RECONNECT_MIN_BACKOFF", r.ReconnectMinBackoff > 0 && r.ReconnectMinBackoff <= r.ReconnectMaxBackoff, r.ReconnectMinBackoff},
		{"REDIS_HEALTH_INTERVAL", r.HealthInterval >= 50*time.Millisecond, r.HealthInterval},
		{"REDIS_DEGRADED_LATENCY", r.DegradedLatency > 0, r.DegradedLatency},
		{"REDIS_CLIENT_CACHE_SIZE_MB", r.ClientCacheSizeMB >= 1 && r.ClientCacheSizeMB <= 1024, r.ClientCacheSizeMB},
		{"REDIS_CLIENT_CACHE_TTL", r.ClientCacheTTL >= time.Second, r.ClientCacheTTL},
		{"CACHE_MAX_VALUE_BYTES", c.Cache.MaxValueBytes >= 1 && c.Cache.MaxValueBytes <= 512<<20, c.Cache.MaxValueBytes},
		{"CACHE_MAX_TTL", c.Cache.MaxTTL >= time.Second && c.Cache.MaxTTL <= math.MaxInt32*time.Second, c.Cache.MaxTTL},
		{"CACHE_FALLBACK", oneOf(c.Cache.Fallback, "", "none", "memory"), c.Cache.Fallback},
		{"CACHE_FALLBACK_MAX_BYTES", c.Cache.FallbackMaxBytes >= 1024 && c.Cache.FallbackMaxBytes <= 1<<30, c.Cache.FallbackMaxBytes},
		{"GRAPHQL_MAX_COMPLEXITY", c.GraphQLMaxComplexity >= 1 && c.GraphQLMaxComplexity <= 100000, c.GraphQLMaxComplexity},
		{"GRAPHQL_MAX_DEPTH", c.GraphQLMaxDepth >= 1 && c.GraphQLMaxDepth <= 100, c.GraphQLMaxDepth},
		{"GRAPHQL_MAX_TOKENS", c.GraphQLMaxTokens >= 100 && c.GraphQLMaxTokens <= 1000000, c.GraphQLMaxTokens},
		{"GRAPHQL_MAX_ALIASES", c.GraphQLMaxAliases >= 0 && c.GraphQLMaxAliases <= 1000, c.GraphQLMaxAliases},
		{"GRAPHQL_MAX_OPERATIONS", c.GraphQLMaxOperations >= 1 && c.GraphQLMaxOperations <= 100, c.GraphQLMaxOperations},
		{"GRAPHQL_MAX_BODY_BYTES", c.GraphQLMaxBodyBytes == 0 || c.GraphQLMaxBodyBytes >= 1024, c.GraphQLMaxBodyBytes},
		{"GRAPHQL_MAX_IN_FLIGHT", c.GraphQLMaxInFlight >= 0 && c.GraphQLMaxInFlight <= 1_000_000, c.GraphQLMaxInFlight},
		{"GRAPHQL_QUERY_CACHE_BYTES", c.GraphQLQueryCacheBytes >= 64<<10 && c.GraphQLQueryCacheBytes <= 1<<30, c.GraphQLQueryCacheBytes},
		{"GRAPHQL_APQ_CACHE_BYTES", c.GraphQLAPQCacheBytes >= 64<<10 && c.GraphQLAPQCacheBytes <= 1<<30, c.GraphQLAPQCacheBytes},
		{"GRAPHQL_CACHE_MAX_DOCUMENT_BYTES", c.GraphQLCacheMaxDocumentBytes >= 1024 && c.GraphQLCacheMaxDocumentBytes <= min(c.GraphQLQueryCacheBytes, c.GraphQLAPQCacheBytes), c.GraphQLCacheMaxDocumentBytes},
		{"GRAPHQL_MAX_RESPONSE_BYTES", c.GraphQLMaxResponseBytes >= 1024 && c.GraphQLMaxResponseBytes <= 1<<30, c.GraphQLMaxResponseBytes},
		{"GRAPHQL_INTROSPECTION", oneOf(c.GraphQLIntrospection, "", "true", "false"), c.GraphQLIntrospection},
		{"GRAPHQL_REQUEST_TIMEOUT", c.GraphQLRequestTimeout >= 0, c.GraphQLRequestTimeout},
		{"GRAPHQL_BODY_TIMEOUT", c.GraphQLBodyTimeout > 0, c.GraphQLBodyTimeout},
		{"GRAPHQL_PLAYGROUND", oneOf(c.GraphQLPlayground, "", "true", "false"), c.GraphQLPlayground},
		{"RATE_LIMIT_RPS", c.RateLimitRPS >= 0 && !math.IsInf(c.RateLimitRPS, 0), c.RateLimitRPS},
		{"RATE_LIMIT_BURST", c.RateLimitBurst == 0 || c.RateLimitBurst >= 1 && c.RateLimitBurst <= maxBurst && c.RateLimitRPS > 0, c.RateLimitBurst},
		{"SUBSCRIPTION_MAX_KEYS", c.SubscriptionMaxKeys >= 1 && c.SubscriptionMaxKeys <= 1000, c.SubscriptionMaxKeys},
		{"SUBSCRIPTION_MAX_PER_SOCKET", c.SubscriptionMaxPerSocket >= 1 && c.SubscriptionMaxPerSocket <= 10000, c.SubscriptionMaxPerSocket},
		{"SUBSCRIPTION_MAX_SOCKETS_PER_TOKEN", c.SubscriptionMaxSocketsPerToken >= 1 && c.SubscriptionMaxSocketsPerToken <= 1_000_000, c.SubscriptionMaxSocketsPerToken},
		{"SUBSCRIPTION_MAX_SOCKETS", c.SubscriptionMaxSockets >= 1 && c.SubscriptionMaxSockets <= 1_000_000, c.SubscriptionMaxSockets},
		{"SUBSCRIPTION_KEEPALIVE", c.SubscriptionKeepAlive >= time.Second && c.SubscriptionKeepAlive <= 10*time.Minute, c.SubscriptionKeepAlive},
		{"SUBSCRIPTION_INIT_TIMEOUT", c.SubscriptionInitTimeout >= 100*time.Millisecond && c.SubscriptionInitTimeout <= 5*time.Minute, c.SubscriptionInitTimeout},
		{"SUBSCRIPTION_SLOW_TIMEOUT", c.SubscriptionSlowTimeout >= time.Second && c.SubscriptionSlowTimeout <= time.Hour, c.SubscriptionSlowTimeout},
		{"SUBSCRIPTION_QUEUE", c.SubscriptionQueue >= 2 && c.SubscriptionQueue <= 100000, c.SubscriptionQueue},
		{"METRICS_PORT", c.MetricsPort >= 0 && c.MetricsPort <= 65535 && (c.MetricsPort == 0 || c.MetricsPort != c.Port), c.MetricsPort},
	}
	for _, ch := range checks {
		if !ch.ok {
			return invalid(ch.name, fmt.Sprint(ch.val))
		}
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	dev := c.AppEnv == EnvDevelopment
	c.ListenHost = c.Host
	if c.Host == "" && dev {
		// Development has no tokens and lets any origin in: only this
		// machine may reach it unless HOST says otherwise.
		c.ListenHost = "127.0.0.1"
	}
	fallbackDefaulted := c.Cache.Fallback == ""
	if fallbackDefaulted {
		c.Cache.Fallback = "none"
		if dev {
			// go run . on a fresh machine gives a working API with no Redis.
			c.Cache.Fallback = "memory"
		}
	}
	if c.Cache.Fallback == "memory" && c.Cache.FallbackMaxBytes < c.Cache.MaxValueBytes+MaxKeyAllowance {
		e := invalid("CACHE_FALLBACK_MAX_BYTES", strconv.Itoa(c.Cache.FallbackMaxBytes))
		e.Allowed = fmt.Sprintf("at least CACHE_MAX_VALUE_BYTES + %d (%d) with CACHE_FALLBACK=memory, so the largest value fits", MaxKeyAllowance, c.Cache.MaxValueBytes+MaxKeyAllowance)
		return e
	}
	if c.GraphQLMaxResponseBytes < c.Cache.MaxValueBytes {
		e := invalid("GRAPHQL_MAX_RESPONSE_BYTES", strconv.Itoa(c.GraphQLMaxResponseBytes))
		e.Allowed = fmt.Sprintf("at least CACHE_MAX_VALUE_BYTES (%d), so that the largest value can be read back", c.Cache.MaxValueBytes)
		return e
	}
	switch {
	case c.DrainDelay != "":
		d, err := time.ParseDuration(c.DrainDelay)
		if err != nil || d < 0 {
			return invalid("SHUTDOWN_DRAIN_DELAY", c.DrainDelay)
		}
		c.ShutdownDrainDelay = d
	case !dev:
		c.ShutdownDrainDelay = 5 * time.Second
	}
	if err := c.resolveAPI(dev); err != nil {
		return err
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.AppEnv == EnvDevelopment {
			c.LogFormat = "text"
		}
	}
	r.Source = "REDIS_HOST"
	_, tlsSet := environ["REDIS_TLS"]
	if r.URL != "" {
		for _, name := range ReplacedByURL {
			value, set := environ[name]
			switch {
			case !set:
			case fromFile[name] && !fromFile["REDIS_URL"]:
				// The environment wins over the file, here as everywhere:
				// a REDIS_URL given in the environment replaces the
				// file's connection settings.
				c.ignoredByURL = append(c.ignoredByURL, name)
			default:
				// Both given at the same level (or the variable above the
				// URL): which one was meant cannot be told, so neither is
				// picked silently.
				e := invalid(name, value)
				e.Allowed = name + " unset beside REDIS_URL, which gives the host, port, user, password, database and TLS (set one or the other)"
				return e
			}
		}
		if err := r.applyURL(); err != nil {
			return err
		}
		r.Source = "REDIS_URL"
		tlsSet = true // the scheme says it
	}
	if err := r.validateTopology(); err != nil {
		return err
	}
	if r.Mode == "cluster" && c.Cache.Fallback == "memory" {
		if !fallbackDefaulted {
			e := invalid("CACHE_FALLBACK", c.Cache.Fallback)
			e.Allowed = "none with a Redis Cluster: one node down must not send every key to this instance's memory (see README, Cluster)"
			return e
		}
		c.Cache.Fallback = "none"
	}
	return c.validateTLS(tlsSet)
}

// resolveAPI applies the environment-dependent API defaults and reads the
// tokens. Staging and production refuse to start without tokens.
func (c *Config) resolveAPI(dev bool) error {
	orDev := func(v string) bool { return v == "true" || v == "" && dev }
	c.Introspection = orDev(c.GraphQLIntrospection)
	c.Playground = orDev(c.GraphQLPlayground)
	c.FieldSuggestions = c.AppEnv != EnvProduction
	if c.GraphQLRequestTimeout == 0 {
		c.GraphQLRequestTimeout = 2 * c.Redis.CommandTimeout
	}
	c.MaxRequestBytes = int64(c.GraphQLMaxBodyBytes)
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 4*int64(c.Cache.MaxValueBytes) + 64<<10
	}
	c.MaxInFlight = c.GraphQLMaxInFlight
	if c.MaxInFlight == 0 {
		c.MaxInFlight = InFlightPerCPU * runtime.GOMAXPROCS(0)
	}

	c.AllowedOrigins = trimAll(c.CORSAllowedOrigins)
	if c.AllowedOrigins == nil && dev {
		c.AllowedOrigins = []string{"*"}
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		valid := o == "*" && c.AppEnv != EnvProduction ||
			err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == ""
		if !valid {
			return invalid("CORS_ALLOWED_ORIGINS", strings.Join(c.CORSAllowedOrigins, ","))
		}
	}

	tokens, err := c.LoadTokens()
	if err != nil {
		return err
	}
	if len(tokens) == 0 && !dev {
		return &Error{Var: "API_TOKENS", Value: "", Allowed: "at least one token in " + c.AppEnv + " (API_TOKENS or API_TOKENS_FILE): without one, anyone who reaches the port could read and overwrite the cache"}
	}
	c.Tokens = tokens
	return c.resolveRateLimits()
}

// resolveRateLimits gives every token its limit, and anonymous callers
// theirs. A RATE_LIMIT_TOKENS entry for a name no token has is refused: a
// typo would otherwise leave the token it meant unlimited, silently.
func (c *Config) resolveRateLimits() error {
	anon, err := ParseRateLimit(c.RateLimitAnonymous)
	if err != nil {
		return &Error{Var: "RATE_LIMIT_ANONYMOUS", Value: c.RateLimitAnonymous, Allowed: "rate[/burst] or 0: " + err.Error()}
	}
	c.AnonymousRateLimit = anon
	byDefault := RateLimit{}
	if c.RateLimitRPS > 0 {
		byDefault = RateLimit{RPS: c.RateLimitRPS, Burst: c.RateLimitBurst}
		if byDefault.Burst == 0 {
			byDefault.Burst = defaultBurst(c.RateLimitRPS)
		}
	}
	c.TokenRateLimits = make(map[string]RateLimit, len(c.Tokens))
	for _, t := range c.Tokens {
		c.TokenRateLimits[t.Name] = byDefault
	}
	bad := func(format string, args ...any) error {
		return &Error{Var: "RATE_LIMIT_TOKENS", Value: c.RateLimitTokens, Allowed: "name=rate[/burst] entries: " + fmt.Sprintf(format, args...)}
	}
	own := map[string]bool{}
	n := 0
	for entry := range strings.SplitSeq(c.RateLimitTokens, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		n++
		name, spec, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok || name == "":
			return bad("entry %d is not name=rate/burst", n)
		case own[name]:
			return bad("entry %d: %s appears twice", n, name)
		}
		if _, known := c.TokenRateLimits[name]; !known {
			return bad("entry %d: no token is named %s in API_TOKENS or API_TOKENS_FILE", n, name)
		}
		limit, err := ParseRateLimit(spec)
		if err != nil {
			return bad("entry %d (%s): %v", n, name, err)
		}
		own[name] = true
		c.TokenRateLimits[name] = limit
	}
	return nil
}

// hostName is a DNS name: labels of letters, digits and hyphens.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// MinTokenLength is the shortest token accepted: shorter ones are too easy
// to guess.
const MinTokenLength = 16

// LoadTokens reads the tokens of API_TOKENS and API_TOKENS_FILE (the file
// read now: Load calls it, and so does a reload of the file), and checks
// that no name or token is given twice.
func (c *Config) LoadTokens() ([]Token, error) {
	tokens, err := ParseTokens(c.APITokens)
	if err != nil {
		return nil, &Error{Var: "API_TOKENS", Value: c.APITokens, Allowed: err.Error(), secret: true}
	}
	if c.APITokensFile != "" {
		b, err := os.ReadFile(c.APITokensFile)
		if err != nil {
			return nil, &Error{Var: "API_TOKENS_FILE", Value: c.APITokensFile, Allowed: "a readable file (" + err.Error() + ")"}
		}
		more, err := ParseTokens(string(b))
		if err != nil {
			return nil, &Error{Var: "API_TOKENS_FILE", Value: c.APITokensFile, Allowed: "name:scope:token lines: " + err.Error()}
		}
		tokens = append(tokens, more...)
	}
	if err := checkDistinct(tokens); err != nil {
		return nil, &Error{Var: "API_TOKENS", Value: c.APITokens, Allowed: err.Error(), secret: true}
	}
	return tokens, nil
}

// ParseTokens reads name:scope:token entries separated by commas or new
// lines; blank lines and lines starting with # are skipped. Errors name the
// entry by position and name, never by its token.
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			name, rest, ok1 := strings.Cut(entry, ":")
			scope, value, ok2 := strings.Cut(rest, ":")
			switch {
			case !ok1 || !ok2:
				return nil, fmt.Errorf("entry %d: want name:scope:token", n)
			case !tokenName.MatchString(name):
				return nil, fmt.Errorf("entry %d: name must be 1-64 letters, digits, '.', '_' or '-'", n)
			case scope != "read" && scope != "write":
				return nil, fmt.Errorf("entry %d (%s): scope must be read or write", n, name)
			case len(value) < MinTokenLength:
				return nil, fmt.Errorf("entry %d (%s): token must be at least %d characters", n, name, MinTokenLength)
			case strings.ContainsFunc(value, unicode.IsSpace):
				return nil, fmt.Errorf("entry %d (%s): token must not contain spaces", n, name)
			}
			out = append(out, Token{Name: name, Scope: scope, Value: value})
		}
	}
	return out, nil
}

func checkDistinct(tokens []Token) error {
	names, values := map[string]bool{}, map[string]bool{}
	for _, t := range tokens {
		if names[t.Name] {
			return fmt.Errorf("token name %s appears twice", t.Name)
		}
		if values[t.Value] {
			return fmt.Errorf("token %s has the same value as another", t.Name)
		}
		names[t.Name], values[t.Value] = true, true
	}
	return nil
}

// validateTopology picks standalone, Sentinel or Cluster and checks that the
// variables for it agree.
func (r *Redis) validateTopology() error {
	r.SentinelAddrs, r.ClusterAddrs = trimAll(r.SentinelAddrs), trimAll(r.ClusterAddrs)
	r.Mode = "standalone"
	if len(r.SentinelAddrs) > 0 || r.SentinelMaster != "" {
		r.Mode = "sentinel"
		if len(r.SentinelAddrs) == 0 {
			e := invalid("REDIS_SENTINEL_ADDRS", "")
			e.Allowed = "Sentinel host:port entries when REDIS_SENTINEL_MASTER is set"
			return e
		}
		if r.SentinelMaster == "" {
			e := invalid("REDIS_SENTINEL_MASTER", "")
			e.Allowed = "the master set name when REDIS_SENTINEL_ADDRS is set"
			return e
		}
		if len(r.ClusterAddrs) > 0 {
			return &Error{Var: "REDIS_CLUSTER_ADDRS", Value: strings.Join(r.ClusterAddrs, ","), Allowed: "empty when REDIS_SENTINEL_ADDRS is set (one topology at a time)"}
		}
		if err := checkAddrs("REDIS_SENTINEL_ADDRS", r.SentinelAddrs); err != nil {
			return err
		}
	}
	if len(r.ClusterAddrs) > 0 {
		r.Mode = "cluster"
		if err := checkAddrs("REDIS_CLUSTER_ADDRS", r.ClusterAddrs); err != nil {
			return err
		}
		if r.DB != 0 {
			return &Error{Var: "REDIS_DB", Value: strconv.Itoa(r.DB), Allowed: "0 with a cluster (a cluster has only database 0)"}
		}
	}
	switch r.SentinelTLS {
	case "":
		r.SentinelTLSOn = r.TLS
	case "true", "false":
		r.SentinelTLSOn = r.SentinelTLS == "true"
	default:
		return invalid("REDIS_SENTINEL_TLS", r.SentinelTLS)
	}
	return nil
}

func trimAll(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func checkAddrs(name string, addrs []string) error {
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return invalid(name, strings.Join(addrs, ","))
		}
	}
	return nil
}

// validateTLS applies the production rules: TLS on unless explicitly off,
// off only with REDIS_TLS_ALLOW_PLAINTEXT, never skip-verify.
func (c *Config) validateTLS(tlsSet bool) error {
	r := &c.Redis
	prod := c.AppEnv == EnvProduction
	if prod && !tlsSet {
		r.TLS = true
		if r.SentinelTLS == "" {
			r.SentinelTLSOn = true
		}
	}
	if prod && !r.TLS && !r.TLSAllowPlaintext {
		name, value := "REDIS_TLS", "false"
		if r.Source == "REDIS_URL" {
			name, value = "REDIS_URL", r.URL
		}
		e := invalid(name, value)
		e.Allowed = "TLS in production (REDIS_TLS=true or a rediss:// URL); set REDIS_TLS_ALLOW_PLAINTEXT=true to connect without TLS on a private network"
		return e
	}
	if prod && r.TLSInsecureSkipVerify {
		e := invalid("REDIS_TLS_INSECURE_SKIP_VERIFY", "true")
		e.Allowed = "false in production: the server certificate must be verified (use REDIS_TLS_CA_FILE for a private CA)"
		return e
	}
	anyTLS := r.TLS || r.SentinelTLSOn
	for _, f := range []struct{ name, value string }{
		{"REDIS_TLS_CA_FILE", r.TLSCAFile}, {"REDIS_TLS_CERT_FILE", r.TLSCertFile},
		{"REDIS_TLS_KEY_FILE", r.TLSKeyFile}, {"REDIS_TLS_SERVER_NAME", r.TLSServerName},
	} {
		if f.value != "" && !anyTLS {
			// Set but without effect: say so rather than connect in the clear.
			return invalid(f.name, f.value)
		}
	}
	if (r.TLSCertFile == "") != (r.TLSKeyFile == "") {
		if r.TLSCertFile == "" {
			return invalid("REDIS_TLS_CERT_FILE", "")
		}
		return invalid("REDIS_TLS_KEY_FILE", "")
	}
	for _, f := range []struct{ name, path string }{
		{"REDIS_TLS_CA_FILE", r.TLSCAFile}, {"REDIS_TLS_CERT_FILE", r.TLSCertFile}, {"REDIS_TLS_KEY_FILE", r.TLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			e := invalid(f.name, f.path)
			e.Allowed = "a readable file (" + err.Error() + ")"
			return e
		}
	}
	return nil
}

// applyURL replaces the discrete connection settings with those in URL.
func (r *Redis) applyURL() error {
	bad := invalid("REDIS_URL", r.URL)
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" || u.Opaque != "" {
		return bad
	}
	q := u.Query()
	extra := q["addr"]
	delete(q, "addr")
	if len(q) > 0 || u.Fragment != "" {
		// Unknown options would otherwise be dropped without a word.
		return bad
	}
	port := 6379
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return bad
		}
	}
	db := 0
	if path := strings.TrimPrefix(u.Path, "/"); path != "" {
		if db, err = strconv.Atoi(path); err != nil || db < 0 {
			return bad
		}
	}
	r.Host, r.Port, r.DB = u.Hostname(), port, db
	r.TLS = u.Scheme == "rediss"
	if len(extra) > 0 {
		// Several addresses (valkey-go's ?addr= convention) name cluster seeds.
		if len(r.ClusterAddrs) > 0 {
			e := invalid("REDIS_CLUSTER_ADDRS", strings.Join(r.ClusterAddrs, ","))
			e.Allowed = "empty when REDIS_URL lists addr= seeds"
			return e
		}
		r.ClusterAddrs = append([]string{r.Addr()}, extra...)
		if checkAddrs("REDIS_URL", r.ClusterAddrs) != nil {
			return bad
		}
	}
	r.Username, r.Password = "", ""
	if u.User != nil {
		var hasPassword bool
		r.Username = u.User.Username()
		r.Password, hasPassword = u.User.Password()
		if !hasPassword {
			// redis://user@host would AUTH with an empty password.
			e := invalid("REDIS_URL", r.URL)
			e.Allowed = "a password with the user (redis://user:password@host), or no user info at all"
			return e
		}
	}
	return nil
}

// Addr is the Redis address as host:port.
func (r Redis) Addr() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// LogValue renders the effective configuration for a start-up log line,
// without secrets.
func (c Config) LogValue() slog.Value {
	r := c.Redis
	return slog.GroupValue(
		slog.String("appEnv", c.AppEnv),
		slog.Int("port", c.Port),
		slog.String("host", c.ListenHost),
		slog.String("logLevel", c.LogLevel),
		slog.Group("redis",
			slog.String("source", r.Source),
			slog.String("mode", r.Mode),
			slog.String("addr", r.Addr()),
			slog.Int("db", r.DB),
			slog.Bool("tls", r.TLS),
			slog.Bool("tlsSkipVerify", r.TLSInsecureSkipVerify),
			slog.Any("sentinelAddrs", r.SentinelAddrs),
			slog.String("sentinelMaster", r.SentinelMaster),
			slog.Any("clusterAddrs", r.ClusterAddrs),
			slog.String("username", r.Username),
			slog.Bool("password", r.Password != ""),
			slog.String("keyPrefix", r.KeyPrefix),
			slog.Duration("commandTimeout", r.CommandTimeout),
			slog.Duration("healthInterval", r.HealthInterval),
			slog.Bool("required", r.Required),
			slog.Bool("clientCache", r.ClientCache),
		),
		slog.Group("api",
			slog.String("tokens", fmt.Sprint(c.Tokens)),
			slog.Bool("introspection", c.Introspection),
			slog.Bool("playground", c.Playground),
			slog.Any("corsOrigins", c.AllowedOrigins),
			slog.Int("maxInFlight", c.MaxInFlight),
			slog.String("tokenRateLimits", rateLimitsByName(c.TokenRateLimits)),
			slog.String("anonymousRateLimit", c.AnonymousRateLimit.String()),
		),
		slog.String("fallback", c.Cache.Fallback),
	)
}

// rateLimitsByName shows limits as name=rate/burst, sorted by name.
func rateLimitsByName(limits map[string]RateLimit) string {
	names := slices.Sorted(maps.Keys(limits))
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = name + "=" + limits[name].String()
	}
	return strings.Join(out, ",")
}

// ReplacedByURL are the discrete Redis variables REDIS_URL stands for.
// Setting one beside it is refused, unless it comes from the .env file and
// REDIS_URL from the environment (see IgnoredByURL).
var ReplacedByURL = []string{"REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_DB", "REDIS_TLS"}

// IgnoredByURL lists the discrete Redis variables that the .env file set
// but that a REDIS_URL from the environment replaces (the environment wins
// over the file), so the operator can be told they have no effect.
func (c Config) IgnoredByURL() []string {
	return slices.Clone(c.ignoredByURL)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func oneOf(v string, allowed ...string) bool {
	return slices.Contains(allowed, v)
}
