package cache_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/redistest"
	"github.com/school-erp/cache-service/internal/testcert"
)

func TestTLS(t *testing.T) {
	ca := testcert.NewCA(t, "test")
	otherCA := testcert.NewCA(t, "other")
	good := ca.Server("redis", testcert.CertOptions{})
	expired := ca.Server("redis-expired", testcert.CertOptions{Expired: true})
	wrongName := ca.Server("redis-wrong-name", testcert.CertOptions{Names: []string{"cache.example.com"}})
	client := ca.Client("service")

	start := func(pair testcert.Pair, authClients bool) *redistest.Server {
		return redistest.Start(t, redistest.Options{TLS: &redistest.TLS{
			CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: ca.CertFile,
			AuthClients: authClients, ClientCertFile: client.CertFile, ClientKeyFile: client.KeyFile,
		}})
	}
	plain := redistest.Start(t, redistest.Options{})
	tlsServer := start(good, false)
	mtlsServer := start(good, true)
	expiredServer := start(expired, false)
	wrongNameServer := start(wrongName, false)

	tests := []struct {
		name   string
		server *redistest.Server
		tls    *cache.TLSOptions
		// wantCause empty means it must connect.
		wantCause string
	}{
		{"private CA", tlsServer, &cache.TLSOptions{CAFile: ca.CertFile}, ""},
		{"system roots only", tlsServer, &cache.TLSOptions{}, "unknown authority"},
		{"wrong CA", tlsServer, &cache.TLSOptions{CAFile: otherCA.CertFile}, "unknown authority"},
		{"expired certificate", expiredServer, &cache.TLSOptions{CAFile: ca.CertFile}, "expired"},
		{"wrong host name", wrongNameServer, &cache.TLSOptions{CAFile: ca.CertFile}, "does not match the host name"},
		{"server name override", wrongNameServer, &cache.TLSOptions{CAFile: ca.CertFile, ServerName: "cache.example.com"}, ""},
		{"skip verify", tlsServer, &cache.TLSOptions{CAFile: otherCA.CertFile, InsecureSkipVerify: true}, ""},
		{"mutual TLS with client certificate", mtlsServer, &cache.TLSOptions{CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile}, ""},
		{"mutual TLS without client certificate", mtlsServer, &cache.TLSOptions{CAFile: ca.CertFile}, "TLS"},
		{"TLS to a plaintext server", plain, &cache.TLSOptions{}, "TLS"},
		{"plaintext to a TLS server", tlsServer, nil, "closed by the server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			opts := fastOptions(tt.server.Addr, logs)
			opts.TLS = tt.tls
			c := newClient(t, opts)
			if tt.wantCause == "" {
				ready(t, c)
				if err := set(context.Background(), c, "k", json.RawMessage(`"over tls"`), 0); err != nil {
					t.Fatalf("Set() error = %v", err)
				}
				if h := c.Health(); h.TLS != (tt.tls != nil) || h.Status != cache.StatusConnected {
					t.Errorf("Health() = status %s, TLS %v; want connected, TLS %v", h.Status, h.TLS, tt.tls != nil)
				}
				return
			}
			h := waitStatus(t, c, cache.StatusDisconnected, time.Second)
			deadline := time.Now().Add(3 * time.Second)
			for !strings.Contains(h.Reason, tt.wantCause) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				h = c.Health()
			}
			if !strings.Contains(h.Reason, tt.wantCause) {
				t.Errorf("Health().Reason = %q; want it to name %q", h.Reason, tt.wantCause)
			}
			time.Sleep(200 * time.Millisecond) // several more attempts
			if n := logs.count("redis unreachable"); n != 1 {
				t.Errorf("%d outage lines; want 1 for repeated TLS failures", n)
			}
		})
	}
}

func TestTLSFilesAreCheckedAtStart(t *testing.T) {
	for name, tlsOpts := range map[string]*cache.TLSOptions{
		"missing CA file":    {CAFile: "/nonexistent/ca.pem"},
		"CA file not PEM":    {CAFile: "/etc/hostname"},
		"cert without key":   {CertFile: "/nonexistent/c.pem"},
		"missing cert files": {CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"},
	} {
		if _, err := cache.New(cache.Options{Addr: "127.0.0.1:1", TLS: tlsOpts}); err == nil {
			t.Errorf("%s: New() error = nil; want an error at start", name)
		}
	}
}
