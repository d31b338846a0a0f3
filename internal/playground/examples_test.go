package playground

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/graph"
)

// loadExamples validates Examples against the service's schema.
func loadExamples(t *testing.T) (*ast.Schema, *ast.QueryDocument) {
	t.Helper()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
	doc, errs := gqlparser.LoadQueryWithRules(schema, Examples, nil) // nil: the default rules
	if len(errs) > 0 {
		t.Fatalf("Examples do not validate against the schema: %v", errs)
	}
	return schema, doc
}

// TestExamplesCoverEveryRootField fails when a root field is added to the
// schema without an example for it.
func TestExamplesCoverEveryRootField(t *testing.T) {
	schema, doc := loadExamples(t)
	selected := make(map[string]bool)
	for _, op := range doc.Operations {
		if op.Name == "" {
			t.Errorf("an example operation has no name; the run button's menu lists operations by name")
		}
		for _, sel := range op.SelectionSet {
			if f, ok := sel.(*ast.Field); ok {
				selected[string(op.Operation)+"."+f.Name] = true
			}
		}
	}
	for _, root := range []struct {
		op  ast.Operation
		def *ast.Definition
	}{
		{ast.Query, schema.Query},
		{ast.Mutation, schema.Mutation},
		{ast.Subscription, schema.Subscription},
	} {
		if root.def == nil {
			continue
		}
		for _, f := range root.def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue // introspection
			}
			if !selected[string(root.op)+"."+f.Name] {
				t.Errorf("no example %s uses the root field %s", root.op, f.Name)
			}
		}
	}
}

// exampleCase is what running one example operation must answer.
type exampleCase struct {
	operation string
	field     string
	check     func(t *testing.T, data json.RawMessage)
}

// exampleCases are the example operations in the order the editor lists
// them, each with what it must answer when they run in that order on an
// empty Redis: later examples read what CacheSet wrote.
func exampleCases() []exampleCase {
	return []exampleCase{
		{"RedisHealth", "redisHealth", func(t *testing.T, data json.RawMessage) {
			var h struct{ Status, Mode, Breaker string }
			if err := json.Unmarshal(data, &h); err != nil {
				t.Fatal(err)
			}
			if h.Status != "CONNECTED" || h.Mode != "STANDALONE" || h.Breaker != "CLOSED" {
				t.Errorf("redisHealth = %+v, want CONNECTED, STANDALONE, CLOSED", h)
			}
		}},
		{"CacheSet", "cacheSet", wantJSON(`{"key":"greeting","stored":true,"backend":"REDIS","ttlSeconds":300,"failure":null,"message":null}`)},
		{"CacheGet", "cacheGet", wantJSON(`{"hello":"world"}`)},
		{"CacheGetMany", "cacheGetMany", wantJSON(`[{"hello":"world"},null]`)},
		{"CacheExists", "cacheExists", wantJSON(`true`)},
		{"CacheEntry", "cacheEntry", func(t *testing.T, data json.RawMessage) {
			var e struct {
				Value      json.RawMessage
				TTLSeconds int
				Etag       string
				Backend    string
			}
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatal(err)
			}
			if !sameJSON(e.Value, `{"hello":"world"}`) || e.TTLSeconds < 290 || len(e.Etag) != 40 || e.Backend != "REDIS" {
				t.Errorf("cacheEntry = %s; want the value, ttlSeconds near 300, a 40-digit etag, REDIS", data)
			}
		}},
		{"CacheFetch", "cacheFetch", wantJSON(`{"hit":true,"value":{"hello":"world"},"lease":null,"pending":false}`)},
		{"CacheSetIfAbsent", "cacheSet", func(t *testing.T, data json.RawMessage) {
			var p struct {
				Stored      bool
				Failure     string
				CurrentEtag string
			}
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Stored || p.Failure != "CONDITION_NOT_MET" || len(p.CurrentEtag) != 40 {
				t.Errorf("cacheSet(ifAbsent) = %s; want CONDITION_NOT_MET with the current etag", data)
			}
		}},
		{"CacheIncrement", "cacheIncrement", wantJSON(`{"value":"1","backend":"REDIS","failure":null}`)},
		{"CacheExpire", "cacheExpire", wantJSON(`{"existed":true,"failure":null}`)},
		{"CacheSetMany", "cacheSetMany", wantJSON(`[{"key":"a","stored":true,"backend":"REDIS"},{"key":"b","stored":true,"backend":"REDIS"}]`)},
		{"CacheDeleteMany", "cacheDeleteMany", wantJSON(`[{"key":"a","deleted":true},{"key":"b","deleted":true}]`)},
		{"CacheInvalidateTags", "cacheInvalidateTags", wantJSON(`{"deleted":0,"failure":null,"message":null}`)},
		{"CacheDelete", "cacheDelete", wantJSON(`{"key":"greeting","deleted":true,"backend":"REDIS","failure":null,"message":null}`)},
	}
}

// checkExampleOrder fails when the examples and exampleCases disagree.
func checkExampleOrder(t *testing.T, doc *ast.QueryDocument, cases []exampleCase) {
	t.Helper()
	var inDoc, inTable []string
	for _, op := range doc.Operations {
		// Subscriptions need a WebSocket and stay open: the service's own
		// tests run them (subscriptions_test.go).
		if op.Operation != ast.Subscription {
			inDoc = append(inDoc, op.Name)
		}
	}
	for _, c := range cases {
		inTable = append(inTable, c.operation)
	}
	if !slices.Equal(inDoc, inTable) {
		t.Fatalf("example operations %v, but the test checks %v: keep them in step", inDoc, inTable)
	}
}

// TestExamplesRunAgainstService runs every example operation, in the order
// the editor lists them, against the built service and Redis.
func TestExamplesRunAgainstService(t *testing.T) {
	_, doc := loadExamples(t)
	svc := startService(t)
	cases := exampleCases()
	checkExampleOrder(t, doc, cases)
	for _, tt := range cases {
		// In order, not in parallel: later examples read what CacheSet wrote.
		t.Run(tt.operation, func(t *testing.T) {
			resp := postGraphQL(t, svc.URL+"/graphql", Examples, tt.operation)
			if len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
			tt.check(t, resp.Data[tt.field])
		})
	}
}

// wantJSON checks a field's value against want, ignoring formatting.
func wantJSON(want string) func(t *testing.T, data json.RawMessage) {
	return func(t *testing.T, data json.RawMessage) {
		t.Helper()
		if !sameJSON(data, want) {
			t.Errorf("got %s, want %s", data, want)
		}
	}
}

// sameJSON reports whether got and want are the same JSON value, whatever
// their formatting and key order.
func sameJSON(got json.RawMessage, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	a, _ := json.Marshal(g)
	b, _ := json.Marshal(w)
	return string(a) == string(b)
}
