package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// binary is the service built once for the tests that run it as operators
// do: one executable, configured by its environment only. It is stamped
// with testVersion, as make build stamps a release's.
var binary string

const testVersion = "0.0.0-binary-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cache-service-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cache-service")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is the built binary running with a given environment.
type process struct {
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	exit   chan error
	// bearer is sent with GraphQL requests when the process has tokens.
	bearer string
}

// baseEnv keeps only what a process needs from the test's environment
// (PATH and HOME), so nothing the shell set reaches the service.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

func envList(env map[string]string) []string {
	out := baseEnv()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// startBinary runs the binary in an empty directory (so no .env is read)
// on a port it picks itself (PORT=0: no other test can take the port
// between our choice and its bind), and waits until it listens.
func startBinary(t testing.TB, env map[string]string) *process {
	t.Helper()
	return startBinaryIn(t, t.TempDir(), env)
}

// startBinaryIn is startBinary in dir, for tests that give it a .env file.
func startBinaryIn(t testing.TB, dir string, env map[string]string) *process {
	t.Helper()
	env["PORT"] = "0"
	p := &process{
		cmd:    exec.Command(binary),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exit:   make(chan error, 1),
	}
	p.cmd.Env = envList(env)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exit
	})
	p.url = "http://127.0.0.1:" + waitListening(t, p.stdout, p.stderr)
	if env["API_TOKENS"] == testToken {
		p.bearer = testTokenValue
	}
	return p
}

// listeningLine finds the port in the "listening" log line, text or JSON.
var listeningLine = regexp.MustCompile(`msg=listening addr=\S*:(\d+)|"msg":"listening","addr":"[^"]*:(\d+)"`)

// waitListening waits up to 5s for the service's "listening" line in
// stdout and returns its port.
func waitListening(t testing.TB, stdout, stderr *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(stdout.String()); m != nil {
			return m[1] + m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("binary not listening after 5s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *process) set(t *testing.T, key string, value any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": setQuery, "variables": map[string]any{"k": key, "v": value}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, p.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if p.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+p.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r gqlResponse
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		var sp setPayload
		_ = json.Unmarshal(r.Data["cacheSet"], &sp)
		// In development the memory fallback stores while Redis is still
		// connecting; these tests want the value in Redis.
		if sp.Stored && sp.Backend != nil && *sp.Backend == "REDIS" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cacheSet(%q) never stored: %+v\n%s", key, r, p.stdout)
		}
		time.Sleep(20 * time.Millisecond) // still connecting
	}
}

func TestAC5SameBinaryPointedElsewhereByEnvOnly(t *testing.T) {
	t.Parallel()
	local := redistest.Start(t, redistest.Options{})
	cloud := redistest.Start(t, redistest.Options{Password: "cloud-pw"})
	host, port, _ := strings.Cut(local.Addr, ":")

	t.Run("discrete variables", func(t *testing.T) {
		p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port})
		p.set(t, "where", "local")
		if v, err := local.Do(t, "GET", "school-erp:where"); err != nil || v != `"local"` {
			t.Errorf("local GET school-erp:where = %q, %v; want \"local\"", v, err)
		}
	})

	t.Run("REDIS_URL with password and db", func(t *testing.T) {
		// The .env file still points at the local server: the URL, from
		// the environment, must win.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("REDIS_HOST="+host+"\nREDIS_PORT="+port+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startBinaryIn(t, dir, map[string]string{"REDIS_URL": "redis://:cloud-pw@" + cloud.Addr + "/3"})
		p.set(t, "where", "cloud")
		c := cloud.Client(t, 3)
		ctx := t.Context()
		if v, err := c.Do(ctx, c.B().Get().Key("school-erp:where").Build()).ToString(); err != nil || v != `"cloud"` {
			t.Errorf("cloud db 3 GET school-erp:where = %q, %v; want \"cloud\"", v, err)
		}
		if v, err := local.Do(t, "GET", "school-erp:where"); err != nil || v != `"local"` {
			t.Errorf("local value changed to %q, %v; the URL must have replaced the discrete variables", v, err)
		}
		if !strings.Contains(p.stdout.String(), "REDIS_URL from the environment replaces these variables from the .env file") {
			t.Error("no warning that the file's REDIS_HOST/REDIS_PORT were ignored")
		}
		if strings.Contains(p.stdout.String(), "cloud-pw") {
			t.Error("log reveals the password in REDIS_URL")
		}
	})
}

func TestInvalidConfigurationStopsWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		secrets []string
	}{
		{"port", map[string]string{"REDIS_PORT": "abc"}, `invalid REDIS_PORT="abc": want an integer from 1 to 65535`, nil},
		{"db", map[string]string{"REDIS_DB": "-1"}, `invalid REDIS_DB="-1": want an integer of 0 or more`, nil},
		{"app env", map[string]string{"APP_ENV": "prod"}, `invalid APP_ENV="prod": want one of development, staging, production`, nil},
		{"url", map[string]string{"REDIS_URL": "http://admin:topsecret@h"}, `invalid REDIS_URL="http://xxxxx@h"`, []string{"topsecret"}},
		{"url beside a port", map[string]string{"REDIS_URL": "redis://:topsecret@h:6380", "REDIS_PORT": "6379"}, `invalid REDIS_PORT="6379": want REDIS_PORT unset beside REDIS_URL`, []string{"topsecret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary)
			cmd.Env = envList(tt.env)
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exitErr, ok := err.(*exec.ExitError)
			if !ok || exitErr.ExitCode() == 0 {
				t.Fatalf("exit = %v; want a non-zero exit status", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q; want one line containing %q", stderr.String(), tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(stderr.String()+stdout.String(), s) {
					t.Errorf("output reveals %q", s)
				}
			}
		})
	}
}

func TestDotEnvFileIsReadAndEnvironmentWins(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	dir := t.TempDir()
	// The file points at the test server but with a wrong prefix and port;
	// the environment corrects the port, the file supplies the rest.
	dotenv := fmt.Sprintf("REDIS_HOST=%s\nREDIS_PORT=1\nREDIS_KEY_PREFIX=from-file:\n", host)
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary)
	cmd.Dir = dir
	cmd.Env = envList(map[string]string{"REDIS_PORT": port, "PORT": "0"})
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	p := &process{url: "http://127.0.0.1:" + waitListening(t, out, out), stdout: out}
	p.set(t, "k", 1)
	if v, err := srv.Do(t, "GET", "from-file:k"); err != nil || v != "1" {
		t.Errorf("GET from-file:k = %q, %v; want 1 (prefix from .env, port from the environment)", v, err)
	}
}

func TestHungRedisDoesNotDelayStart(t *testing.T) {
	t.Parallel()
	addr := redistest.BlackHole(t)
	host, port, _ := strings.Cut(addr, ":")
	// With a 10 s dial timeout, a start that waited on Redis would take 10 s;
	// startBinary gives up after 5.
	p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "REDIS_DIAL_TIMEOUT": "10s"})
	resp, err := http.Get(p.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health with a hung Redis = %d; want 200", resp.StatusCode)
	}
}

func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		p.exit <- err // for the cleanup
		if err != nil {
			t.Errorf("exit after SIGTERM = %v; want status 0\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
	if !strings.Contains(p.stdout.String(), "msg=stopped") {
		t.Errorf("no 'stopped' line in the log:\n%s", p.stdout)
	}
}

func TestProductionRefusesUnsafeTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"TLS off", map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "REDIS_TLS": "false"}, "REDIS_TLS_ALLOW_PLAINTEXT=true"},
		{"plaintext URL", map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "REDIS_URL": "redis://:pw@h:6379"}, "REDIS_TLS_ALLOW_PLAINTEXT=true"},
		{"skip verify", map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "REDIS_TLS_INSECURE_SKIP_VERIFY": "true"}, "REDIS_TLS_INSECURE_SKIP_VERIFY"},
		{"no API tokens", map[string]string{"APP_ENV": "production"}, "API_TOKENS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary)
			cmd.Env, cmd.Dir = envList(tt.env), t.TempDir()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() == 0 {
				t.Fatalf("exit = %v; want refusal with a non-zero status", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q; want one line mentioning %s", stderr.String(), tt.want)
			}
		})
	}
}

// TestNamedEnvFileMustExist: the default .env is optional, but a file
// named with -env-file is what the operator meant to run with; a typo in
// its name must stop the service, not start it on defaults.
func TestNamedEnvFileMustExist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "prod.env")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, args := range [][]string{{"-env-file", missing}, {"-env-file=" + missing}, {"--env-file", missing}} {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env, cmd.Dir = envList(map[string]string{"PORT": "0", "REDIS_PORT": "1"}), dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 1 {
			t.Errorf("cache-service %v = %v; want exit status 1", args, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], missing) {
			t.Errorf("cache-service %v: stderr = %q; want one line naming %s", args, stderr.String(), missing)
		}
	}
}
