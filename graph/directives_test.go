package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/internal/auth"
)

// TestAuthFailsClosed: a handler built without an authenticator, or with
// one that knows no tokens, refuses every field; only auth.OpenAccess
// opens them.
func TestAuthFailsClosed(t *testing.T) {
	const (
		readValue  = "read-token-0123456789"
		writeValue = "write-token-0123456789"
	)
	tokens := auth.New([]auth.Token{
		{Name: "reports", Scope: auth.ScopeRead, Value: readValue},
		{Name: "erp", Scope: auth.ScopeWrite, Value: writeValue},
	})
	const (
		query    = `{ cacheGet(key: "k") }`
		mutation = `mutation { cacheSet(key: "k", value: 1) { stored } }`
	)
	tests := []struct {
		name   string
		authn  *auth.Authenticator
		bearer string
		query  string
		want   string // extensions.code; empty: answered
	}{
		{"nil, anonymous query", nil, "", query, CodeForbidden},
		{"nil, token query", nil, writeValue, query, CodeForbidden},
		{"nil, token mutation", nil, writeValue, mutation, CodeForbidden},
		{"no tokens, anonymous query", auth.New(nil), "", query, CodeUnauthenticated},
		{"no tokens, anonymous mutation", auth.New(nil), "", mutation, CodeUnauthenticated},
		{"no tokens, some bearer", auth.New(nil), writeValue, mutation, CodeUnauthenticated},
		{"tokens, anonymous query", tokens, "", query, CodeUnauthenticated},
		{"tokens, read token query", tokens, readValue, query, ""},
		{"tokens, read token mutation", tokens, readValue, mutation, CodeForbidden},
		{"tokens, write token mutation", tokens, writeValue, mutation, ""},
		{"open, anonymous query", auth.OpenAccess(), "", query, ""},
		{"open, anonymous mutation", auth.OpenAccess(), "", mutation, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(&Resolver{Cache: stubCache{}}, HandlerOptions{Auth: tt.authn})
			if tt.authn != nil {
				h = tt.authn.Middleware(h)
			}
			body, _ := json.Marshal(map[string]string{"query": tt.query})
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var resp struct {
				Errors []struct {
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("decode %s: %v", rec.Body, err)
			}
			got := ""
			if len(resp.Errors) > 0 {
				got, _ = resp.Errors[0].Extensions["code"].(string)
			}
			if got != tt.want {
				t.Errorf("%s = %s; want code %q", tt.query, rec.Body, tt.want)
			}
		})
	}
}
