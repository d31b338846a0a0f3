package graph

import (
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
	"github.com/school-erp/cache-service/internal/auth"
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
	// QueryCacheBytes bounds the parsed-document cache; zero means
	// DefaultQueryCacheBytes.
	QueryCacheBytes int
	// PersistedQueryCacheBytes bounds the Automatic Persisted Query store;
	// zero means DefaultPersistedQueryCacheBytes.
	PersistedQueryCacheBytes int
	// MaxCachedDocumentBytes: a document whose entry would weigh more is
	// kept in neither cache; zero means DefaultMaxCachedDocumentBytes.
	MaxCachedDocumentBytes int
	// MaxResponseBytes bounds the bytes of values one response may hold;
	// zero means DefaultMaxResponseBytes. A query whose values take more
	// is refused with RESPONSE_TOO_LARGE (budget.go).
	MaxResponseBytes int
	// MaxValueBytes is the largest value the cache returns
	// (cache.Options.MaxValueBytes); zero means cache.DefaultMaxValueBytes.
	// Reads take as many keys at once as fit in what is left of
	// MaxResponseBytes at this size each.
	MaxValueBytes int
	// Logger receives internal errors and recovered panics.
	Logger *slog.Logger
	// NoCompiledReads sends every request through gqlgen's executor,
	// without the compiled paths for reads, writes and subscriptions
	// (compiled.go, compiledwrites.go, live.go): for the differential
	// tests, which compare them.
	NoCompiledReads bool
	// Subscriptions configure the WebSocket transport; without
	// Subscriptions.Sockets there is none.
	Subscriptions SubscriptionOptions
}

// withDefaults fills in the zero fields.
func (o HandlerOptions) withDefaults() HandlerOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueryCacheBytes == 0 {
		o.QueryCacheBytes = DefaultQueryCacheBytes
	}
	if o.PersistedQueryCacheBytes == 0 {
		o.PersistedQueryCacheBytes = DefaultPersistedQueryCacheBytes
	}
	if o.MaxCachedDocumentBytes == 0 {
		o.MaxCachedDocumentBytes = DefaultMaxCachedDocumentBytes
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = cache.DefaultMaxValueBytes
	}
	o.Subscriptions = o.Subscriptions.withDefaults()
	return o
}

// executorSettings is what configures gqlgen's executor, on the server
// (*handler.Server) and on an executor of its own (*executor.Executor).
type executorSettings interface {
	Use(graphql.HandlerExtension)
	SetQueryCache(graphql.Cache[*ast.QueryDocument])
	SetErrorPresenter(graphql.ErrorPresenterFunc)
	SetRecoverFunc(graphql.RecoverFunc)
	SetParserTokenLimit(int)
	SetDisableSuggestion(bool)
}

// NewHandler returns the GraphQL endpoint: POST with a JSON body, GET for
// queries (gqlgen refuses mutations over GET), OPTIONS for preflight.
// Parsed queries are cached, Automatic Persisted Queries are supported
// (both caches bounded in bytes, doccache.go), and errors are presented as
// described in errors.go.
func NewHandler(r *Resolver, opts HandlerOptions) http.Handler {
	h, _ := newHandler(r, opts)
	return h
}

