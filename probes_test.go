package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
	"github.com/school-erp/cache-service/internal/testcert"
)

func status(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type") + " " + b.String()
}

func TestLivezAndReadyz(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{}) // absent at first
	env := testEnv(srv.Addr)
	env["SHUTDOWN_DRAIN_DELAY"] = "500ms"
	svc := startService(t, env)
	if code, _ := status(t, svc.url+"/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d; want 200 always", code)
	}
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, body := status(t, svc.url+"/readyz")
		if code == http.StatusOK {
			break // the first attempt failed; without REDIS_REQUIRED it is ready
		}
		if !strings.Contains(body, "starting") || time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s; want 503 starting, then 200", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.stop() }()
	deadline = time.Now().Add(2 * time.Second)
	for {
		code, body := status(t, svc.url+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "shutting_down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while draining = %d %s; want 503 shutting_down", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := status(t, svc.url+"/livez"); code != http.StatusOK {
		t.Errorf("/livez while draining = %d; want 200 (alive)", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestReadyzWithRedisRequired(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	env := testEnv(srv.Addr)
	env["REDIS_REQUIRED"] = "true"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	time.Sleep(50 * time.Millisecond)
	if code, body := status(t, svc.url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with REDIS_REQUIRED and Redis down = %d %s; want 503", code, body)
	}
	srv.Start()
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	if code, body := status(t, svc.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with Redis up = %d %s; want 200", code, body)
	}
}

func TestHealthJSONDraftFormat(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, testEnv(srv.Addr))
	svc.waitRedisStatus(t, "connected", 5*time.Second)
	decode := func() (int, string, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, svc.url+"/health", nil)
		req.Header.Set("Accept", "application/health+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}
	code, ct, body := decode()
	checks, _ := body["checks"].(map[string]any)
	redis, _ := checks["redis:responseTime"].([]any)
	if code != 200 || ct != "application/health+json" || body["status"] != "pass" || len(redis) != 1 {
		t.Fatalf("/health as health+json = %d %s %v", code, ct, body)
	}
	if c := redis[0].(map[string]any); c["status"] != "pass" || c["observedUnit"] != "ms" || c["observedValue"] == nil {
		t.Errorf("redis check = %v; want pass with observedValue in ms", c)
	}
	// The default format is unchanged.
	if code, body := status(t, svc.url+"/health"); code != 200 || !strings.HasPrefix(body, "application/json") || !strings.Contains(body, `"success":true`) {
		t.Errorf("/health default = %d %s", code, body)
	}
	srv.Kill()
	svc.waitRedisStatus(t, "disconnected", 2*time.Second)
	if code, _, body := decode(); code != 200 || body["status"] != "warn" {
		t.Errorf("health+json with Redis down = %d %v; want 200 warn", code, body["status"])
	}
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "check")
	pair := ca.Server("redis", testcert.CertOptions{})
	tlsSrv := redistest.Start(t, redistest.Options{Password: "check-secret-pw", TLS: &redistest.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: ca.CertFile}})
	plain := redistest.Start(t, redistest.Options{})
	readOnly := redistest.Start(t, redistest.Options{Config: []string{"user default off", "user viewer on >viewer-secret-pw ~* +@read +ping +hello +client|setname +client|info +info"}})
	rhost, rport, _ := strings.Cut(readOnly.Addr, ":")
	host, port, _ := strings.Cut(tlsSrv.Addr, ":")
	phost, pport, _ := strings.Cut(plain.Addr, ":")
	tests := []struct {
		name     string
		env      map[string]string
		wantExit int
		want     []string
	}{
		{"good TLS configuration", map[string]string{
			"REDIS_HOST": host, "REDIS_PORT": port, "REDIS_PASSWORD": "check-secret-pw",
			"REDIS_TLS": "true", "REDIS_TLS_CA_FILE": ca.CertFile,
		}, 0, []string{"redis check passed", "status=connected", "mode=standalone", "resp=3", "clientCache=on", "tls=true", "tlsVersion=\"TLS 1.3\"", "config.redis.password=true"}},
		{"good plain configuration", map[string]string{"REDIS_HOST": phost, "REDIS_PORT": pport}, 0, []string{"redis check passed", "tls=false"}},
		{"bad value", map[string]string{"REDIS_PORT": "abc"}, 1, []string{`invalid REDIS_PORT="abc"`}},
		{"unreachable redis", map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1"}, 1, []string{"redis check failed", "connection refused"}},
		{"user that may not write", map[string]string{"REDIS_HOST": rhost, "REDIS_PORT": rport, "REDIS_USERNAME": "viewer", "REDIS_PASSWORD": "viewer-secret-pw"}, 1, []string{"redis check failed", "write a test key"}},
		{"wrong password", map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "REDIS_PASSWORD": "wrong-secret-pw", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": ca.CertFile}, 1, []string{"authentication failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, "--check-config")
			cmd.Env, cmd.Dir = envList(tt.env), t.TempDir()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			exit := 0
			if ee, ok := err.(*exec.ExitError); ok {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tt.wantExit {
				t.Errorf("exit %d; want %d\n%s", exit, tt.wantExit, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "secret-pw") {
				t.Errorf("output reveals a password:\n%s", out.String())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("--check-config took %s", d)
			}
		})
	}
}
