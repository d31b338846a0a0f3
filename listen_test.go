package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// TestDevelopmentListensOnLoopbackOnly: development has no tokens and any
// CORS origin, so it listens on loopback only unless HOST says otherwise;
// staging and production listen on every interface, as before.
func TestDevelopmentListensOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	external := nonLoopbackIP(t)
	tests := []struct {
		name       string
		env        map[string]string
		wantHost   string // the listening line's host; "any" for every interface
		reachable  bool   // from a non-loopback address of this machine
		metricsToo bool
	}{
		{"development", map[string]string{}, "127.0.0.1", false, true},
		{"development with HOST=0.0.0.0", map[string]string{"HOST": "0.0.0.0"}, "any", true, false},
		{"staging", map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken}, "any", true, true},
		{"staging with HOST=127.0.0.1", map[string]string{"APP_ENV": "staging", "API_TOKENS": testToken, "HOST": "127.0.0.1"}, "127.0.0.1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv(srv.Addr)
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.metricsToo {
				env["METRICS_PORT"] = itoa(redistest.FreePort(t))
			}
			svc := startService(t, env)
			hosts := map[string]string{}
			for _, l := range svc.logs.lines(t) {
				if msg, _ := l["msg"].(string); msg == "listening" || msg == "metrics listening" {
					addr, _ := l["addr"].(string)
					host, port, err := net.SplitHostPort(addr)
					if err != nil {
						t.Fatalf("%s addr %q: %v", msg, addr, err)
					}
					if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
						host = "any"
					}
					hosts[msg] = host
					if external != "" {
						conn, err := net.DialTimeout("tcp", net.JoinHostPort(external, port), time.Second)
						if err == nil {
							conn.Close()
						}
						if reached := err == nil; reached != tt.reachable {
							t.Errorf("%s on %s: dial from %s reached = %v (%v); want %v", msg, addr, external, reached, err, tt.reachable)
						}
					}
				}
			}
			if hosts["listening"] != tt.wantHost {
				t.Errorf("listening on host %q; want %q\n%s", hosts["listening"], tt.wantHost, svc.logs)
			}
			if tt.metricsToo && hosts["metrics listening"] != tt.wantHost {
				t.Errorf("metrics listening on host %q; want %q, as PORT", hosts["metrics listening"], tt.wantHost)
			}
		})
	}
	if external == "" {
		t.Log("no non-loopback address on this machine: checked the listening addresses only, not reachability from another interface")
	}
}

// nonLoopbackIP is an address of this machine's that is not loopback, or
// "" if it has none.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !strings.HasPrefix(ipn.IP.String(), "169.254.") {
			return ipn.IP.String()
		}
	}
	return ""
}