// newHandler is NewHandler, and the compiled read path it uses (nil when
// off), for the tests that count what the path answered.
func newHandler(r *Resolver, opts HandlerOptions) (http.Handler, *compiledReads) {
	opts = opts.withDefaults()
	log := opts.Logger
	cfg := Config{Resolvers: r}
	cfg.Directives.Auth = authDirective(opts.Auth)
	// A cacheGetMany costs what its keys cost.
	cfg.Complexity.Query.CacheGetMany = func(child int, keys []string) int { return 1 + len(keys) }
	// A batch costs what its entries cost, as cacheGetMany does.
	cfg.Complexity.Mutation.CacheSetMany = func(child int, entries []*model.CacheSetInput) int { return 1 + len(entries) }
	cfg.Complexity.Mutation.CacheDeleteMany = func(child int, keys []string) int { return 1 + len(keys) }
	es := NewExecutableSchema(cfg)
	srv := handler.New(es)
	persisted := newPersistedCache(opts.PersistedQueryCacheBytes, opts.MaxCachedDocumentBytes)
	presenter, recoverFunc := presentError(log), recoverPanic(log)
	var compiled *compiledReads
	if !opts.NoCompiledReads {
		compiled = &compiledReads{
			presenter: presenter, recover: recoverFunc,
			es: es, resolver: r, auth: opts.Auth, complexity: opts.Limits.Complexity, persisted: persisted,
			maxResponse: opts.MaxResponseBytes, maxValue: opts.MaxValueBytes,
			// Plans hold the parsed document: bounded like the parsed-query
			// cache, and by the same weight.
			plans:   newDocCache(opts.QueryCacheBytes, opts.MaxCachedDocumentBytes, planWeight),
			refused: newDocCache(opts.QueryCacheBytes/4, opts.MaxCachedDocumentBytes, func(key string, _ bool, _ int) int { return allocated(len(key)) + entryOverhead }),
		}
	}
	// Only these transports: JSON POST, GET for queries (mutations are
	// refused over GET), OPTIONS. No form or multipart transports, so a
	// browser cannot be made to send a cross-site write without a CORS
	// preflight. POST and GET are this package's own (request.go), so that
	// a request that is not a GraphQL request gets a coded error, and a
	// request refused before execution is answered as GraphQL over HTTP
	// says; a POST in any other media type gets a coded 415 that names the
	// one accepted.
	if sub := opts.Subscriptions; sub.Sockets != nil {
		// First: an upgrade is a GET, which getQuery would take.
		sub.Sockets.opts = sub
		srv.AddTransport(websocketTransport(sub, opts.Auth))
	}
	srv.AddTransport(transport.Options{})
	srv.AddTransport(getQuery{})
	srv.AddTransport(postJSON{compiled: compiled})
	srv.AddTransport(unsupportedMedia{}) // last: any other POST
	parsed := newParsedCache(opts.QueryCacheBytes, opts.MaxCachedDocumentBytes)
	configure := func(x executorSettings) {
		x.SetQueryCache(parsed)
		if opts.Introspection {
			x.Use(extension.Introspection{})
		} else {
			x.Use(noIntrospection{})
		}
		x.SetDisableSuggestion(opts.NoSuggestions)
		// Parameter mutators run in the order they are added: the token
		// limit must see the query APQ found by its hash.
		x.Use(persistedQueries{store: persisted})
		if opts.Limits.Tokens > 0 {
			x.Use(tokenLimit{max: opts.Limits.Tokens, parsed: parsed})
			// The parser's own limit stays as a backstop; tokenLimit
			// refuses first, with its own code.
			x.SetParserTokenLimit(opts.Limits.Tokens)
		}
		// Shape limits (and the literal check) run first: the complexity
		// limit reads argument values.
		x.Use(shapeLimits{opts.Limits})
		// Values as the client sent them, before anything decodes
		// arguments.
		x.Use(rawValues{schema: es.Schema()})
		if opts.Limits.Complexity > 0 {
			x.Use(extension.FixedComplexityLimit(opts.Limits.Complexity))
		}
		// Outside the warnings: a refused response drops them with the
		// rest.
		x.Use(responseLimit{limit: opts.MaxResponseBytes, maxValue: opts.MaxValueBytes})
		x.Use(warnings{})
		x.SetErrorPresenter(presenter)
		x.SetRecoverFunc(recoverFunc)
	}
	configure(srv)
	if sub := opts.Subscriptions; sub.Sockets != nil && !opts.NoCompiledReads {
		// The live subscriptions' executor (live.go): gqlgen's
		// configuration, to admit a subscription exactly as gqlgen would.
		exec := executor.New(es)
		configure(exec)
		sub.Sockets.live = &liveSubscriptions{exec: exec, resolver: r, auth: opts.Auth, shapes: map[string]*eventShape{}}
	}
	return front{compiled: compiled, next: srv, sockets: opts.Subscriptions.Sockets}, compiled
}
