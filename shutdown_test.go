package main

import (
	"io"
	"net"
	"strings"
	"testing"
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
