// Command cache-service serves a Redis-backed cache over GraphQL, with REST
// health endpoints for load balancers. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/cors"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/graph"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/metrics"
	"github.com/school-erp/cache-service/internal/playground"
	"github.com/school-erp/cache-service/internal/ratelimit"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // run drains and shuts down gracefully
		sig := <-signals
		// An operator (or an orchestrator) who asks twice does not want to
		// wait for the drain and the in-flight requests. Nothing is lost
		// from the log: the logger writes each line straight to stdout.
		fmt.Fprintf(os.Stderr, "cache-service: second %v while shutting down: exiting now\n", sig)
		os.Exit(signalExitCode(sig))
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cache-service:", err)
		os.Exit(1)
	}
}

// signalExitCode is the status for a process ended by sig, as shells
// report one killed by it: 128 + the signal number (130 for SIGINT, 143
// for SIGTERM).
func signalExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// run starts the service and blocks until ctx is cancelled, then shuts down
// gracefully. Configuration comes from getenv (os.Getenv in production) and
// a .env file; run never reads the process environment itself, so tests
// start services in parallel, each with its own variables. Logs, -h and
// --version go to stdout. Errors, a usage error among them, are returned,
// for main to print once on stderr; run itself writes nothing there.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("cache-service", flag.ContinueOnError)
	// Parse reports errors to run's caller, once; -h prints help to stdout.
	flags.SetOutput(io.Discard)
	envFile := flags.String("env-file", ".env", "read variables from this file (the default one only when it exists); the environment wins (empty: none)")
	checkConfig := flags.Bool("check-config", false, "validate the configuration, print it (secrets redacted), try one connection to Redis, report what was negotiated, and exit: 0 only if all is well")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return printHelp(stdout, flags)
		}
		return fmt.Errorf("%w (cache-service -h lists the flags and variables)", err)
	}
	if *showVersion {
		_, err := fmt.Fprintf(stdout, "cache-service %s (%s %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return err
	}
	var dotenv map[string]string
	if *envFile != "" {
		// The default .env is optional; a file named on the command line
		// is not: a typo there must not start the service on defaults.
		named := false
		flags.Visit(func(f *flag.Flag) { named = named || f.Name == "env-file" })
		if _, err := os.Stat(*envFile); named && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("-env-file %s: no such file (only the default .env may be absent)", *envFile)
		}
		var err error
		if dotenv, err = config.ReadDotenv(*envFile); err != nil {
			return err
		}
	}
	cfg, err := config.Load(getenv, dotenv)
	if err != nil {
		return err
	}
	if *checkConfig {
		return checkConfiguration(ctx, cfg, stdout)
	}
	logger := newLogger(cfg, stdout)
	logger.Info("starting", slog.String("version", buildVersion()), slog.String("goVersion", runtime.Version()), slog.Any("config", cfg))
	if ignored := cfg.IgnoredByURL(); len(ignored) > 0 {
		logger.Warn("REDIS_URL from the environment replaces these variables from the .env file", slog.Any("ignored", ignored))
	}
	if cfg.Redis.TLSInsecureSkipVerify {
		logger.Warn("REDIS_TLS_INSECURE_SKIP_VERIFY=true: the Redis server certificate is not verified; anyone on the path can impersonate it (refused in production)")
	}
	if cfg.AppEnv == config.EnvProduction && !cfg.Redis.TLS {
		logger.Warn("TLS to Redis is off in production (REDIS_TLS_ALLOW_PLAINTEXT=true): traffic, passwords included, travels in the clear")
	}

	var m *metrics.Metrics
	opts := cacheOptions(cfg, logger)
	if cfg.MetricsEnabled {
		m = metrics.New()
		m.SetBuildInfo(buildVersion(), runtime.Version())
		opts.Observer = m
	}
	client, err := cache.New(opts)
	if err != nil {
		return err // a TLS file that cannot be read, say: a configuration error
	}
	defer client.Close()
	if m != nil {
		m.WatchHealth(client.Health)
	}
	if opts.Fallback == cache.FallbackMemory {
		logger.Info("fallback tier on (CACHE_FALLBACK=memory): while Redis is unavailable this instance serves the cache from its own memory; those values are not shared with other instances and are dropped when Redis returns",
			slog.Int("maxBytes", opts.FallbackMaxBytes))
	}

	// The configuration allows no tokens in development only. An open API
	// is asked for by name, so that no empty list can open one.
	authn := auth.New(authTokens(cfg.Tokens))
	if len(cfg.Tokens) == 0 {
		authn = auth.OpenAccess()
		logger.Warn("no API tokens configured: anyone who can reach the port may read and write the cache (allowed in development only; set API_TOKENS)")
	}
	limiter, err := ratelimit.New(rateLimits(cfg, authn.Open()))
	if err != nil {
		return err
	}
	defer limiter.Close()
	var draining atomic.Bool
	var sockets *graph.Sockets
	if cfg.SubscriptionsEnabled {
		sockets = graph.NewSockets()
	}
	handler := newServer(logger, cfg, deps{cache: client, metrics: m, auth: authn, limiter: limiter, draining: &draining, sockets: sockets})
	// SIGHUP reloads API_TOKENS_FILE, for as long as run runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloading, stopReloading := context.WithCancel(ctx)
	defer stopReloading()
	go func() {
		for {
			select {
			case <-hup:
				reloadTokens(cfg, authn, sockets, logger)
			case <-reloading.Done():
				return
			}
		}
	}()

	// Every listener is closed on every way out of run, whatever fails
	// after it opened (http.Server.Serve closes it too; a second Close is
	// harmless).
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)), err)
	}
	defer ln.Close()
	// Handlers run under a context of their own, cancelled only once
	// SHUTDOWN_TIMEOUT has passed: ctx ends at the first signal, when the
	// requests in flight must still be allowed to finish.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var running inFlight
	servers := []*http.Server{newHTTPServer(running.track(handler), logger, handlerCtx)}
	listeners := []net.Listener{ln}
	if m != nil && cfg.MetricsPort != 0 {
		mln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.MetricsPort)))
		if err != nil {
			return fmt.Errorf("listen on METRICS_PORT %s: %w", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.MetricsPort)), err)
		}
		defer mln.Close()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		servers = append(servers, newHTTPServer(running.track(mux), logger, handlerCtx))
		listeners = append(listeners, mln)
		logger.Info("metrics listening", slog.String("addr", mln.Addr().String()))
	}
	serveErr := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { serveErr <- srv.Serve(listeners[i]) }()
	}
	logger.Info("listening", slog.String("addr", ln.Addr().String()))

	var failed error
	serving := len(servers)
	select {
	case err := <-serveErr:
		// One server stopped by itself: stop the others too, below, rather
		// than return with them still serving.
		failed = fmt.Errorf("http server: %w", err)
		serving--
	case <-ctx.Done():
		// Fail /health first and keep serving for a while, so load
		// balancers stop sending traffic before the listener closes.
		draining.Store(true)
		logger.Info("shutting down", slog.Duration("drainDelay", cfg.ShutdownDrainDelay), slog.Duration("timeout", cfg.ShutdownTimeout))
		time.Sleep(cfg.ShutdownDrainDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if sockets != nil {
		// WebSockets are hijacked connections, which http.Server.Shutdown
		// neither closes nor waits for: close them with 1001 (going away),
		// so that clients reconnect to another instance, and wait for
		// their handlers.
		if n := sockets.Open(); n > 0 {
			logger.Info("closing websockets", slog.Int("sockets", n))
		}
		if err := sockets.Shutdown(shutdownCtx); err != nil {
			logger.Warn("websockets did not close within SHUTDOWN_TIMEOUT", slog.String("error", err.Error()))
		}
	}
	stopServing(shutdownCtx, logger, servers, cancelHandlers, &running)
	for range serving {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("http server", slog.String("error", err.Error()))
		}
	}
	// Only now, with no handler left to use it (but one that ignored its
	// cancellation for cancelGrace), is the cache client closed.
	cut := running.count()
	client.Close()
	if failed != nil {
		return failed
	}
	logger.Info("stopped", slog.Int64("requestsCut", cut))
	return nil
}

