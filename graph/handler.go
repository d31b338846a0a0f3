package graph

import (
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
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
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](QueryCacheSize))
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](PersistedQueryCacheSize)})
	srv.Use(warnings{})
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))
	return srv
}
