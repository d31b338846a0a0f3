package playground

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// binary is the service, built once for the tests that open the playground
// as a developer does: the real executable with its default development
// settings, limits included, not a handler assembled for the test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "playground-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cache-service")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/school-erp/cache-service").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// service is the built binary running against a redis-server of the
// test's own.
type service struct {
	URL   string
	redis *redistest.Server
}

// listening finds the port in the service's "listening" log line.
var listening = regexp.MustCompile(`msg=listening addr=\S*:(\d+)`)

// startService runs the binary in development with nothing set but where
// Redis is (and PORT=0), in an empty directory so no .env is read, and
// returns once Redis is connected.
func startService(t *testing.T) *service {
	t.Helper()
	redis := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(redis.Addr, ":")
	cmd := exec.Command(binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "REDIS_HOST=" + host, "REDIS_PORT=" + port, "PORT=0"}
	cmd.Dir = t.TempDir()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	s := &service{redis: redis}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil && s.URL == "" {
			s.URL = "http://127.0.0.1:" + m[1]
		}
		if s.URL != "" && redisConnected(s.URL) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not listening with Redis connected after 10s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisConnected reports whether the service says Redis is connected, so
// that writes go to Redis rather than to the development fallback tier.
func redisConnected(base string) bool {
	resp, err := http.Get(base + "/health/redis")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		Data struct{ Status string } `json:"data"`
	}
	return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Data.Status == "connected"
}

// setRaw stores value (JSON text) at key in Redis, under the service's
// default prefix.
func (s *service) setRaw(t *testing.T, key, value string) {
	t.Helper()
	if _, err := s.redis.Do(t, "SET", "school-erp:"+key, value); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

// graphQLResponse is the part of a GraphQL response the tests read.
type graphQLResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// postGraphQL runs one operation of document against the endpoint.
func postGraphQL(t *testing.T, endpoint, document, operationName string) graphQLResponse {
	t.Helper()
	body, err := json.Marshal(map[string]string{"query": document, "operationName": operationName})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var out graphQLResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("operation %s: status %d, response is not JSON: %v\n%s", operationName, resp.StatusCode, err, raw)
	}
	return out
}

// syncBuffer is the process's output, written by its pipes' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
