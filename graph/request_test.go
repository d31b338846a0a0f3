package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestTransportsMatchGqlgens: the POST and GET transports stand in for
// gqlgen's transport.POST and transport.GET. For every request gqlgen can
// decode they answer as gqlgen does (status, content type and body), except
// where GraphQL over HTTP says otherwise and gqlgen does not follow it: a
// request refused before execution (parse, validation, variables) is 200
// under application/json (gqlgen: 422) and has no data entry (gqlgen:
// "data": null), and a mutation over GET is 405 (gqlgen: 406, uncoded).
func TestTransportsMatchGqlgens(t *testing.T) {
	ours := NewHandler(&Resolver{Cache: stubCache{}}, HandlerOptions{Introspection: true, Auth: auth.OpenAccess()})
	theirs := func() http.Handler {
		srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Cache: stubCache{}}, Directives: DirectiveRoot{Auth: authDirective(auth.OpenAccess())}}))
		srv.AddTransport(transport.POST{})
		srv.AddTransport(transport.GET{})
		srv.Use(warnings{})
		srv.SetErrorPresenter(presentError(slog.New(slog.DiscardHandler)))
		return srv
	}()
	tests := []struct {
		name, body, accept string
		// refused: refused before execution, so answered as GraphQL over
		// HTTP says rather than as gqlgen does.
		refused bool
	}{
		{"query", `{"query":"{ cacheGet(key: \"k\") }"}`, "", false},
		{"query with variables", `{"query":"query($k: String!) { cacheExists(key: $k) }","variables":{"k":"x"}}`, "application/json", false},
		{"named operation", `{"query":"query A { cacheGet(key: \"a\") } query B { cacheExists(key: \"b\") }","operationName":"B"}`, "*/*", false},
		{"mutation", `{"query":"mutation { cacheSet(key: \"k\", value: {a: [1, 2.5]}, ttlSeconds: 60) { stored backend ttlSeconds } }"}`, "", false},
		{"validation error", `{"query":"{ nope }"}`, "", true},
		{"validation error, graphql-response+json", `{"query":"{ nope }"}`, "application/graphql-response+json", true},
		{"parse error", `{"query":"{"}`, "application/json;q=0.9, text/html", true},
		{"parse error, graphql-response+json", `{"query":"{"}`, "application/graphql-response+json, application/json", true},
		{"unknown operation", `{"query":"query A { cacheGet(key: \"a\") }","operationName":"Z"}`, "", true},
		{"variable of the wrong type", `{"query":"query($k: String!) { cacheGet(key: $k) }","variables":{"k":{"a":1}}}`, "", true},
		{"variable of the wrong type, graphql-response+json", `{"query":"query($k: String!) { cacheGet(key: $k) }","variables":{"k":{"a":1}}}`, "application/graphql-response+json", true},
		{"bad input in a resolver", `{"query":"{ cacheGet(key: \"\") }"}`, "", false},
		{"accept unknown", `{"query":"{ cacheGet(key: \"k\") }"}`, "text/html", false},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			if method == http.MethodGet && strings.Contains(tt.body, "mutation") {
				continue
			}
			t.Run(method+" "+tt.name, func(t *testing.T) {
				do := func(h http.Handler) *httptest.ResponseRecorder {
					req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(tt.body))
					req.Header.Set("Content-Type", "application/json")
					if method == http.MethodGet {
						req = httptest.NewRequest(http.MethodGet, "/graphql?"+urlParams(t, tt.body), nil)
					}
					if tt.accept != "" {
						req.Header.Set("Accept", tt.accept)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				got, want := do(ours), do(theirs)
				// Ours does not HTML-escape (values come back as stored).
				wantCode, wantBody := want.Code, unescapeHTML.Replace(want.Body.String())
				if tt.refused {
					wantCode = http.StatusOK
					if want.Header().Get("Content-Type") == mediaGraphQLResponse {
						wantCode = http.StatusBadRequest
					}
					wantBody = strings.Replace(wantBody, `,"data":null`, "", 1)
				}
				if got.Code != wantCode || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != wantBody {
					t.Errorf("%s %s = %d %s %s; want %d %s %s (gqlgen: %d %s)", method, tt.body,
						got.Code, got.Header().Get("Content-Type"), got.Body, wantCode, want.Header().Get("Content-Type"), wantBody, want.Code, want.Body)
				}
			})
		}
	}

	t.Run("GET mutation", func(t *testing.T) {
		rec := httptest.NewRecorder()
		ours.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(`mutation { cacheDelete(key: "k") { deleted } }`), nil))
		if want := `{"errors":[{"message":"only queries may be sent with GET; send mutations with POST","extensions":{"code":"METHOD_NOT_ALLOWED"}}]}`; rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" || rec.Body.String() != want {
			t.Errorf("GET mutation = %d (Allow: %q) %s; want 405, Allow: POST, %s", rec.Code, rec.Header().Get("Allow"), rec.Body, want)
		}
	})
	for name, target := range map[string]string{
		"GET without a query":  "/graphql",
		"GET bad variables":    "/graphql?query=%7B__typename%7D&variables=%5B1%5D",
		"GET bad query string": "/graphql?query=%zz",
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ours.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			var r struct {
				Data   *json.RawMessage `json:"data"`
				Errors []struct {
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != CodeBadRequest || r.Data != nil {
				t.Errorf("GET %s = %d %s; want 400 BAD_REQUEST without data", target, rec.Code, rec.Body)
			}
		})
	}
}

// unescapeHTML undoes encoding/json's HTML escaping.
var unescapeHTML = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")

// urlParams turns a POST body into GET's URL parameters.
func urlParams(t *testing.T, body string) string {
	t.Helper()
	var p struct {
		Query         string          `json:"query"`
		OperationName string          `json:"operationName"`
		Variables     json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	v := url.Values{"query": {p.Query}}
	if p.OperationName != "" {
		v.Set("operationName", p.OperationName)
	}
	if len(p.Variables) > 0 {
		v.Set("variables", string(p.Variables))
	}
	return v.Encode()
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

// GetRead is Get as a Read.
func (c stubCache) GetRead(ctx context.Context, key string) cache.Read {
	v, backend, err := c.Get(ctx, key)
	return cache.Read{Value: v, Backend: backend, Err: err}
}