// printHelp is -h and --help: the flags, then every environment variable
// with its default and description, from the configuration's own tags.
func printHelp(w io.Writer, flags *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString("Usage: cache-service [flags]\n\n" +
		"Serves a Redis-backed cache over GraphQL, with REST health endpoints.\n" +
		"Configured by environment variables, and a .env file in the working\n" +
		"directory when it exists (the environment wins). See README.md.\n\nFlags:\n")
	flags.SetOutput(&b)
	flags.PrintDefaults()
	flags.SetOutput(io.Discard)
	b.WriteString("\nEnvironment variables (an empty value means the default):\n")
	for _, v := range config.Variables() {
		b.WriteString("  " + v.Name)
		if v.Default != "" {
			b.WriteString(" (default " + strconv.Quote(v.Default) + ")")
		}
		b.WriteString("\n    \t" + v.Description + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cancelGrace is how long handlers still running at SHUTDOWN_TIMEOUT have,
// once their contexts are cancelled, to return before their connections
// and the cache client are closed under them. Ours return within
// milliseconds (valkey-go stops waiting for a reply when the context ends);
// the bound is for one that does not.
const cancelGrace = time.Second

// stopServing stops the servers. Until ctx ends (SHUTDOWN_TIMEOUT) the
// requests in flight may finish as usual; then the handlers still running
// have their contexts cancelled and cancelGrace to return and write their
// answers, and only then are their connections closed. When it returns
// nothing listens, and no handler runs unless one ignored its context.
func stopServing(ctx context.Context, logger *slog.Logger, servers []*http.Server, cancelHandlers context.CancelFunc, running *inFlight) {
	late := false
	for _, srv := range servers {
		// Shutdown closes the listeners and idle connections at once, and
		// returns an error only if ctx ends before the others are idle.
		if srv.Shutdown(ctx) != nil {
			late = true
		}
	}
	if late {
		logger.Warn("in-flight requests did not finish within SHUTDOWN_TIMEOUT; cancelling them", slog.Int64("requests", running.count()))
		cancelHandlers()
		graceCtx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		if !running.wait(graceCtx) {
			logger.Warn("requests still running after cancellation; closing their connections and the cache under them", slog.Int64("requests", running.count()), slog.Duration("grace", cancelGrace))
		}
	}
	for _, srv := range servers {
		_ = srv.Close()
	}
}

// inFlight counts the handlers running, so that shutdown can wait for them
// before it closes the cache client they use.
type inFlight struct{ n atomic.Int64 }

func (f *inFlight) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.n.Add(-1)
		next.ServeHTTP(w, r)
	})
}

