package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRangesHoldAtTheirEdges: every numeric variable with a documented
// range accepts both its ends and refuses the values just outside them,
// with an error naming the variable.
func TestRangesHoldAtTheirEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string // what the other checks need beside it
		ok, bad []string
	}{
		{"PORT", nil, []string{"0", "65535"}, []string{"-1", "65536"}},
		{"REDIS_PORT", nil, []string{"1", "65535"}, []string{"0", "65536"}},
		{"REDIS_DB", nil, []string{"0", "15"}, []string{"-1"}},
		{"REDIS_MAX_RETRIES", nil, []string{"0", "100"}, []string{"-1", "101"}},
		{"REDIS_RECONNECT_MIN_BACKOFF", map[string]string{"REDIS_RECONNECT_MAX_BACKOFF": "1s"}, []string{"1ns", "1s"}, []string{"0s", "1001ms"}},
		{"REDIS_HEALTH_INTERVAL", nil, []string{"50ms"}, []string{"49ms"}},
		{"REDIS_CLIENT_CACHE_SIZE_MB", nil, []string{"1", "1024"}, []string{"0", "1025"}},
		{"REDIS_CLIENT_CACHE_TTL", nil, []string{"1s"}, []string{"999ms"}},
		{"CACHE_MAX_VALUE_BYTES", map[string]string{"GRAPHQL_MAX_RESPONSE_BYTES": "1073741824"}, []string{"1", "536870912"}, []string{"0", "536870913"}},
		{"CACHE_MAX_TTL", nil, []string{"1s", "2147483647s"}, []string{"999ms", "2147483648s"}},
		{"CACHE_FALLBACK_MAX_BYTES", nil, []string{"1024", "1073741824"}, []string{"1023", "1073741825"}},
		{"GRAPHQL_MAX_COMPLEXITY", nil, []string{"1", "100000"}, []string{"0", "100001"}},
		{"GRAPHQL_MAX_DEPTH", nil, []string{"1", "100"}, []string{"0", "101"}},
		{"GRAPHQL_MAX_TOKENS", nil, []string{"100", "1000000"}, []string{"99", "1000001"}},
		{"GRAPHQL_MAX_ALIASES", nil, []string{"0", "1000"}, []string{"-1", "1001"}},
		{"GRAPHQL_MAX_OPERATIONS", nil, []string{"1", "100"}, []string{"0", "101"}},
		{"GRAPHQL_MAX_BODY_BYTES", map[string]string{"CACHE_MAX_VALUE_BYTES": "100"}, []string{"1024"}, []string{"1023"}},
		{"GRAPHQL_MAX_IN_FLIGHT", nil, []string{"0", "1000000"}, []string{"-1", "1000001"}},
		{"GRAPHQL_QUERY_CACHE_BYTES", nil, []string{"65536", "1073741824"}, []string{"65535", "1073741825"}},
		{"GRAPHQL_APQ_CACHE_BYTES", nil, []string{"65536", "1073741824"}, []string{"65535", "1073741825"}},
		{"GRAPHQL_CACHE_MAX_DOCUMENT_BYTES", map[string]string{"GRAPHQL_QUERY_CACHE_BYTES": "131072", "GRAPHQL_APQ_CACHE_BYTES": "262144"}, []string{"1024", "131072"}, []string{"1023", "131073"}},
		{"GRAPHQL_MAX_RESPONSE_BYTES", map[string]string{"CACHE_MAX_VALUE_BYTES": "1024"}, []string{"1024", "1073741824"}, []string{"1023", "1073741825"}},
		{"RATE_LIMIT_BURST", map[string]string{"RATE_LIMIT_RPS": "10"}, []string{"1", "1000000"}, []string{"-1", "1000001"}},
		{"RATE_LIMIT_TOKENS", map[string]string{"API_TOKENS": testToken}, []string{"ops=200/1", "ops=200/1000000"}, []string{"ops=200/0", "ops=200/1000001"}},
		{"RATE_LIMIT_ANONYMOUS", nil, []string{"10/1", "10/1000000"}, []string{"10/0", "10/1000001"}},
		{"SHUTDOWN_TIMEOUT", nil, []string{"1ns"}, []string{"0s", "-1s"}},
		{"SHUTDOWN_DRAIN_DELAY", nil, []string{"0s", "1ns"}, []string{"-1ns", "soon"}},
		{"REDIS_DIAL_TIMEOUT", nil, []string{"1ns"}, []string{"0s"}},
		{"REDIS_COMMAND_TIMEOUT", nil, []string{"1ns"}, []string{"0s"}},
		{"REDIS_RECONNECT_MAX_BACKOFF", map[string]string{"REDIS_RECONNECT_MIN_BACKOFF": "1ns"}, []string{"1ns"}, []string{"0s"}},
		{"REDIS_DEGRADED_LATENCY", nil, []string{"1ns"}, []string{"0s"}},
		{"GRAPHQL_BODY_TIMEOUT", nil, []string{"1ns"}, []string{"0s"}},
		{"CACHE_FALLBACK_MAX_BYTES", map[string]string{"CACHE_FALLBACK": "memory", "CACHE_MAX_VALUE_BYTES": "4096"}, []string{"5120"}, []string{"5119"}},
		{"REDIS_URL", nil, []string{"redis://h:1/0", "redis://h:65535/15"}, []string{"redis://h:0", "redis://h:65536", "redis://h:1/-1"}},
		{"REDIS_CLUSTER_ADDRS", nil, []string{"a:1,b:65535"}, []string{"a:1,b:0", "a:65536"}},
		{"METRICS_PORT", map[string]string{"PORT": "8080"}, []string{"0", "65535"}, []string{"-1", "65536", "8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, values := range []struct {
				list []string
				ok   bool
			}{{tt.ok, true}, {tt.bad, false}} {
				for _, v := range values.list {
					env := map[string]string{"CACHE_FALLBACK": "none", tt.name: v}
					// The row's own settings win over the base, CACHE_FALLBACK included.
					for k, w := range tt.env {
						env[k] = w
					}
					_, err := load(env)
					var cerr *Error
					switch {
					case values.ok && err != nil:
						t.Errorf("%s=%s: %v; want it accepted", tt.name, v, err)
					case !values.ok && (!errors.As(err, &cerr) || cerr.Var != tt.name):
						t.Errorf("%s=%s: error %v; want it refused, naming %s", tt.name, v, err, tt.name)
					}
				}
			}
		})
	}
}

