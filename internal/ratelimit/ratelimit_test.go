package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNewIsNilWhenNothingIsLimited(t *testing.T) {
	for _, opts := range []Options{{}, {Tokens: map[string]Limit{"erp": {}, "etl": {Rate: 0, Burst: 5}}}} {
		l, err := New(opts)
		if err != nil || l != nil {
			t.Errorf("New(%+v) = %v, %v; want nil, nil", opts, l, err)
		}
	}
}

func TestLimitsByTokenAndAddress(t *testing.T) {
	l, err := New(Options{
		Tokens:    map[string]Limit{"reporting": {Rate: 1, Burst: 2}, "etl": {Rate: 0.25, Burst: 1}, "erp": {}},
		Anonymous: Limit{Rate: 1, Burst: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := l.Middleware(func(r *http.Request) string { return r.Header.Get("Token") },
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	codes := func(token, addr string, n int) string {
		var out []int
		for range n {
			req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			req.Header.Set("Token", token)
			req.RemoteAddr = addr + ":1234"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			out = append(out, rec.Code)
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		name, token, addr string
		n                 int
		want              string
	}{
		{"a token's own burst", "reporting", "10.0.0.1", 3, "[200 200 429]"},
		{"another token's bucket is its own", "etl", "10.0.0.1", 2, "[200 429]"},
		{"a token without a limit", "erp", "10.0.0.1", 50, "[" + strings.TrimSpace(strings.Repeat("200 ", 50)) + "]"},
		{"a token not configured is not limited", "other", "10.0.0.1", 5, "[200 200 200 200 200]"},
		{"anonymous, by address", "", "10.0.0.1", 4, "[200 200 200 429]"},
		{"anonymous, another address", "", "10.0.0.2", 1, "[200]"},
	}
	for _, tt := range tests {
		if got := codes(tt.token, tt.addr, tt.n); got != tt.want {
			t.Errorf("%s: %d requests = %s; want %s", tt.name, tt.n, got, tt.want)
		}
	}

	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Token", "etl")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "4" || !strings.Contains(rec.Body.String(), `"code":"RATE_LIMITED"`) || !strings.Contains(rec.Body.String(), "at most 0.25 requests per second, bursts of 1") {
		t.Errorf("refusal for etl (0.25/1) = %d Retry-After %q %s; want 429, Retry-After 4, RATE_LIMITED naming its limit", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

func TestAnonymousUnlimitedWithoutAnAnonymousLimit(t *testing.T) {
	l, err := New(Options{Tokens: map[string]Limit{"erp": {Rate: 1, Burst: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 10 {
		if r := l.allow("", "10.0.0.1"); r != nil {
			t.Fatalf("anonymous request %d refused with no anonymous limit", i)
		}
	}
}