func (f *inFlight) count() int64 { return f.n.Load() }

// wait reports whether no handler runs, waiting for that until ctx ends.
// It polls, as http.Server.Shutdown does: a handler may still start on a
// connection being read (a WaitGroup must not be added to while waited on).
func (f *inFlight) wait(ctx context.Context) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for f.n.Load() > 0 {
		select {
		case <-ctx.Done():
			return f.n.Load() == 0
		case <-tick.C:
		}
	}
	return true
}

// checkConfiguration is --check-config: the configuration has loaded and
// validated; print it, then try Redis once.
func checkConfiguration(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	out := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	out.Info("configuration valid", slog.Any("config", cfg))
	opts := cacheOptions(cfg, slog.New(slog.DiscardHandler))
	opts.Fallback = cache.FallbackNone // the check is about Redis, not the fallback
	report, err := cache.Check(ctx, opts)
	h := report.Health
	if err != nil {
		out.Info("redis check failed", slog.String("addr", h.Addr), slog.String("status", string(h.Status)), slog.String("cause", err.Error()))
		return fmt.Errorf("redis check failed: %w", err)
	}
	attrs := []any{
		slog.String("status", string(h.Status)), slog.String("addr", h.Addr), slog.String("mode", string(h.Mode)),
		slog.Int("resp", h.RESP), slog.String("clientCache", string(h.ClientCache)), slog.Bool("tls", h.TLS),
		slog.Duration("latency", h.Latency),
	}
	if report.TLSVersion != "" {
		attrs = append(attrs, slog.String("tlsVersion", report.TLSVersion))
	}
	if h.Server != nil {
		attrs = append(attrs, slog.String("server", h.Server.Version))
	}
	if h.Cluster != nil {
		attrs = append(attrs, slog.String("clusterState", h.Cluster.State), slog.Int("clusterNodes", h.Cluster.Nodes))
	}
	out.Info("redis check passed", attrs...)
	return nil
}

