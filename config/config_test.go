package config

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testToken lets staging and production configurations load.
const testToken = "ops:read:0123456789abcdef"

// load is Load with env as the whole environment and no .env file.
func load(env map[string]string) (*Config, error) {
	return Load(func(name string) string { return env[name] }, nil)
}

// loadExpecting loads env. With wantErr it requires an *Error naming that
// variable and returns a nil Config with the error; otherwise it requires
// success.
func loadExpecting(t *testing.T, env map[string]string, wantErr string) (*Config, error) {
	t.Helper()
	cfg, err := load(env)
	if wantErr != "" {
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != wantErr {
			t.Fatalf("Load() error = %v; want one naming %s", err, wantErr)
		}
		return nil, err
	}
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	return cfg, nil
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(nil)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"AppEnv", cfg.AppEnv, "development"},
		{"Port", cfg.Port, 5000},
		{"LogLevel", cfg.LogLevel, "info"},
		{"LogFormat", cfg.LogFormat, "text"},
		{"Redis.Addr", cfg.Redis.Addr(), "localhost:6379"},
		{"Redis.DB", cfg.Redis.DB, 0},
		{"Redis.TLS", cfg.Redis.TLS, false},
		{"Redis.KeyPrefix", cfg.Redis.KeyPrefix, "school-erp:"},
		{"Redis.MaxRetries", cfg.Redis.MaxRetries, 3},
		{"Redis.CommandTimeout", cfg.Redis.CommandTimeout, 500 * time.Millisecond},
		{"Redis.ReconnectMinBackoff", cfg.Redis.ReconnectMinBackoff, 50 * time.Millisecond},
		{"Redis.ReconnectMaxBackoff", cfg.Redis.ReconnectMaxBackoff, 2 * time.Second},
		{"Redis.HealthInterval", cfg.Redis.HealthInterval, 5 * time.Second},
		{"Redis.Source", cfg.Redis.Source, "REDIS_HOST"},
		{"Cache.MaxValueBytes", cfg.Cache.MaxValueBytes, 1 << 20},
		{"MaxInFlight", cfg.MaxInFlight, InFlightPerCPU * runtime.GOMAXPROCS(0)},
		{"TokenRateLimit default", cfg.RateLimitRPS, 0.0},
		{"GraphQLQueryCacheBytes", cfg.GraphQLQueryCacheBytes, 4 << 20},
		{"GraphQLAPQCacheBytes", cfg.GraphQLAPQCacheBytes, 4 << 20},
		{"GraphQLCacheMaxDocumentBytes", cfg.GraphQLCacheMaxDocumentBytes, 64 << 10},
		{"GraphQLMaxResponseBytes", cfg.GraphQLMaxResponseBytes, 16 << 20},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadLogFormatFollowsAppEnv(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{"development": "text", "staging": "json", "production": "json"} {
		cfg, err := load(map[string]string{"APP_ENV": env, "API_TOKENS": testToken})
		if err != nil {
			t.Fatalf("APP_ENV=%s: Load() error = %v", env, err)
		}
		if cfg.LogFormat != want {
			t.Errorf("APP_ENV=%s: LogFormat = %q; want %q", env, cfg.LogFormat, want)
		}
	}
}

func TestLoadURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		url      string
		addr     string
		user     string
		password string
		db       int
		tls      bool
	}{
		{"plain", "redis://cache.internal", "cache.internal:6379", "", "", 0, false},
		{"password only", "redis://:s3cret@10.0.0.5:6380/2", "10.0.0.5:6380", "", "s3cret", 2, false},
		{"acl user over tls", "rediss://app:p%40ss@redis.example.com:6380/15", "redis.example.com:6380", "app", "p@ss", 15, true},
		{"ipv6", "redis://[::1]:7000", "[::1]:7000", "", "", 0, false},
		{"trailing slash", "redis://h:1/", "h:1", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The .env file sets the discrete variables: the URL, from the
			// environment, must replace them.
			environment := map[string]string{"REDIS_URL": tt.url}
			cfg, err := Load(func(name string) string { return environment[name] }, map[string]string{
				"REDIS_HOST": "ignored", "REDIS_PORT": "1111",
				"REDIS_PASSWORD": "ignored", "REDIS_DB": "9", "REDIS_TLS": "true",
			})
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			r := cfg.Redis
			if r.Addr() != tt.addr || r.Username != tt.user || r.Password != tt.password || r.DB != tt.db || r.TLS != tt.tls {
				t.Errorf("Load(REDIS_URL=%q) = addr %s user %q password %q db %d tls %v; want %s %q %q %d %v",
					tt.url, r.Addr(), r.Username, r.Password, r.DB, r.TLS, tt.addr, tt.user, tt.password, tt.db, tt.tls)
			}
			if r.Source != "REDIS_URL" {
				t.Errorf("Source = %q; want REDIS_URL", r.Source)
			}
			if got := cfg.IgnoredByURL(); len(got) != 5 {
				t.Errorf("IgnoredByURL() = %v; want the 5 discrete variables set", got)
			}
		})
	}
}

