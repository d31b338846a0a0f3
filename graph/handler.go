package graph

import (
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/graph/model"
	"github.com/school-erp/cache-service/internal/auth"
)

// Sizes of the per-process caches gqlgen keeps.
const (
	// QueryCacheSize is how many parsed and validated query documents are
	// kept, so a repeated query is not parsed again.
	QueryCacheSize = 1000
	// PersistedQueryCacheSize is how many Automatic Persisted Queries are
	// remembered by hash.
	PersistedQueryCacheSize = 1000
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Introspection allows __schema and __type queries (the playground
	// needs them).
	Introspection bool
	// NoSuggestions drops "did you mean" hints from validation errors,
	// which would tell an anonymous caller the schema's field names.
	NoSuggestions bool
	// Auth decides who may resolve each field (@auth). Nil refuses every
	// field; auth.OpenAccess() allows all.
	Auth *auth.Authenticator
	// Limits bound each request.
	Limits Limits
	// Logger receives internal errors and recovered panics.
	Logger *slog.Logger
}

// NewHandler returns the GraphQL endpoint: POST with a JSON body, GET for
// queries (gqlgen refuses mutations over GET), OPTIONS for preflight.
// Parsed queries are cached, Automatic Persisted Queries are supported, and
// errors are presented as described in errors.go.
func NewHandler(r *Resolver, opts HandlerOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := Config{Resolvers: r}
	cfg.Directives.Auth = authDirective(opts.Auth)
	// A cacheGetMany costs what its keys cost.
	cfg.Complexity.Query.CacheGetMany = func(child int, keys []string) int { return 1 + len(keys) }
	// A batch costs what its entries cost, as cacheGetMany does.
	cfg.Complexity.Mutation.CacheSetMany = func(child int, entries []*model.CacheSetInput) int { return 1 + len(entries) }
	cfg.Complexity.Mutation.CacheDeleteMany = func(child int, keys []string) int { return 1 + len(keys) }
	es := NewExecutableSchema(cfg)
	srv := handler.New(es)
	// Only these transports: JSON POST, GET for queries (mutations are
	// refused over GET), OPTIONS. No form or multipart transports, so a
	// browser cannot be made to send a cross-site write without a CORS
	// preflight. POST and GET are this package's own (request.go), so that
	// a request that is not a GraphQL request gets a coded error, and a
	// request refused before execution is answered as GraphQL over HTTP
	// says.
	srv.AddTransport(transport.Options{})
	srv.AddTransport(getQuery{})
	srv.AddTransport(postJSON{})
	parsed := lru.New[*ast.QueryDocument](QueryCacheSize)
	srv.SetQueryCache(parsed)
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.SetDisableSuggestion(opts.NoSuggestions)
	// Parameter mutators run in the order they are added: the token limit
	// must see the query APQ found by its hash.
	srv.Use(persistedQueries{extension.AutomaticPersistedQuery{Cache: lru.New[string](PersistedQueryCacheSize)}})
	if opts.Limits.Tokens > 0 {
		srv.Use(tokenLimit{max: opts.Limits.Tokens, parsed: parsed})
		// The parser's own limit stays as a backstop; tokenLimit refuses
		// first, with its own code.
		srv.SetParserTokenLimit(opts.Limits.Tokens)
	}
	// Shape limits (and the literal check) run first: the complexity
	// limit reads argument values.
	srv.Use(shapeLimits{opts.Limits})
	// Values as the client sent them, before anything decodes arguments.
	srv.Use(rawValues{schema: es.Schema()})
	if opts.Limits.Complexity > 0 {
		srv.Use(extension.FixedComplexityLimit(opts.Limits.Complexity))
	}
	srv.Use(warnings{})
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))
	return srv
}