// reloadTokens reads API_TOKENS_FILE (and API_TOKENS) again: a token
// taken out of the file is refused from the next request on, and the
// sockets it opened are closed with 4403. A file that cannot be read, or
// holds a bad entry or no token at all, changes nothing: the tokens in use
// stay, and the error is logged. Rate limits stay as configured at start
// (RATE_LIMIT_TOKENS names tokens; a new token gets RATE_LIMIT_RPS).
func reloadTokens(cfg *config.Config, authn *auth.Authenticator, sockets *graph.Sockets, log *slog.Logger) {
	switch {
	case authn.Open():
		log.Warn("SIGHUP: this instance runs without tokens (development): nothing to reload; a restart with API_TOKENS or API_TOKENS_FILE adds some")
		return
	case cfg.APITokensFile == "":
		log.Warn("SIGHUP: API_TOKENS_FILE is not set: nothing to reload (a change of API_TOKENS takes a restart)")
		return
	}
	tokens, err := cfg.LoadTokens()
	if err == nil && len(tokens) == 0 {
		err = errors.New("no token in API_TOKENS or API_TOKENS_FILE: every request would be refused")
	}
	if err != nil {
		log.Error("API tokens not reloaded: the tokens in use stay", slog.String("error", err.Error()))
		return
	}
	authn.Replace(authTokens(tokens))
	closed := 0
	if sockets != nil {
		closed = sockets.Revoke(authn)
	}
	log.Info("API tokens reloaded", slog.Int("tokens", len(tokens)), slog.Int("socketsClosed", closed))
}

func authTokens(tokens []config.Token) []auth.Token {
	out := make([]auth.Token, len(tokens))
	for i, t := range tokens {
		out[i] = auth.Token{Name: t.Name, Value: t.Value, Scope: auth.ScopeRead}
		if t.Scope == "write" {
			out[i].Scope = auth.ScopeWrite
		}
	}
	return out
}