// TestURLConflicts: REDIS_URL and a discrete variable it replaces, given at
// the same level (or the variable above the URL), are refused, naming both;
// only a REDIS_URL from the environment over the file's discrete variables
// is the ordinary precedence.
func TestURLConflicts(t *testing.T) {
	t.Parallel()
	const url = "redis://:url-pw@cache.internal:6380/2"
	tests := []struct {
		name        string
		environment map[string]string
		file        map[string]string
		wantErr     string // the variable named beside REDIS_URL; empty: loads
	}{
		{"port beside the URL", map[string]string{"REDIS_URL": url, "REDIS_PORT": "6379"}, nil, "REDIS_PORT"},
		{"host beside the URL", map[string]string{"REDIS_URL": url, "REDIS_HOST": "cache.internal"}, nil, "REDIS_HOST"},
		{"password beside the URL", map[string]string{"REDIS_URL": url, "REDIS_PASSWORD": "other-pw"}, nil, "REDIS_PASSWORD"},
		{"db, username and TLS beside the URL", map[string]string{"REDIS_URL": url, "REDIS_DB": "2", "REDIS_USERNAME": "app", "REDIS_TLS": "false"}, nil, "REDIS_USERNAME"},
		{"both in the file", nil, map[string]string{"REDIS_URL": url, "REDIS_DB": "4"}, "REDIS_DB"},
		{"URL in the file, port in the environment", map[string]string{"REDIS_PORT": "6379"}, map[string]string{"REDIS_URL": url}, "REDIS_PORT"},
		{"URL in the environment, the file's variables replaced", map[string]string{"REDIS_URL": url}, map[string]string{"REDIS_HOST": "localhost", "REDIS_PORT": "6379", "REDIS_DB": "0"}, ""},
		{"URL alone", map[string]string{"REDIS_URL": url}, nil, ""},
		{"empty variables count as unset", map[string]string{"REDIS_URL": url, "REDIS_HOST": "", "REDIS_PORT": ""}, map[string]string{"REDIS_DB": ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(func(name string) string { return tt.environment[name] }, tt.file)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load() error = %v", err)
				}
				if cfg.Redis.Addr() != "cache.internal:6380" || cfg.Redis.DB != 2 || cfg.Redis.Password != "url-pw" {
					t.Errorf("Load() = addr %s db %d; want the URL's cache.internal:6380 db 2 and its password", cfg.Redis.Addr(), cfg.Redis.DB)
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != tt.wantErr {
				t.Fatalf("Load() error = %v; want one naming %s", err, tt.wantErr)
			}
			if msg := err.Error(); !strings.Contains(msg, "REDIS_URL") || strings.Contains(msg, "url-pw") || strings.Contains(msg, "other-pw") {
				t.Errorf("error %q: want it to name REDIS_URL beside %s, and no password", msg, tt.wantErr)
			}
		})
	}
}

func TestLoadRejectsInvalidValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		// wantIn must appear in the message; wantOut must not (secrets).
		wantIn  []string
		wantOut []string
	}{
		{"port not a number", map[string]string{"REDIS_PORT": "abc"}, "REDIS_PORT", []string{`REDIS_PORT="abc"`, "1 to 65535"}, nil},
		// Config.Port and Redis.Port share a Go field name: the error must
		// still name the variable that was wrong.
		{"http port not a number", map[string]string{"PORT": "abc"}, "PORT", []string{`invalid PORT="abc"`, "0 to 65535"}, nil},
		{"http port not a number beside a good redis port", map[string]string{"PORT": "abc", "REDIS_PORT": "6380"}, "PORT", []string{`invalid PORT="abc"`}, nil},
		{"number not a number", map[string]string{"RATE_LIMIT_RPS": "fast"}, "RATE_LIMIT_RPS", []string{`RATE_LIMIT_RPS="fast"`, "0 or more"}, nil},
		{"host with a port", map[string]string{"HOST": "0.0.0.0:5000"}, "HOST", []string{`invalid HOST="0.0.0.0:5000"`, "an IP address, or a host name"}, nil},
		{"host with a space", map[string]string{"HOST": "my host"}, "HOST", []string{`invalid HOST="my host"`}, nil},
		{"nested duration", map[string]string{"CACHE_MAX_TTL": "forever"}, "CACHE_MAX_TTL", []string{`CACHE_MAX_TTL="forever"`}, nil},
		{"list of one bad value", map[string]string{"REDIS_CLUSTER_ADDRS": "a:1,b"}, "REDIS_CLUSTER_ADDRS", []string{`"a:1,b"`}, nil},
		{"secret not parsed but redacted", map[string]string{"API_TOKENS": "erp:read:hunter2pw"}, "API_TOKENS", nil, []string{"hunter2pw"}},
		{"port out of range", map[string]string{"REDIS_PORT": "70000"}, "REDIS_PORT", []string{`"70000"`}, nil},
		{"negative db", map[string]string{"REDIS_DB": "-1"}, "REDIS_DB", []string{`REDIS_DB="-1"`, "0 or more"}, nil},
		{"unknown app env", map[string]string{"APP_ENV": "prod"}, "APP_ENV", []string{`APP_ENV="prod"`, "development, staging, production"}, nil},
		{"bool", map[string]string{"REDIS_TLS": "yes"}, "REDIS_TLS", []string{`"yes"`, "true or false"}, nil},
		{"duration", map[string]string{"REDIS_COMMAND_TIMEOUT": "500"}, "REDIS_COMMAND_TIMEOUT", []string{`"500"`, "duration"}, nil},
		{"zero duration", map[string]string{"REDIS_HEALTH_INTERVAL": "0s"}, "REDIS_HEALTH_INTERVAL", []string{"positive"}, nil},
		{"backoff min above max", map[string]string{"REDIS_RECONNECT_MIN_BACKOFF": "3s"}, "REDIS_RECONNECT_MIN_BACKOFF", []string{"REDIS_RECONNECT_MAX_BACKOFF"}, nil},
		{"log level", map[string]string{"LOG_LEVEL": "verbose"}, "LOG_LEVEL", []string{"debug, info, warn, error"}, nil},
		{"empty host", map[string]string{"REDIS_HOST": " "}, "REDIS_HOST", nil, nil},
		{"value limit", map[string]string{"CACHE_MAX_VALUE_BYTES": "0"}, "CACHE_MAX_VALUE_BYTES", nil, nil},
		{"url scheme", map[string]string{"REDIS_URL": "http://u:hunter2pw@h:1"}, "REDIS_URL", []string{"rediss://"}, []string{"hunter2pw"}},
		{"url port", map[string]string{"REDIS_URL": "redis://:hunter2pw@h:port"}, "REDIS_URL", nil, []string{"hunter2pw"}},
		{"url db", map[string]string{"REDIS_URL": "redis://:hunter2pw@h:1/x"}, "REDIS_URL", []string{"xxxxx"}, []string{"hunter2pw"}},
		{"url unknown option", map[string]string{"REDIS_URL": "redis://h:1?dial_timeout=1s"}, "REDIS_URL", nil, nil},
		{"url without host", map[string]string{"REDIS_URL": "redis:///0"}, "REDIS_URL", nil, nil},
		{"url garbage", map[string]string{"REDIS_URL": "::hunter2pw::%zz"}, "REDIS_URL", []string{"hidden"}, []string{"hunter2pw"}},
		{"url password without a host", map[string]string{"REDIS_URL": "redis://u:hunter2pw"}, "REDIS_URL", []string{"hidden"}, []string{"hunter2pw"}},
		{"url plain host shown", map[string]string{"REDIS_URL": "redis://cache.internal:6379/x"}, "REDIS_URL", []string{"cache.internal:6379"}, nil},
		{"fallback smaller than a value", map[string]string{"CACHE_FALLBACK": "memory", "CACHE_MAX_VALUE_BYTES": "1048576", "CACHE_FALLBACK_MAX_BYTES": "1024"}, "CACHE_FALLBACK_MAX_BYTES", []string{"CACHE_MAX_VALUE_BYTES", "(1049600)"}, nil},
		{"url plain host without a port shown", map[string]string{"REDIS_URL": "redis://cache.internal/x"}, "REDIS_URL", []string{`"redis://cache.internal/x"`}, nil},
		{"url with an empty user info", map[string]string{"REDIS_URL": "redis://@h:1/x"}, "REDIS_URL", []string{`"redis://xxxxx@h:1/x"`}, nil},
		{"url password with #", map[string]string{"REDIS_URL": "redis://u:hunter2pw#x@h:1/z"}, "REDIS_URL", []string{"xxxxx@h"}, []string{"hunter2pw"}},
		{"prefix with an unclosed brace", map[string]string{"REDIS_KEY_PREFIX": "app{x:"}, "REDIS_KEY_PREFIX", []string{`"app{x:"`}, nil},
		{"url password with @", map[string]string{"REDIS_URL": "redis://app:hunter@2pw@h:port"}, "REDIS_URL", []string{"xxxxx@h:port"}, []string{"hunter", "2pw"}},
		{"url user without password", map[string]string{"REDIS_URL": "redis://app@h:1"}, "REDIS_URL", []string{"password"}, nil},
		{"probe interval too short", map[string]string{"REDIS_HEALTH_INTERVAL": "1ns"}, "REDIS_HEALTH_INTERVAL", nil, nil},
		{"fallback mode", map[string]string{"CACHE_FALLBACK": "disk"}, "CACHE_FALLBACK", []string{"none or memory"}, nil},
		{"drain delay", map[string]string{"SHUTDOWN_DRAIN_DELAY": "-1s"}, "SHUTDOWN_DRAIN_DELAY", nil, nil},
		{"metrics port equals port", map[string]string{"PORT": "7000", "METRICS_PORT": "7000"}, "METRICS_PORT", nil, nil},
		{"in-flight bound", map[string]string{"GRAPHQL_MAX_IN_FLIGHT": "-1"}, "GRAPHQL_MAX_IN_FLIGHT", []string{"1 to 1000000"}, nil},
		{"rate not finite", map[string]string{"RATE_LIMIT_RPS": "Inf"}, "RATE_LIMIT_RPS", []string{"0 or more"}, nil},
		{"burst without a rate", map[string]string{"RATE_LIMIT_BURST": "50"}, "RATE_LIMIT_BURST", []string{"RATE_LIMIT_RPS above 0"}, nil},
		{"burst too large", map[string]string{"RATE_LIMIT_RPS": "10", "RATE_LIMIT_BURST": "2000000"}, "RATE_LIMIT_BURST", []string{"1000000"}, nil},
		{"token limit without =", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops:200/400"}, "RATE_LIMIT_TOKENS", []string{"entry 1 is not name=rate/burst"}, []string{"0123456789abcdef"}},
		{"token limit for an unknown token", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops=5,opz=200/400"}, "RATE_LIMIT_TOKENS", []string{"entry 2", "no token is named opz"}, nil},
		{"token limit twice", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops=5,ops=6"}, "RATE_LIMIT_TOKENS", []string{"ops appears twice"}, nil},
		{"token limit rate", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops=fast/400"}, "RATE_LIMIT_TOKENS", []string{"entry 1 (ops)", `rate "fast"`}, nil},
		{"token limit burst", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops=200/0"}, "RATE_LIMIT_TOKENS", []string{`burst "0"`, "1 to 1000000"}, nil},
		{"token limit of 0 with a burst", map[string]string{"API_TOKENS": testToken, "RATE_LIMIT_TOKENS": "ops=0/10"}, "RATE_LIMIT_TOKENS", []string{"leave the burst out"}, nil},
		{"token limit without tokens", map[string]string{"RATE_LIMIT_TOKENS": "ops=5"}, "RATE_LIMIT_TOKENS", []string{"no token is named ops"}, nil},
		{"anonymous limit", map[string]string{"RATE_LIMIT_ANONYMOUS": "-1"}, "RATE_LIMIT_ANONYMOUS", []string{`RATE_LIMIT_ANONYMOUS="-1"`, "0 or more"}, nil},
		{"anonymous burst", map[string]string{"RATE_LIMIT_ANONYMOUS": "10/x"}, "RATE_LIMIT_ANONYMOUS", []string{`burst "x"`}, nil},
		{"query cache too small", map[string]string{"GRAPHQL_QUERY_CACHE_BYTES": "1000"}, "GRAPHQL_QUERY_CACHE_BYTES", []string{"65536"}, nil},
		{"response limit below a value", map[string]string{"GRAPHQL_MAX_RESPONSE_BYTES": "1048575"}, "GRAPHQL_MAX_RESPONSE_BYTES", []string{"CACHE_MAX_VALUE_BYTES"}, nil},
		{"cached document larger than a cache", map[string]string{"GRAPHQL_APQ_CACHE_BYTES": "65536", "GRAPHQL_CACHE_MAX_DOCUMENT_BYTES": "100000"}, "GRAPHQL_CACHE_MAX_DOCUMENT_BYTES", []string{"GRAPHQL_APQ_CACHE_BYTES"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(tt.env)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load() error = %v; want a *config.Error", err)
			}
			if cerr.Var != tt.wantVar {
				t.Errorf("error names %s; want %s", cerr.Var, tt.wantVar)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.wantVar) {
				t.Errorf("message %q: want one line naming %s", msg, tt.wantVar)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
			for _, s := range tt.wantOut {
				if strings.Contains(msg, s) {
					t.Errorf("message %q reveals %q", msg, s)
				}
			}
		})
	}
}

func TestLoadDotEnvEnvironmentWins(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("REDIS_PORT=7002\nREDIS_DB=4\nREDIS_KEY_PREFIX=file:\n# comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dotenv, err := ReadDotenv(path)
	if err != nil {
		t.Fatalf("ReadDotenv() error = %v", err)
	}
	// An empty variable counts as unset, so the file's value applies.
	environment := map[string]string{"REDIS_PORT": "7001", "REDIS_KEY_PREFIX": ""}
	cfg, err := Load(func(name string) string { return environment[name] }, dotenv)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if cfg.Redis.Port != 7001 {
		t.Errorf("Port = %d; want 7001 from the environment, not the file", cfg.Redis.Port)
	}
	if cfg.Redis.DB != 4 {
		t.Errorf("DB = %d; want 4 from the file", cfg.Redis.DB)
	}
	if cfg.Redis.KeyPrefix != "file:" {
		t.Errorf("KeyPrefix = %q; want file: from the file (the environment's is empty)", cfg.Redis.KeyPrefix)
	}
}

// TestDotenvCountsAsSet: a variable from the .env file is as set as one
// from the environment, for the rules that ask whether it was set at all.
func TestDotenvCountsAsSet(t *testing.T) {
	t.Parallel()
	environment := map[string]string{"REDIS_URL": "redis://h:1", "REDIS_PORT": ""}
	getenv := func(name string) string { return environment[name] }
	cfg, err := Load(getenv, map[string]string{"REDIS_HOST": "from-file", "REDIS_DB": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.IgnoredByURL(), ","); got != "REDIS_HOST,REDIS_DB" {
		t.Errorf("IgnoredByURL() = %s; want REDIS_HOST,REDIS_DB (from the file; REDIS_PORT is empty, so unset)", got)
	}
	// Production turns TLS on unless REDIS_TLS was set; false in the file
	// is an explicit choice, refused without REDIS_TLS_ALLOW_PLAINTEXT.
	production := map[string]string{"APP_ENV": "production", "API_TOKENS": testToken}
	_, err = Load(func(name string) string { return production[name] }, map[string]string{"REDIS_TLS": "false"})
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Var != "REDIS_TLS" {
		t.Errorf("production with REDIS_TLS=false in .env: Load() error = %v; want one naming REDIS_TLS", err)
	}
}

func TestReadDotenv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("missing file is empty", func(t *testing.T) {
		vars, err := ReadDotenv(filepath.Join(dir, "nope.env"))
		if err != nil || vars == nil || len(vars) != 0 {
			t.Errorf("ReadDotenv(missing) = %v, %v; want an empty map and no error", vars, err)
		}
	})
	t.Run("unreadable file is an error", func(t *testing.T) {
		// A directory exists but cannot be read as a file.
		if _, err := ReadDotenv(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("ReadDotenv(a directory) error = %v; want one naming the path", err)
		}
	})
}

// TestLoadIgnoresTheProcessEnvironment: Load reads only through getenv and
// the map, and leaves the process environment as it was. It sets process
// variables, so it cannot run in parallel with the others; the parallel
// tests pass whatever the process environment holds.
func TestLoadIgnoresTheProcessEnvironment(t *testing.T) {
	t.Setenv("REDIS_PORT", "abc")  // would fail Load if read
	t.Setenv("APP_ENV", "staging") // would require API_TOKENS if read
	t.Setenv("REDIS_DB", "")
	os.Unsetenv("REDIS_DB")
	none := func(string) string { return "" }
	for _, dotenv := range []map[string]string{nil, {}, {"REDIS_DB": "4"}} {
		cfg, err := Load(none, dotenv)
		if err != nil {
			t.Fatalf("Load(.env %v) error = %v; want the process environment ignored", dotenv, err)
		}
		if cfg.Redis.Port != 6379 || cfg.AppEnv != EnvDevelopment || strconv.Itoa(cfg.Redis.DB) != cmp.Or(dotenv["REDIS_DB"], "0") {
			t.Errorf("Load(.env %v) = port %d, appEnv %s, db %d; want the defaults and the file's values", dotenv, cfg.Redis.Port, cfg.AppEnv, cfg.Redis.DB)
		}
	}
	if v, set := os.LookupEnv("REDIS_DB"); set {
		t.Errorf("after Load, the process has REDIS_DB=%q; want it left unset", v)
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	for url, secrets := range map[string][]string{
		"redis://app:hunter2pw@h:1/3": {"hunter2pw"},
		// The password runs to the last "@": neither half may show, and
		// the host is what follows it.
		"redis://app:hunter@2pw@h:1/3": {"hunter", "2pw"},
	} {
		cfg, err := load(map[string]string{"REDIS_URL": url})
		if err != nil {
			t.Fatalf("Load(REDIS_URL=%s): %v", url, err)
		}
		if cfg.Redis.Addr() != "h:1" || cfg.Redis.Username != "app" || cfg.Redis.Password != strings.Join(secrets, "@") {
			t.Errorf("Load(REDIS_URL=%s) = addr %s, user %q; want h:1 and app, with the password up to the last @", url, cfg.Redis.Addr(), cfg.Redis.Username)
		}
		got := cfg.LogValue().String()
		for _, secret := range secrets {
			if strings.Contains(got, secret) {
				t.Errorf("LogValue() for %s = %s; reveals %q of the password", url, got, secret)
			}
		}
	}
}

// TestEveryVariableDocumented keeps .env.example and the README true to the
// struct: every variable Config reads must be listed in both.
func TestEveryVariableDocumented(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"../.env.example", "../README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for name := range fields() {
			// Whole names only: REDIS_PORT must not count as PORT.
			if !regexp.MustCompile(`(^|[^A-Z_])` + name + `([^A-Z_]|$)`).Match(b) {
				t.Errorf("%s does not mention %s", file, name)
			}
		}
	}
}

// TestEnvExampleIsTheDefaults: copying .env.example to .env must change
// nothing, so its lines stay the true defaults.
func TestEnvExampleIsTheDefaults(t *testing.T) {
	t.Parallel()
	defaults, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	dotenv, err := ReadDotenv("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(dotenv) != len(fields()) {
		t.Errorf(".env.example sets %d variables; want all %d", len(dotenv), len(fields()))
	}
	fromFile, err := Load(func(string) string { return "" }, dotenv)
	if err != nil {
		t.Fatalf("Load(.env.example) error = %v", err)
	}
	if !reflect.DeepEqual(*defaults, *fromFile) {
		t.Errorf("Load(.env.example) = %+v; want the defaults %+v", *fromFile, *defaults)
	}
}

// TestTags keeps the struct tags in the library's terms: a tag it does not
// know (cleanenv's env-default, say) would be ignored without a word, and a
// nested struct it parsed itself would report errors by an ambiguous field
// name.
func TestTags(t *testing.T) {
	t.Parallel()
	var walk func(t *testing.T, typ reflect.Type)
	walk = func(t *testing.T, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			for _, stale := range []string{"env-default", "env-description", "env-separator"} {
				if _, ok := f.Tag.Lookup(stale); ok {
					t.Errorf("%s.%s has a %s tag; the library reads envDefault, envDescription, envSeparator", typ.Name(), f.Name, stale)
				}
			}
			if f.Type.Kind() == reflect.Struct && f.IsExported() {
				if f.Tag.Get("env") != "-" {
					t.Errorf(`%s.%s is a nested struct without env:"-"; Load parses it on its own`, typ.Name(), f.Name)
				}
				walk(t, f.Type)
				continue
			}
			name := varName(f)
			if !f.IsExported() || name == "" {
				if f.IsExported() && f.Tag.Get("env") != "-" {
					t.Errorf(`%s.%s has no variable; tag it env:"-" so the library leaves it alone`, typ.Name(), f.Name)
				}
				continue
			}
			if f.Tag.Get("allowed") == "" || f.Tag.Get("envDescription") == "" {
				t.Errorf("%s (%s.%s) lacks an allowed or envDescription tag", name, typ.Name(), f.Name)
			}
		}
	}
	walk(t, reflect.TypeFor[Config]())
}

func TestProductionTLSRules(t *testing.T) {
	t.Parallel()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // variable named in the error; empty: loads
		wantTLS bool
	}{
		{"production defaults to TLS", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production"}, "", true},
		{"production with TLS explicitly off", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production", "REDIS_TLS": "false"}, "REDIS_TLS", false},
		{"production with a redis:// URL", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production", "REDIS_URL": "redis://h:1"}, "REDIS_URL", false},
		{"production plaintext allowed", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production", "REDIS_TLS": "false", "REDIS_TLS_ALLOW_PLAINTEXT": "true"}, "", false},
		{"production with rediss://", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production", "REDIS_URL": "rediss://h:1"}, "", true},
		{"production skip-verify", map[string]string{"API_TOKENS": testToken, "APP_ENV": "production", "REDIS_TLS_INSECURE_SKIP_VERIFY": "true"}, "REDIS_TLS_INSECURE_SKIP_VERIFY", true},
		{"staging skip-verify allowed", map[string]string{"API_TOKENS": testToken, "APP_ENV": "staging", "REDIS_TLS": "true", "REDIS_TLS_INSECURE_SKIP_VERIFY": "true"}, "", true},
		{"development defaults to plaintext", nil, "", false},
		{"CA file without TLS", map[string]string{"REDIS_TLS_CA_FILE": caFile}, "REDIS_TLS_CA_FILE", false},
		{"CA file missing", map[string]string{"REDIS_TLS": "true", "REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"}, "REDIS_TLS_CA_FILE", true},
		{"cert without key", map[string]string{"REDIS_TLS": "true", "REDIS_TLS_CERT_FILE": caFile}, "REDIS_TLS_KEY_FILE", true},
		{"CA file with TLS", map[string]string{"REDIS_TLS": "true", "REDIS_TLS_CA_FILE": caFile}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := loadExpecting(t, tt.env, tt.wantErr)
			if cfg == nil {
				return
			}
			if cfg.Redis.TLS != tt.wantTLS {
				t.Errorf("Redis.TLS = %v; want %v", cfg.Redis.TLS, tt.wantTLS)
			}
		})
	}
}

func TestTopology(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		wantMode string
		wantErr  string
	}{
		{"standalone", nil, "standalone", ""},
		{"sentinel", map[string]string{"REDIS_SENTINEL_ADDRS": "10.0.0.1:26379, 10.0.0.2:26379", "REDIS_SENTINEL_MASTER": "mymaster"}, "sentinel", ""},
		{"sentinel without master", map[string]string{"REDIS_SENTINEL_ADDRS": "10.0.0.1:26379"}, "", "REDIS_SENTINEL_MASTER"},
		{"master without sentinels", map[string]string{"REDIS_SENTINEL_MASTER": "mymaster"}, "", "REDIS_SENTINEL_ADDRS"},
		{"bad sentinel address", map[string]string{"REDIS_SENTINEL_ADDRS": "10.0.0.1", "REDIS_SENTINEL_MASTER": "m"}, "", "REDIS_SENTINEL_ADDRS"},
		{"cluster", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000,b:7001"}, "cluster", ""},
		{"cluster from URL", map[string]string{"REDIS_URL": "redis://a:7000?addr=b:7001&addr=c:7002"}, "cluster", ""},
		{"cluster with db", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_DB": "2"}, "", "REDIS_DB"},
		{"cluster and sentinel", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m"}, "", "REDIS_CLUSTER_ADDRS"},
		{"sentinel TLS value", map[string]string{"REDIS_SENTINEL_ADDRS": "s:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_TLS": "maybe"}, "", "REDIS_SENTINEL_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := loadExpecting(t, tt.env, tt.wantErr)
			if cfg == nil {
				return
			}
			if cfg.Redis.Mode != tt.wantMode {
				t.Errorf("Mode = %q; want %q", cfg.Redis.Mode, tt.wantMode)
			}
		})
	}
	// The memory fallback is off with a cluster: the development default
	// becomes none, and asking for it is refused.
	for _, tt := range []struct {
		env     map[string]string
		want    string
		wantErr string
	}{
		{map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000"}, "none", ""},
		{map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "CACHE_FALLBACK": "none"}, "none", ""},
		{map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "CACHE_FALLBACK": "memory"}, "", "CACHE_FALLBACK"},
		{map[string]string{"REDIS_URL": "redis://a:7000?addr=b:7001", "CACHE_FALLBACK": "memory"}, "", "CACHE_FALLBACK"},
		{map[string]string{}, "memory", ""},
	} {
		cfg, _ := loadExpecting(t, tt.env, tt.wantErr)
		if cfg != nil && cfg.Cache.Fallback != tt.want {
			t.Errorf("Load(%v).Cache.Fallback = %q; want %q", tt.env, cfg.Cache.Fallback, tt.want)
		}
	}
	cfg, err := load(map[string]string{"REDIS_URL": "redis://a:7000?addr=b:7001"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Redis.ClusterAddrs, ","); got != "a:7000,b:7001" {
		t.Errorf("ClusterAddrs from URL = %s; want a:7000,b:7001", got)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# ops tokens\nbackup:read:fedcba9876543210fedc\n\nadmin:write:AAAAbbbbCCCCdddd1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantNames string
		wantErr   string // variable named; empty: loads
		secret    string // must not appear in the error
	}{
		{"none in development", nil, "", "", ""},
		{"list", map[string]string{"API_TOKENS": "erp:write:s3cr3t-t0ken-abcdef, reports:read:r3p0rts-t0ken-xyz1"}, "erp,reports", "", ""},
		{"file and list", map[string]string{"API_TOKENS": "erp:write:s3cr3t-t0ken-abcdef", "API_TOKENS_FILE": file}, "erp,backup,admin", "", ""},
		{"token with colons", map[string]string{"API_TOKENS": "erp:read:abc:def:ghi:jkl:mnop"}, "erp", "", ""},
		{"none in production", map[string]string{"APP_ENV": "production"}, "", "API_TOKENS", ""},
		{"bad scope", map[string]string{"API_TOKENS": "erp:admin:s3cr3t-t0ken-abcdef"}, "", "API_TOKENS", "s3cr3t-t0ken-abcdef"},
		{"short token", map[string]string{"API_TOKENS": "erp:read:short"}, "", "API_TOKENS", "short"},
		{"missing part", map[string]string{"API_TOKENS": "erp-s3cr3t-t0ken-abcdef"}, "", "API_TOKENS", "s3cr3t-t0ken-abcdef"},
		{"bad name", map[string]string{"API_TOKENS": "e r p:read:s3cr3t-t0ken-abcdef"}, "", "API_TOKENS", "s3cr3t-t0ken-abcdef"},
		{"duplicate name", map[string]string{"API_TOKENS": "erp:read:s3cr3t-t0ken-abcdef,erp:write:0th3r-t0ken-abcdefg"}, "", "API_TOKENS", "s3cr3t-t0ken-abcdef"},
		{"duplicate value", map[string]string{"API_TOKENS": "a:read:s3cr3t-t0ken-abcdef,b:write:s3cr3t-t0ken-abcdef"}, "", "API_TOKENS", "s3cr3t-t0ken-abcdef"},
		{"missing file", map[string]string{"API_TOKENS_FILE": filepath.Join(dir, "nope")}, "", "API_TOKENS_FILE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadExpecting(t, tt.env, tt.wantErr)
			if cfg == nil {
				if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q reveals the token", err)
				}
				return
			}
			var names []string
			for _, tok := range cfg.Tokens {
				names = append(names, tok.Name)
			}
			if got := strings.Join(names, ","); got != tt.wantNames {
				t.Errorf("token names = %q; want %q", got, tt.wantNames)
			}
			if v := cfg.LogValue().String(); strings.Contains(v, "s3cr3t") || strings.Contains(v, "fedcba") {
				t.Errorf("LogValue() = %s; reveals a token", v)
			}
		})
	}
}

func TestListenHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "127.0.0.1"},
		{map[string]string{"HOST": "0.0.0.0"}, "0.0.0.0"},
		{map[string]string{"HOST": "::"}, "::"},
		{map[string]string{"HOST": "cache.internal"}, "cache.internal"},
		{map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken}, ""},
		{map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "HOST": "10.0.0.7"}, "10.0.0.7"},
	}
	for _, tt := range tests {
		cfg, err := load(tt.env)
		if err != nil {
			t.Fatalf("Load(%v) error = %v", tt.env, err)
		}
		if cfg.ListenHost != tt.want {
			t.Errorf("Load(%v).ListenHost = %q; want %q", tt.env, cfg.ListenHost, tt.want)
		}
	}
}

func TestAPIDefaultsByEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env                             map[string]string
		introspection, playground, hint bool
		origins                         string
	}{
		{map[string]string{}, true, true, true, "*"},
		{map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken}, false, false, true, ""},
		{map[string]string{"APP_ENV": "production", "API_TOKENS": testToken}, false, false, false, ""},
		{map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "GRAPHQL_INTROSPECTION": "true", "CORS_ALLOWED_ORIGINS": "https://erp.example.com"}, true, false, false, "https://erp.example.com"},
	}
	for _, tt := range tests {
		cfg, err := load(tt.env)
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if cfg.Introspection != tt.introspection || cfg.Playground != tt.playground || cfg.FieldSuggestions != tt.hint || strings.Join(cfg.AllowedOrigins, ",") != tt.origins {
			t.Errorf("%v: introspection %v playground %v suggestions %v origins %q", tt.env, cfg.Introspection, cfg.Playground, cfg.FieldSuggestions, cfg.AllowedOrigins)
		}
	}
	for _, bad := range []string{"erp.example.com", "https://erp.example.com/path", "ftp://x"} {
		if _, err := load(map[string]string{"CORS_ALLOWED_ORIGINS": bad}); err == nil {
			t.Errorf("CORS_ALLOWED_ORIGINS=%q loaded; want it refused", bad)
		}
	}
	if _, err := load(map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "CORS_ALLOWED_ORIGINS": "*"}); err == nil {
		t.Error("CORS_ALLOWED_ORIGINS=* loaded in production; want it refused")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	const tokens = "erp:write:0123456789abcdef,reporting:read:fedcba9876543210,etl:write:aaaabbbbccccdddd"
	tests := []struct {
		name      string
		env       map[string]string
		tokens    string // name=limit, sorted
		anonymous string
	}{
		{"defaults: tokens unlimited", map[string]string{"API_TOKENS": tokens}, "erp=off,etl=off,reporting=off", "1000/2000"},
		{"a rate for every token, burst twice it", map[string]string{"API_TOKENS": tokens, "RATE_LIMIT_RPS": "100"}, "erp=100/200,etl=100/200,reporting=100/200", "1000/2000"},
		{"rate and burst", map[string]string{"API_TOKENS": tokens, "RATE_LIMIT_RPS": "0.5", "RATE_LIMIT_BURST": "3"}, "erp=0.5/3,etl=0.5/3,reporting=0.5/3", "1000/2000"},
		{"small rate, burst at least one", map[string]string{"API_TOKENS": tokens, "RATE_LIMIT_RPS": "0.2"}, "erp=0.2/1,etl=0.2/1,reporting=0.2/1", "1000/2000"},
		{"by name, others unlimited", map[string]string{"API_TOKENS": tokens, "RATE_LIMIT_TOKENS": " reporting=200/400, etl=50 "}, "erp=off,etl=50/100,reporting=200/400", "1000/2000"},
		{"by name beside a default, one exempt", map[string]string{"API_TOKENS": tokens, "RATE_LIMIT_RPS": "10", "RATE_LIMIT_TOKENS": "erp=0,etl=50/100"}, "erp=off,etl=50/100,reporting=10/20", "1000/2000"},
		{"anonymous off", map[string]string{"RATE_LIMIT_ANONYMOUS": "0"}, "", "off"},
		{"anonymous rate only", map[string]string{"RATE_LIMIT_ANONYMOUS": "5"}, "", "5/10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := loadExpecting(t, tt.env, "")
			if got := rateLimitsByName(cfg.TokenRateLimits); got != tt.tokens {
				t.Errorf("TokenRateLimits = %s; want %s", got, tt.tokens)
			}
			if got := cfg.AnonymousRateLimit.String(); got != tt.anonymous {
				t.Errorf("AnonymousRateLimit = %s; want %s", got, tt.anonymous)
			}
		})
	}
}
