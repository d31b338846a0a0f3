package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/internal/redistest"
)

// introspectionQuery is what GraphiQL and schema code generators send to
// learn the schema (graphql-js's getIntrospectionQuery, every option on). It
// nests 15 levels deep, beyond the default GRAPHQL_MAX_DEPTH of 8.
func introspectionQuery(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIntrospectionHasItsOwnRule runs the built binary with its default
// settings: in development the schema query that GraphiQL and code
// generators send is answered whatever the depth limit, and the limits
// still bound the data part of an operation; in production it is refused
// as introspection, not as too deep.
func TestIntrospectionHasItsOwnRule(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	redisEnv := func(more map[string]string) map[string]string {
		env := map[string]string{"REDIS_HOST": host, "REDIS_PORT": port}
		for k, v := range more {
			env[k] = v
		}
		return env
	}
	dev := startBinary(t, redisEnv(nil))
	shallow := startBinary(t, redisEnv(map[string]string{"GRAPHQL_MAX_DEPTH": "2"}))
	prod := startBinary(t, redisEnv(map[string]string{"APP_ENV": "production", "API_TOKENS": testToken, "REDIS_TLS": "false", "REDIS_TLS_ALLOW_PLAINTEXT": "true"}))
	full := introspectionQuery(t)

	tests := []struct {
		name     string
		p        *process
		query    string
		wantCode string // "" for an answer without errors
	}{
		{"GraphiQL's schema query, development defaults", dev, full, ""},
		{"GraphiQL's schema query, depth limit 2", shallow, full, ""},
		{"__type with its ofType chain, depth limit 2", shallow, `{ __type(name: "CacheSetPayload") { fields { type { ofType { ofType { name } } } } } }`, ""},
		{"introspection beside a data field within the limit", shallow, `{ __schema { types { fields { type { name } } } } redisHealth { status } }`, ""},
		{"introspection beside a data field beyond the limit", shallow, `{ __schema { types { name } } redisHealth { fallback { mode } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"introspection through a fragment, beside data beyond the limit", shallow, `{ ...F redisHealth { fallback { mode } } } fragment F on Query { __schema { types { name } } }`, "DEPTH_LIMIT_EXCEEDED"},
		// gqlparser's validation (graphql-js's MaxIntrospectionDepth rule)
		// bounds what makes introspection answers large.
		{"lists of types nested three deep", dev, `{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }`, "GRAPHQL_VALIDATION_FAILED"},
		{"lists of types nested three deep through fragments", dev, `{ __type(name: "Query") { ...A } } fragment A on __Type { possibleTypes { ...B } } fragment B on __Type { interfaces { inputFields { name } } }`, "GRAPHQL_VALIDATION_FAILED"},
		{"lists of types nested two deep", dev, `{ __schema { types { fields { type { fields { name } } } } } }`, ""},
		{"aliases still count", shallow, "{ " + aliasedSchemas(21) + " }", "ALIAS_LIMIT_EXCEEDED"},
		{"GraphiQL's schema query, production", prod, full, "INTROSPECTION_DISABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, _ := json.Marshal(map[string]any{"query": tt.query})
			status, _, raw := send(t, http.MethodPost, tt.p.url+"/graphql", tt.p.bearer, string(body))
			var r gqlResponse
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				t.Fatalf("HTTP %d, not JSON: %v\n%.300s", status, err, raw)
			}
			if status != http.StatusOK || r.code() != tt.wantCode {
				t.Fatalf("HTTP %d, code %q %+v; want HTTP 200, code %q", status, r.code(), r.Errors, tt.wantCode)
			}
			if tt.wantCode == "" && len(r.Data) == 0 {
				t.Errorf("no data: %.300s", raw)
			}
		})
	}
	t.Run("the schema comes back whole", func(t *testing.T) {
		t.Parallel()
		body, _ := json.Marshal(map[string]any{"query": full})
		_, _, raw := send(t, http.MethodPost, dev.url+"/graphql", "", string(body))
		var r struct {
			Data struct {
				Schema struct {
					Types []struct{ Name string } `json:"types"`
				} `json:"__schema"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, ty := range r.Data.Schema.Types {
			names[ty.Name] = true
		}
		for _, want := range []string{"Query", "Mutation", "CacheSetPayload", "JSON", "Int64", "__Schema"} {
			if !names[want] {
				t.Errorf("type %s missing from the introspection answer (%d types)", want, len(names))
			}
		}
	})
}

// aliasedSchemas is n aliased __schema fields.
func aliasedSchemas(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("s")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString(": __schema { queryType { name } } ")
	}
	return b.String()
}
