package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/faultproxy"
	"github.com/school-erp/cache-service/internal/redistest"
)

// TestListenErrorLeavesNoListener: when run fails after it has opened PORT
// (here METRICS_PORT is taken), it closes PORT before it returns.
func TestListenErrorLeavesNoListener(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		env := testEnv("127.0.0.1:1") // Redis need not exist
		env["PORT"] = itoa(port)
		env["METRICS_PORT"] = itoa(taken.Addr().(*net.TCPAddr).Port)
		err := run(t.Context(), []string{"-env-file", ""}, func(name string) string { return env[name] }, io.Discard, io.Discard)
		if err != nil && strings.Contains(err.Error(), "listen on port") && attempt < 3 {
			continue // another process took the free PORT first
		}
		if err == nil || !strings.Contains(err.Error(), "METRICS_PORT") {
			t.Fatalf("run() with METRICS_PORT taken = %v; want an error naming METRICS_PORT", err)
		}
		l, err := net.Listen("tcp", ":"+itoa(port))
		if err != nil {
			t.Fatalf("PORT %d is still taken after run() returned: %v", port, err)
		}
		l.Close()
		return
	}
}

// freePort is a port free on every address a moment ago (the service
// listens on all of them).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestShutdownTimeoutCancelsHandlersBeforeClosingTheCache: a request still
// waiting on Redis at SHUTDOWN_TIMEOUT has its context cancelled, answers
// (NO_REPLY: the caller gave up, said while the connection is still open),
// and returns before the cache client is closed.
func TestShutdownTimeoutCancelsHandlersBeforeClosingTheCache(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	proxy := faultproxy.Start(t, srv.Addr)
	env := testEnv(proxy.Addr)
	// Only the shutdown may end the request in time: its own deadline is
	// past the drain, the timeout and cancelGrace. (Not much further:
	// cache.Client.Close waits for a probe hung in the black hole, and the
	// probe's deadline is REDIS_DIAL_TIMEOUT + REDIS_COMMAND_TIMEOUT.)
	env["REDIS_COMMAND_TIMEOUT"] = "3s"
	env["GRAPHQL_REQUEST_TIMEOUT"] = "3s"
	env["REDIS_DEGRADED_LATENCY"] = "2s"
	// The drain keeps the listener open, so the request is surely being
	// served when the timeout starts.
	env["SHUTDOWN_DRAIN_DELAY"] = "300ms"
	env["SHUTDOWN_TIMEOUT"] = "300ms"
	svc := startService(t, env)
	svc.waitRedisStatus(t, "connected", 5*time.Second)

	proxy.BlackHole(true) // Redis stops answering; the read below hangs
	written := make(chan struct{})
	answer := make(chan string, 1)
	go func() {
		body, _ := json.Marshal(map[string]any{"query": getQuery, "variables": map[string]any{"k": "hangs"}})
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(written) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodPost, svc.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answer <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	select {
	case <-written:
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not sent within 5s")
	}
	if err := svc.stop(); err != nil {
		t.Fatalf("run() = %v; want nil", err)
	}

	got := <-answer
	var r gqlResponse
	if code, raw, _ := strings.Cut(got, " "); code != "200" || json.Unmarshal([]byte(raw), &r) != nil ||
		string(r.Data["cacheGet"]) != "null" || len(r.Extensions.Warnings) != 1 || r.Extensions.Warnings[0].Code != "NO_REPLY" {
		t.Errorf("request in flight at SHUTDOWN_TIMEOUT got %s; want 200, cacheGet null with a NO_REPLY warning (its context cancelled, its answer still sent)", got)
	}
	var cancelled, stopped logLine
	for _, l := range svc.logs.lines(t) {
		switch l["msg"] {
		case "in-flight requests did not finish within SHUTDOWN_TIMEOUT; cancelling them":
			cancelled = l
		case "stopped":
			stopped = l
		case "requests still running after cancellation; closing their connections and the cache under them":
			t.Errorf("log: %v; want the cancelled handler to have returned", l)
		}
	}
	if cancelled == nil || cancelled["requests"] != float64(1) {
		t.Errorf("cancellation line = %v; want one naming 1 request", cancelled)
	}
	// requestsCut counts the handlers still running when the cache client
	// was closed.
	if stopped == nil || stopped["requestsCut"] != float64(0) {
		t.Errorf("stopped line = %v; want requestsCut 0\n%s", stopped, svc.logs)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM or SIGINT during the drain
// ends the built binary at once, with 128 + the signal's number and a line
// on stderr, rather than after SHUTDOWN_DRAIN_DELAY.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	for _, tt := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			t.Parallel()
			const drain = 5 * time.Second
			p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "SHUTDOWN_DRAIN_DELAY": drain.String()})
			if err := p.cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(p.stdout.String(), `msg="shutting down"`) {
				if time.Now().After(deadline) {
					t.Fatalf("no 'shutting down' line 5s after the first %v:\n%s", tt.sig, p.stdout)
				}
				time.Sleep(10 * time.Millisecond)
			}
			second := time.Now()
			if err := p.cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-p.exit:
				p.exit <- err // for the cleanup
			case <-time.After(drain):
				t.Fatalf("still running %s after the second %v", drain, tt.sig)
			}
			if took := time.Since(second); took > 2*time.Second {
				t.Errorf("exit took %s after the second %v; want at once", took, tt.sig)
			}
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != tt.want {
				t.Errorf("exit after a second %v = %v; want status %d", tt.sig, err, tt.want)
			}
			if !strings.Contains(p.stderr.String(), "second "+tt.sig.String()+" while shutting down: exiting now") {
				t.Errorf("stderr = %q; want the line saying why it exited", p.stderr)
			}
		})
	}
}
