package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/internal/auth"
)

// stubCache answers every key with the same value, without Redis: enough
// for tests about the request around the resolvers. The operations those
// tests never reach come from the nil embedded Cache, and would panic.
type stubCache struct{ Cache }

func (stubCache) Get(context.Context, string) (json.RawMessage, cache.Backend, error) {
	return json.RawMessage(`{"n":1}`), cache.BackendRedis, nil
}

func (stubCache) GetMany(_ context.Context, keys []string) ([]cache.Read, error) {
	reads := make([]cache.Read, len(keys))
	for i := range reads {
		reads[i] = cache.Read{Value: json.RawMessage(`{"n":1}`), Backend: cache.BackendRedis}
	}
	return reads, nil
}

func (stubCache) Set(context.Context, string, json.RawMessage, time.Duration) (cache.Backend, error) {
	return cache.BackendRedis, nil
}

func (stubCache) Delete(context.Context, string) (bool, cache.Backend, error) {
	return true, cache.BackendRedis, nil
}

func (stubCache) Exists(context.Context, string) (bool, cache.Backend, error) {
	return true, cache.BackendRedis, nil
}

func (stubCache) SetWith(context.Context, string, json.RawMessage, cache.SetOptions) (cache.SetResult, error) {
	return cache.SetResult{Backend: cache.BackendRedis}, nil
}

func (stubCache) Health() cache.Health { return cache.Health{Status: cache.StatusConnected} }

// TestPOSTTransportMatchesGqlgens: the POST transport stands in for
// gqlgen's transport.POST; for every request gqlgen can decode, both answer
// with the same status, content type and body.
func TestPOSTTransportMatchesGqlgens(t *testing.T) {
	ours := NewHandler(&Resolver{Cache: stubCache{}}, HandlerOptions{Introspection: true, Auth: auth.OpenAccess()})
	theirs := func() http.Handler {
		srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Cache: stubCache{}}, Directives: DirectiveRoot{Auth: authDirective(auth.OpenAccess())}}))
		srv.AddTransport(transport.POST{})
		srv.Use(warnings{})
		srv.SetErrorPresenter(presentError(slog.New(slog.DiscardHandler)))
		return srv
	}()
	tests := []struct{ name, body, accept string }{
		{"query", `{"query":"{ cacheGet(key: \"k\") }"}`, ""},
		{"query with variables", `{"query":"query($k: String!) { cacheExists(key: $k) }","variables":{"k":"x"}}`, "application/json"},
		{"named operation", `{"query":"query A { cacheGet(key: \"a\") } query B { cacheExists(key: \"b\") }","operationName":"B"}`, "*/*"},
		{"mutation", `{"query":"mutation { cacheSet(key: \"k\", value: {a: [1, 2.5]}, ttlSeconds: 60) { stored backend ttlSeconds } }"}`, ""},
		{"validation error", `{"query":"{ nope }"}`, ""},
		{"validation error, graphql-response+json", `{"query":"{ nope }"}`, "application/graphql-response+json"},
		{"parse error", `{"query":"{"}`, "application/json;q=0.9, text/html"},
		{"unknown operation", `{"query":"query A { cacheGet(key: \"a\") }","operationName":"Z"}`, ""},
		{"variable of the wrong type", `{"query":"query($k: String!) { cacheGet(key: $k) }","variables":{"k":5}}`, ""},
		{"bad input in a resolver", `{"query":"{ cacheGet(key: \"\") }"}`, ""},
		{"accept unknown", `{"query":"{ cacheGet(key: \"k\") }"}`, "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			do := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(tt.body))
				req.Header.Set("Content-Type", "application/json")
				if tt.accept != "" {
					req.Header.Set("Accept", tt.accept)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			got, want := do(ours), do(theirs)
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != want.Body.String() {
				t.Errorf("POST %s = %d %s %s; gqlgen's POST: %d %s %s", tt.body,
					got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		})
	}
}

// FuzzTokenLimit checks the token limit against the parser's own: for any
// document the parser accepts, tokenLimit refuses it at a limit exactly
// when the parser with that limit does.
func FuzzTokenLimit(f *testing.F) {
	for _, seed := range []string{
		`{ cacheGet(key: "k") }`,
		`query Q($k: String! = "d") { a: cacheGet(key: $k) b: cacheExists(key: "x") } # trailing comment`,
		"# leading comment\n{ ...F } fragment F on Query { __typename redisHealth { status } }",
		`mutation { cacheSet(key: "k", value: {a: [1, -2.5e3, true, null, "s"], b: {c: ENUM}}, ttlSeconds: 60) { stored } }`,
		"\"\"\"block\nstring\"\"\" query { x(a: \"\"\"v\"\"\") @skip(if: false) { ... on T { y } } }",
		`subscription S { s }`,
		`{a,b,,c}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if _, err := parser.ParseQuery(&ast.Source{Input: doc}); err != nil {
			return // a syntax error: the parser's to report
		}
		parserRefuses := func(limit int) bool {
			_, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: doc}, limit)
			return err != nil
		}
		// The smallest limit the parser accepts the document at (refusal
		// is monotonic in the limit); every token takes at least a byte.
		least := sort.Search(len(doc)+1, func(limit int) bool { return limit > 0 && !parserRefuses(limit) })
		for _, limit := range []int{1, least - 1, least, least + 1, len(doc) + 1} {
			if limit < 1 {
				continue
			}
			l := tokenLimit{max: limit, parsed: graphql.NoCache[*ast.QueryDocument]{}}
			err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: doc})
			if want := parserRefuses(limit); (err != nil) != want {
				t.Fatalf("limit %d, document %q: parser refuses %v; tokenLimit error %v", limit, doc, want, err)
			}
			if err != nil && err.Extensions["code"] != CodeTokenLimit {
				t.Fatalf("tokenLimit error %v has code %v; want %s", err, err.Extensions["code"], CodeTokenLimit)
			}
		}
	})
}
