package graph

import (
	"encoding/json"
	"testing"

	"github.com/school-erp/cache-service/internal/auth"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// TestNumberRulesAgree: a number is refused as a variable exactly when it
// is refused as a literal.
func TestNumberRulesAgree(t *testing.T) {
	for _, raw := range []string{
		"0", "-0", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
		"123456789012345678901234567890", "1.5", "-2.5e3", "1e308", "1e309", "1e400", "-1e999",
		"1E5", "1e-400", "0.000001", "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0",
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: `{ f(a: ` + raw + `) }`})
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		literal := checkValue(doc.Operations[0].SelectionSet[0].(*ast.Field).Arguments[0].Value)
		variable := checkVariable(map[string]any{"x": []any{json.Number(raw)}})
		if (literal == nil) != (variable == nil) {
			t.Errorf("%s: as a literal %v, as a variable %v; want the same", raw, literal, variable)
		}
		if variable != nil && variable.Extensions["code"] != CodeBadUserInput {
			t.Errorf("%s: code %v; want %s", raw, variable.Extensions["code"], CodeBadUserInput)
		}
	}
}

// TestShapeLimits: depth, aliases and operations are measured through
// fragments and inline fragments as through plain selections; a fragment
// adds no level of its own, and every way of writing a query is held to
// the same limits. Each limit is checked at and just past its value.
func TestShapeLimits(t *testing.T) {
	h := NewHandler(&Resolver{Cache: stubCache{}}, HandlerOptions{
		Auth:          auth.OpenAccess(),
		Introspection: true,
		Limits:        Limits{Depth: 2, Aliases: 3, Operations: 2},
	})
	tests := []struct {
		name, query, operation, wantCode string
	}{
		{"depth at the limit", `{ redisHealth { status } }`, "", ""},
		{"too deep", `{ redisHealth { fallback { mode } } }`, "", CodeDepthLimit},
		{"depth at the limit through a fragment", `query { redisHealth { ...F } } fragment F on RedisHealth { status }`, "", ""},
		{"too deep through a fragment", `query { redisHealth { ...F } } fragment F on RedisHealth { fallback { mode } }`, "", CodeDepthLimit},
		{"depth at the limit through an inline fragment", `{ ... on Query { redisHealth { status } } }`, "", ""},
		{"too deep through an inline fragment", `{ ... on Query { redisHealth { fallback { mode } } } }`, "", CodeDepthLimit},
		{"too deep through nested inline fragments", `{ ... on Query { ... on Query { redisHealth { ... on RedisHealth { fallback { mode } } } } } }`, "", CodeDepthLimit},
		{"too deep inside an inline fragment after a shallow field", `{ cacheGet(key: "k") ... on Query { redisHealth { fallback { mode } } } }`, "", CodeDepthLimit},
		{"introspection adds no depth", `{ __schema { types { fields { type { name } } } } }`, "", ""},
		{"__typename is measured like any field", `{ redisHealth { __typename } }`, "", ""},
		{"aliases at the limit", `{ a: cacheGet(key: "k") b: cacheGet(key: "k") c: cacheGet(key: "k") }`, "", ""},
		{"too many aliases", `{ a: cacheGet(key: "k") b: cacheGet(key: "k") c: cacheGet(key: "k") d: cacheGet(key: "k") }`, "", CodeAliasLimit},
		{"an alias that is the field's name is not one", `{ cacheGet: cacheGet(key: "k") a: cacheGet(key: "k") b: cacheGet(key: "k") c: cacheGet(key: "k") }`, "", ""},
		{"too many aliases through an inline fragment", `{ a: cacheGet(key: "k") ... on Query { b: cacheGet(key: "k") c: cacheGet(key: "k") d: cacheGet(key: "k") } }`, "", CodeAliasLimit},
		{"too many aliases through a fragment", `query { a: cacheGet(key: "k") ...F } fragment F on Query { b: cacheGet(key: "k") c: cacheGet(key: "k") d: cacheGet(key: "k") }`, "", CodeAliasLimit},
		{"too many aliases in nested selections", `{ a: redisHealth { b: status c: breaker d: addr } }`, "", CodeAliasLimit},
		{"operations at the limit", `query A { cacheGet(key: "k") } query B { cacheGet(key: "k") }`, "A", ""},
		{"too many operations", `query A { cacheGet(key: "k") } query B { cacheGet(key: "k") } query C { cacheGet(key: "k") }`, "A", CodeOperationLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"query": tt.query, "operationName": tt.operation})
			raw := send(h, string(body), nil).body
			var r budgetResponse
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			var code any = ""
			if len(r.Errors) > 0 {
				code = r.Errors[0].Extensions["code"]
			}
			if code != tt.wantCode {
				t.Errorf("%s answered code %v (%s); want %q", tt.query, code, raw, tt.wantCode)
			}
			if tt.wantCode == "" && len(r.Data) == 0 {
				t.Errorf("%s answered no data (%s); want it resolved", tt.query, raw)
			}
		})
	}
}
