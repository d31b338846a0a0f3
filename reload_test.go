package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/school-erp/cache-service/internal/redistest"
)

// SIGHUP reloads API_TOKENS_FILE: a token taken out of the file is
// refused from then on, over HTTP and on the sockets it opened (closed
// with 4403), while the others go on; a file that cannot be used changes
// nothing.
func TestSIGHUPReloadsTheTokensFile(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	const keep, revoke = "keep-0123456789abcdef", "gone-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("keep:write:" + keep + "\ngone:read:" + revoke + "\n")
	env := testEnv(srv.Addr)
	env["APP_ENV"] = "staging"
	env["API_TOKENS_FILE"] = file
	p := startBinary(t, env)
	status := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.url+"/graphql", bytes.NewReader([]byte(`{"query":"{ cacheExists(key: \"k\") }"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r gqlResponse
		_ = json.NewDecoder(resp.Body).Decode(&r)
		if resp.StatusCode == http.StatusOK && len(r.Errors) > 0 {
			return http.StatusUnauthorized
		}
		return resp.StatusCode
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(p.stdout.String(), what) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q line %d within 5s:\n%s", what, n, p.stdout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	bearer := func(v string) map[string]any { return map[string]any{"Authorization": "Bearer " + v} }
	open := func(token string) *wsClient {
		t.Helper()
		c, _, err := dialURL(t, p.url, wsDial{payload: bearer(token)})
		if err != nil {
			t.Fatal(err)
		}
		c.ack()
		c.subscribe("1", watchQuery, map[string]any{"keys": []string{"reload:k"}})
		return c
	}
	kept, gone := open(keep), open(revoke)
	time.Sleep(300 * time.Millisecond)
	if got := status(revoke); got != http.StatusOK {
		t.Fatalf("before the reload, the token to revoke: HTTP %d", got)
	}

	write("keep:write:" + keep + "\n")
	hup()
	waitLog("API tokens reloaded", 1)
	if code := gone.closed(3 * time.Second); code != 4403 {
		t.Errorf("socket of the revoked token: close %d (%v); want 4403", code, gone.closeErr())
	}
	if got := status(revoke); got != http.StatusUnauthorized {
		t.Errorf("revoked token after the reload: HTTP %d; want refused", got)
	}
	if got := status(keep); got != http.StatusOK {
		t.Errorf("kept token after the reload: HTTP %d; want 200", got)
	}
	p.bearer = keep
	p.set(t, "reload:k", 1)
	if x := kept.change("1", 5*time.Second); x.Kind != "SET" || x.Key != "reload:k" {
		t.Errorf("socket of the kept token: %+v; want the SET", x)
	}

	// A file that cannot be used changes nothing.
	write("keep:write:" + keep + "\nbad line\n")
	hup()
	waitLog("API tokens not reloaded", 1)
	write("")
	hup()
	waitLog("API tokens not reloaded", 2)
	if got := status(keep); got != http.StatusOK {
		t.Errorf("after two refused reloads, the kept token: HTTP %d; want 200", got)
	}
	kept.quiet(200 * time.Millisecond)
}