// Connection bounds. A client has readHeaderTimeout to send a request's
// headers, and a kept-alive connection may stay idle for idleTimeout, so a
// slow or idle client costs a socket and a goroutine for that long at most
// and holds nothing else: the server closes it (see
// TestSlowClientsDoNotStarveTheServer). GraphQL bodies have a bound of
// their own (GRAPHQL_BODY_TIMEOUT, admission.go), as do GraphQL answers;
// readTimeout and writeTimeout bound everything else.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// newHTTPServer serves h; every request's context derives from base.
func newHTTPServer(h http.Handler, logger *slog.Logger, base context.Context) *http.Server {
	return &http.Server{
		Handler:           h,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// deps are what the routes need beyond the configuration.
type deps struct {
	cache    *cache.Client
	metrics  *metrics.Metrics // nil: metrics off
	auth     *auth.Authenticator
	limiter  *ratelimit.Limiter // nil: no rate limiting
	draining *atomic.Bool
	sockets  *graph.Sockets // nil: subscriptions off
}

// newServer wires the routes. Every dependency comes in as a parameter.
func newServer(logger *slog.Logger, cfg *config.Config, d deps) http.Handler {
	resolver := &graph.Resolver{Cache: d.cache}
	subs := graph.SubscriptionOptions{Sockets: d.sockets}
	if d.sockets != nil {
		resolver.Changes = d.cache
		subs.MaxKeys = cfg.SubscriptionMaxKeys
		subs.MaxPerSocket = cfg.SubscriptionMaxPerSocket
		subs.MaxSocketsPerToken = cfg.SubscriptionMaxSocketsPerToken
		subs.MaxSockets = cfg.SubscriptionMaxSockets
		subs.KeepAlive = cfg.SubscriptionKeepAlive
		subs.InitTimeout = cfg.SubscriptionInitTimeout
		subs.SlowTimeout = cfg.SubscriptionSlowTimeout
		subs.Queue = cfg.SubscriptionQueue
		subs.CheckOrigin = websocketOrigin(cfg)
		if d.metrics != nil {
			subs.Observer = d.metrics
		}
	}
	api := graph.NewHandler(resolver, graph.HandlerOptions{
		Introspection: cfg.Introspection,
		NoSuggestions: !cfg.FieldSuggestions,
		Auth:          d.auth,
		Limits: graph.Limits{
			Complexity: cfg.GraphQLMaxComplexity,
			Depth:      cfg.GraphQLMaxDepth,
			Tokens:     cfg.GraphQLMaxTokens,
			Aliases:    cfg.GraphQLMaxAliases,
			Operations: cfg.GraphQLMaxOperations,
		},
		QueryCacheBytes:          cfg.GraphQLQueryCacheBytes,
		PersistedQueryCacheBytes: cfg.GraphQLAPQCacheBytes,
		MaxCachedDocumentBytes:   cfg.GraphQLCacheMaxDocumentBytes,
		MaxResponseBytes:         cfg.GraphQLMaxResponseBytes,
		MaxValueBytes:            cfg.Cache.MaxValueBytes,
		Logger:                   logger,
		Subscriptions:            subs,
	})
	var gql http.Handler = api
	// Outermost first: answer CORS, admit only known callers, limit their
	// rate, shed what is beyond the in-flight bound, read the body within
	// its size and time bounds (only once all of that passed), then bound
	// the rest of the request in time. See admission.go. Health endpoints
	// pass none of this.
	gql = newGate(gateOptions{
		auth: d.auth, limiter: d.limiter, maxInFlight: cfg.MaxInFlight,
		bodyLimit: cfg.MaxRequestBytes, bodyTimeout: cfg.GraphQLBodyTimeout, requestTimeout: cfg.GraphQLRequestTimeout,
	}, gql)
	if len(cfg.AllowedOrigins) > 0 {
		// (rs/cors reads an empty list as "any origin": none means no
		// CORS headers at all, so browsers refuse cross-origin calls.)
		gql = cors.New(cors.Options{
			AllowedOrigins: cfg.AllowedOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Content-Type", "Authorization"},
			MaxAge:         600,
		}).Handler(gql)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /graphql", gql)
	mux.Handle("GET /graphql", gql)
	mux.Handle("OPTIONS /graphql", gql)
	h := &healthHandlers{
		cache: d.cache, draining: d.draining, redisRequired: cfg.Redis.Required, version: buildVersion(),
		details: func(r *http.Request) bool {
			return cfg.AppEnv == config.EnvDevelopment || d.auth.Open() || d.auth.Identify(r).Authenticated()
		},
	}
	mux.HandleFunc("GET /health", h.service)
	mux.HandleFunc("GET /health/redis", h.redis)
	mux.HandleFunc("GET /livez", h.livez)
	mux.HandleFunc("GET /readyz", h.readyz)
	if cfg.Playground {
		playground.Mount(mux, "School ERP cache", "/graphql")
	}
	if d.metrics != nil && cfg.MetricsPort == 0 {
		metrics := d.metrics.Handler()
		if cfg.AppEnv != config.EnvDevelopment && !d.auth.Open() {
			// On the API port, metrics (Redis state, latencies, traffic)
			// are for token holders, like health details; METRICS_PORT
			// puts them on a port of their own instead.
			metrics = requireToken(d.auth, metrics)
		}
		mux.Handle("GET /metrics", metrics)
	}
	routes := hotRoutes{mux: mux, graphql: gql, health: http.HandlerFunc(h.service)}
	if d.sockets != nil {
		// A WebSocket passes none of the request gate (its bounds are for
		// a request, and its token may come in connection_init) and no
		// CORS (browsers do not apply it to WebSockets): the GraphQL
		// handler admits it (graph/sockets.go).
		routes.websocket = api
	}
	return routes
}

// websocketOrigin is the Origin rule for WebSocket upgrades: browsers send
// Origin and do not apply CORS to WebSockets, so a page of any site could
// open one with the user's cookies or network position (cross-site
// WebSocket hijacking). Outside development the Origin must be the
// service's own host or one of CORS_ALLOWED_ORIGINS; a client that sends
// no Origin is not a browser, and its token decides.
func websocketOrigin(cfg *config.Config) func(*http.Request) bool {
	if cfg.AppEnv == config.EnvDevelopment {
		return nil
	}
	allowed := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		allowed[strings.ToLower(o)] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || allowed["*"] || allowed[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
}

// hotRoutes sends the two routes called on every request of a client or a
// load balancer straight to their handlers, and everything else (other
// methods on them included, for their 405) through the mux: matching its
// patterns costs about as much as the health handler itself.
type hotRoutes struct {
	mux             *http.ServeMux
	graphql, health http.Handler
	// websocket takes the upgrades to /graphql; nil: subscriptions off.
	websocket http.Handler
}

func (h hotRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case h.websocket != nil && r.URL.Path == "/graphql" && graph.IsWebSocketUpgrade(r):
		h.websocket.ServeHTTP(w, r)
	case r.URL.Path == "/graphql" && (r.Method == http.MethodPost || r.Method == http.MethodGet || r.Method == http.MethodOptions):
		h.graphql.ServeHTTP(w, r)
	case r.URL.Path == "/health" && r.Method == http.MethodGet:
		h.health.ServeHTTP(w, r)
	default:
		h.mux.ServeHTTP(w, r)
	}
}

// requireToken answers 401 unless the request carries a known token (of
// any scope).
func requireToken(a *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Identify(r).Authenticated() {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rateLimits are each token's limit and, where anonymous calls are let in
// at all (open access), theirs.
func rateLimits(cfg *config.Config, open bool) ratelimit.Options {
	opts := ratelimit.Options{Tokens: map[string]ratelimit.Limit{}}
	for name, l := range cfg.TokenRateLimits {
		opts.Tokens[name] = ratelimit.Limit{Rate: l.RPS, Burst: l.Burst}
	}
	if open {
		opts.Anonymous = ratelimit.Limit{Rate: cfg.AnonymousRateLimit.RPS, Burst: cfg.AnonymousRateLimit.Burst}
	}
	return opts
}

func cacheOptions(cfg *config.Config, logger *slog.Logger) cache.Options {
	r := cfg.Redis
	opts := cache.Options{
		Username:            r.Username,
		Password:            r.Password,
		DB:                  r.DB,
		KeyPrefix:           r.KeyPrefix,
		DialTimeout:         r.DialTimeout,
		CommandTimeout:      r.CommandTimeout,
		MaxRetries:          r.MaxRetries,
		ReconnectMinBackoff: r.ReconnectMinBackoff,
		ReconnectMaxBackoff: r.ReconnectMaxBackoff,
		ProbeInterval:       r.HealthInterval,
		DegradedLatency:     r.DegradedLatency,
		MaxValueBytes:       cfg.Cache.MaxValueBytes,
		MaxTTL:              cfg.Cache.MaxTTL,
		DisableClientCache:  !r.ClientCache,
		ClientCacheBytes:    r.ClientCacheSizeMB << 20,
		ClientCacheTTL:      r.ClientCacheTTL,
		Fallback:            cache.FallbackMode(cfg.Cache.Fallback),
		FallbackMaxBytes:    cfg.Cache.FallbackMaxBytes,
		DisableChanges:      !cfg.SubscriptionsEnabled,
		WatchQueue:          cfg.SubscriptionQueue,
		Logger:              logger,
	}
	if r.MaxRetries == 0 {
		opts.MaxRetries = -1 // cache.Options reads zero as "default"
	}
	tlsOpts := &cache.TLSOptions{
		CAFile:             r.TLSCAFile,
		CertFile:           r.TLSCertFile,
		KeyFile:            r.TLSKeyFile,
		ServerName:         r.TLSServerName,
		InsecureSkipVerify: r.TLSInsecureSkipVerify,
	}
	if r.TLS {
		opts.TLS = tlsOpts
	}
	switch r.Mode {
	case "sentinel":
		opts.Sentinel = cache.SentinelOptions{
			Addrs:     r.SentinelAddrs,
			MasterSet: r.SentinelMaster,
			Username:  r.SentinelUsername,
			Password:  r.SentinelPassword,
		}
		if r.SentinelTLSOn {
			opts.Sentinel.TLS = tlsOpts
		}
	case "cluster":
		opts.ClusterAddrs = r.ClusterAddrs
	default:
		opts.Addr = r.Addr()
	}
	return opts
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		// The JSON handler writes a time.Duration as integer nanoseconds
		// (latency=412000); the text handler as "412µs". Log readers want
		// the latter in both.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