// Defaults derived from other variables: the drain delay outside
// development, the request deadline from the command timeout, and the body
// limit from the largest value.
func TestDerivedDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(map[string]string{"APP_ENV": "production", "API_TOKENS": "ops:write:0123456789abcdef", "REDIS_TLS": "false", "REDIS_TLS_ALLOW_PLAINTEXT": "true",
		"REDIS_COMMAND_TIMEOUT": "700ms", "CACHE_MAX_VALUE_BYTES": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ShutdownDrainDelay != 5*time.Second || cfg.GraphQLRequestTimeout != 1400*time.Millisecond || cfg.MaxRequestBytes != 4*1000+64<<10 {
		t.Errorf("drain delay %v, request timeout %v, body limit %d; want 5s, 1.4s (twice 700ms), %d (4 values + 64 KiB)", cfg.ShutdownDrainDelay, cfg.GraphQLRequestTimeout, cfg.MaxRequestBytes, 4*1000+64<<10)
	}
	cfg, err = load(map[string]string{"GRAPHQL_REQUEST_TIMEOUT": "3s", "GRAPHQL_MAX_BODY_BYTES": "2048"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ShutdownDrainDelay != 0 || cfg.GraphQLRequestTimeout != 3*time.Second || cfg.MaxRequestBytes != 2048 {
		t.Errorf("development: drain delay %v, request timeout %v, body limit %d; want 0s and the values given, 3s and 2048", cfg.ShutdownDrainDelay, cfg.GraphQLRequestTimeout, cfg.MaxRequestBytes)
	}
}

// In production TLS is on unless turned off, and the Sentinels follow it
// unless REDIS_SENTINEL_TLS says otherwise.
func TestProductionSentinelTLSFollowsRedisTLS(t *testing.T) {
	t.Parallel()
	for sentinelTLS, want := range map[string]bool{"": true, "false": false, "true": true} {
		env := map[string]string{"APP_ENV": "production", "API_TOKENS": testToken,
			"REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_TLS": sentinelTLS}
		cfg, err := load(env)
		if err != nil {
			t.Fatalf("REDIS_SENTINEL_TLS=%q: %v", sentinelTLS, err)
		}
		if !cfg.Redis.TLS || cfg.Redis.SentinelTLSOn != want {
			t.Errorf("production, REDIS_SENTINEL_TLS=%q: TLS %v, Sentinel TLS %v; want true, %v", sentinelTLS, cfg.Redis.TLS, cfg.Redis.SentinelTLSOn, want)
		}
	}
}

// A bad API_TOKENS entry is named by its place among the entries, blank
// ones not counted.
func TestTokenErrorsNameTheEntry(t *testing.T) {
	t.Parallel()
	_, err := load(map[string]string{"API_TOKENS": testToken + ", ,ops2:read:short"})
	if err == nil || !strings.Contains(err.Error(), "entry 2 (ops2)") {
		t.Errorf("Load() = %v; want the error to name entry 2 (ops2)", err)
	}
}

// The start-up line says whether a Redis password is set, never what it is.
func TestLogValueSaysWhetherAPasswordIsSet(t *testing.T) {
	t.Parallel()
	for password, want := range map[string]string{"": "password=false", "s3cret-pw": "password=true"} {
		cfg, err := load(map[string]string{"REDIS_PASSWORD": password})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.LogValue().String(); !strings.Contains(got, want) || password != "" && strings.Contains(got, password) {
			t.Errorf("LogValue() with REDIS_PASSWORD=%q = %s; want %s and no password", password, got, want)
		}
	}
}
