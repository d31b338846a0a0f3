package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/config"
)

const (
	systemdUnit    = "deploy/systemd/cache-service.service"
	systemdEnvFile = "deploy/systemd/cache-service.env"
)

// unit is a systemd unit file: section -> key -> every value given, in
// order (a key may repeat, and an empty assignment resets the list).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" || strings.HasSuffix(line, "\\") {
			t.Fatalf("%s:%d: %q is not key=value in a section (continued lines are not expected)", path, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		u[section][key] = append(u[section][key], value)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is a key's effective value: the last one given.
func (u unit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// TestSystemdUnitIsHardened checks deploy/systemd against the service: it
// starts the binary this repository builds with the example environment
// file, that file loads, the sandbox settings that matter are there, and
// the stop timeout outlasts the drain and the shutdown.
func TestSystemdUnitIsHardened(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, systemdUnit)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("%s lacks a [Unit], [Service] or [Install] section", systemdUnit)
	}

	execStart, _ := u.last("Service", "ExecStart")
	args := strings.Fields(execStart)
	if len(args) == 0 || filepath.Base(args[0]) != "cache-service" || !filepath.IsAbs(args[0]) {
		t.Errorf("ExecStart = %q; want the cache-service binary by its absolute path", execStart)
	}
	if !strings.Contains(execStart, " -env-file=") {
		t.Errorf("ExecStart = %q; want -env-file= so that no .env in the working directory is read", execStart)
	}
	envFile, ok := u.last("Service", "EnvironmentFile")
	if !ok || !filepath.IsAbs(strings.TrimPrefix(envFile, "-")) {
		t.Errorf("EnvironmentFile = %q; want the configuration from an absolute path", envFile)
	}
	if strings.HasPrefix(envFile, "-") {
		t.Errorf("EnvironmentFile = %q: a missing file would start the service on defaults", envFile)
	}
	b, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	if install := "install -m 0600 " + systemdEnvFile + " " + envFile; !strings.Contains(string(b), install) {
		t.Errorf("the unit's install notes do not put %s at its EnvironmentFile: want %q", systemdEnvFile, install)
	}

	want := map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"DynamicUser":             "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"SystemCallArchitectures": "native",
		"Restart":                 "on-failure",
	}
	for key, value := range want {
		if got, ok := u.last("Service", key); !ok || got != value {
			t.Errorf("%s=%q (set: %v); want %s=%s", key, got, ok, key, value)
		}
	}
	if user, ok := u.last("Service", "User"); ok && (user == "root" || user == "0") {
		t.Errorf("User=%s; want the dynamic user", user)
	}
	if filters := svc["SystemCallFilter"]; len(filters) == 0 || filters[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %v; want @system-service first", filters)
	}
	if families, _ := u.last("Service", "RestrictAddressFamilies"); families == "" || strings.Contains(families, "AF_PACKET") || strings.Contains(families, "AF_NETLINK") {
		t.Errorf("RestrictAddressFamilies = %q; want IP (and Unix) sockets only", families)
	}

	// The example environment file is what an operator starts from: as
	// shipped, its placeholder token is refused (it must not go live);
	// with a real one it loads, as production, on every interface.
	dotenv, err := config.ReadDotenv(systemdEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	var cerr *config.Error
	if _, err := config.Load(func(string) string { return "" }, dotenv); !errors.As(err, &cerr) || cerr.Var != "API_TOKENS" {
		t.Errorf("%s as shipped: Load() = %v; want its placeholder API_TOKENS refused", systemdEnvFile, err)
	}
	dotenv["API_TOKENS"] = "erp-backend:write:0123456789abcdef0123456789abcdef"
	cfg, err := config.Load(func(string) string { return "" }, dotenv)
	if err != nil {
		t.Fatalf("%s with a real token does not load: %v", systemdEnvFile, err)
	}
	if cfg.AppEnv != config.EnvProduction || cfg.ListenHost != "" {
		t.Errorf("%s: APP_ENV %s, listening on %q; want production on every interface", systemdEnvFile, cfg.AppEnv, cfg.ListenHost)
	}
	if sig, ok := u.last("Service", "KillSignal"); ok && sig != "SIGTERM" && sig != "SIGINT" {
		t.Errorf("KillSignal=%s; the service drains and shuts down on SIGTERM or SIGINT", sig)
	}
	stop, _ := u.last("Service", "TimeoutStopSec")
	d, err := time.ParseDuration(stop)
	if need := cfg.ShutdownDrainDelay + cfg.ShutdownTimeout + 2*time.Second; err != nil || d <= need {
		t.Errorf("TimeoutStopSec=%q; want above SHUTDOWN_DRAIN_DELAY + SHUTDOWN_TIMEOUT + 2s = %s, or systemd kills the shutdown", stop, need)
	}
}

// TestSystemdAnalyze runs systemd's own checks on the unit, pointed at the
// binary the tests built (verify wants the executable to exist): verify
// must say nothing, and security must rate the sandbox's exposure at 2.0
// or below.
func TestSystemdAnalyze(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd): the unit was checked by TestSystemdUnitIsHardened only")
	}
	dir := t.TempDir()
	unitText, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "cache-service.env")
	envText, err := os.ReadFile(systemdEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envFile, envText, 0o600); err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^ExecStart=\S+`).ReplaceAllString(string(unitText), "ExecStart="+binary)
	text = regexp.MustCompile(`(?m)^EnvironmentFile=\S+`).ReplaceAllString(text, "EnvironmentFile="+envFile)
	unitFile := filepath.Join(dir, "cache-service.service")
	if err := os.WriteFile(unitFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(analyze, "verify", unitFile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// verify exits 0 on an unknown key or a value it cannot parse: it
	// only warns, so anything it says is a failure.
	if err := cmd.Run(); err != nil || stdout.Len()+stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s%s", systemdUnit, err, stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	cmd = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unitFile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	overall := regexp.MustCompile(`Overall exposure level for \S+: [0-9.]+ \S+`).FindString(stdout.String())
	if err != nil || overall == "" {
		t.Errorf("systemd-analyze security --offline=yes --threshold=20 (exposure 2.0 at most): %v, %q\n%s%s", err, overall, stdout.String(), stderr.String())
	}
	t.Log("systemd-analyze security:", overall)
}
