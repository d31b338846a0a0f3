package graph

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

// Error codes in extensions.code and in extensions.warnings[].code.
const (
	// CodeBadUserInput: an argument was not acceptable; nothing was stored.
	CodeBadUserInput = "BAD_USER_INPUT"
	// CodeRedisRejected: Redis answered a read with an error (for example
	// the key holds a non-string type written by another program).
	CodeRedisRejected = "REDIS_REJECTED"
	// CodeValueTooLarge: Redis holds a value at the key larger than
	// CACHE_MAX_VALUE_BYTES (written by another program); it is not
	// returned.
	CodeValueTooLarge = "VALUE_TOO_LARGE"
	// CodeBadRequest: the request itself could not be read (a body that
	// is not JSON, say), or its persistedQuery extension is not an object
	// with a sha256Hash string and a numeric version.
	CodeBadRequest = "BAD_REQUEST"
	// CodeUnsupportedMediaType: a POST whose Content-Type is not
	// application/json (HTTP 415).
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	// CodeMethodNotAllowed: a mutation sent with GET (HTTP 405).
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// CodeIntrospectionDisabled: __schema or __type while introspection is
	// off (GRAPHQL_INTROSPECTION).
	CodeIntrospectionDisabled = "INTROSPECTION_DISABLED"
	// CodeInternal: anything else; details are in the service log only.
	CodeInternal = "INTERNAL_SERVER_ERROR"

	// WarningRedisUnavailable: a read was answered as a miss because Redis
	// was unreachable.
	WarningRedisUnavailable = "REDIS_UNAVAILABLE"
	// WarningNoReply: a read was answered as a miss because Redis did not
	// reply within the command timeout.
	WarningNoReply = "NO_REPLY"
	// WarningServedFromMemory: Redis was unavailable and the in-process
	// fallback tier answered the read.
	WarningServedFromMemory = "SERVED_FROM_MEMORY"
)

// codedError is an error written for the client, shown with its message
// and code.
type codedError struct{ code, msg string }

func (e codedError) Error() string { return e.msg }

func coded(code, format string, args ...any) error {
	return codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

func badInput(format string, args ...any) error {
	return coded(CodeBadUserInput, format, args...)
}

// presentError decides what a client sees for an error: its own mistakes in
// full, Redis refusing a read as such, and anything else as a generic message
// whose detail goes to the log only.
//
// Errors are told apart by type and code, never by message text: this
// package's codedError, the cache's sentinel errors, model.ErrNotJSON, and
// the extensions.code set where an error is made (gqlgen's errcode codes
// for parse and validation errors, and COMPLEXITY_LIMIT_EXCEEDED; this
// package's request checks in limits.go, request.go, text.go and budget.go
// for the token limit, introspection, APQ, request bodies and their text,
// and the response budget).
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	var limit logThrottle
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var ce codedError
		switch {
		case errors.As(err, &ce):
			gqlErr.Message = ce.msg
			setCode(gqlErr, ce.code)
		case errors.Is(err, cache.ErrInvalidInput):
			gqlErr.Message = strings.TrimPrefix(unwrapGQL(err).Error(), cache.ErrInvalidInput.Error()+": ")
			setCode(gqlErr, CodeBadUserInput)
		case errors.Is(err, cache.ErrRejected):
			gqlErr.Message = "Redis rejected the command"
			setCode(gqlErr, CodeRedisRejected)
		case errors.Is(err, cache.ErrValueTooLarge):
			gqlErr.Message = strings.TrimPrefix(unwrapGQL(err).Error(), cache.ErrValueTooLarge.Error()+": ")
			setCode(gqlErr, CodeValueTooLarge)
		case errors.Is(err, model.ErrNotJSON), errors.Is(err, model.ErrNotInt64):
			// An argument gqlgen could not decode: the client's doing.
			setCode(gqlErr, CodeBadUserInput)
		case hasCode(gqlErr):
			// Coded where it was made: already written for the client.
		default:
			if ok, repeats := limit.allow(err.Error()); ok {
				log.ErrorContext(ctx, "graphql internal error", slog.String("path", gqlErr.Path.String()), slog.String("error", err.Error()), slog.Int("similarSinceLastLog", repeats))
			}
			gqlErr.Message = "internal server error"
			setCode(gqlErr, CodeInternal)
		}
		return gqlErr
	}
}

func unwrapGQL(err error) error {
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) && gqlErr.Err != nil {
		return gqlErr.Err
	}
	return err
}

func hasCode(e *gqlerror.Error) bool {
	_, ok := e.Extensions["code"]
	return ok
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// recoverPanic logs a panic with its stack and shows the client a generic
// error. A client that can trigger one must not be able to flood the log
// with stacks: each distinct panic is logged at most once a minute, with a
// count of the repeats held back.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	var limit logThrottle
	return func(ctx context.Context, p any) error {
		msg := fmt.Sprint(p)
		if ok, repeats := limit.allow(msg); ok {
			log.ErrorContext(ctx, "graphql panic", slog.String("panic", msg), slog.Int("similarSinceLastLog", repeats), slog.String("stack", string(debug.Stack())))
		}
		return errors.New("internal server error")
	}
}

// logThrottle lets one line a minute through per key and counts the rest,
// so that errors a client can provoke cannot flood the log.
type logThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func (l *logThrottle) allow(key string) (ok bool, repeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, seen := l.last[key]; seen && now.Sub(t) < time.Minute {
		l.held[key]++
		return false, 0
	}
	if l.last == nil || len(l.last) > 1000 { // bounded, whatever the keys
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	l.last[key] = now
	repeats, l.held[key] = l.held[key], 0
	return true, repeats
}

// A warning tells the client that a field's value stands in for an answer
// Redis could not give (a miss during an outage), without making it an
// error: the response still has data.
type warning struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Path    ast.Path `json:"path"`
}

type warningList struct {
	mu    sync.Mutex
	items []warning
}

type warningsKey struct{}

// warnings is a gqlgen extension that collects warnings raised while
// resolving and puts them in the response's extensions.warnings.
type warnings struct{}

var _ graphql.ResponseInterceptor = warnings{}

func (warnings) ExtensionName() string                   { return "CacheWarnings" }
func (warnings) Validate(graphql.ExecutableSchema) error { return nil }

func (warnings) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	list := &warningList{}
	resp := next(context.WithValue(ctx, warningsKey{}, list))
	if resp == nil {
		return resp
	}
	// Root query fields resolve concurrently, so errors and warnings arrive
	// in whatever order the fields finish; they are put in the order of the
	// fields they are about, so that one request always gets one answer
	// (and the compiled read path can give the same bytes).
	order := fieldOrder(ctx)
	slices.SortStableFunc(resp.Errors, func(a, b *gqlerror.Error) int { return comparePaths(order, a.Path, b.Path) })
	if len(list.items) == 0 {
		return resp
	}
	slices.SortStableFunc(list.items, func(a, b warning) int { return comparePaths(order, a.Path, b.Path) })
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["warnings"] = list.items
	return resp
}

// fieldOrder numbers the operation's root fields by response key, in the
// order the response holds them.
func fieldOrder(ctx context.Context) map[string]int {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil {
		return nil
	}
	root := "Query"
	if oc.Operation.Operation == ast.Mutation {
		root = "Mutation"
	}
	fields := graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{root})
	order := make(map[string]int, len(fields))
	for i, f := range fields {
		order[f.Alias] = i
	}
	return order
}

// comparePaths orders two paths: no path first, then by root field, then
// by list index and the rest of the path.
func comparePaths(order map[string]int, a, b ast.Path) int {
	switch {
	case len(a) == 0 || len(b) == 0:
		return cmp.Compare(len(a), len(b))
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		var c int
		switch x := a[i].(type) {
		case ast.PathName:
			y, ok := b[i].(ast.PathName)
			if !ok {
				return 1
			}
			if i == 0 {
				c = cmp.Compare(order[string(x)], order[string(y)])
			}
			if c == 0 {
				c = strings.Compare(string(x), string(y))
			}
		case ast.PathIndex:
			y, ok := b[i].(ast.PathIndex)
			if !ok {
				return -1
			}
			c = cmp.Compare(int(x), int(y))
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// addWarning records a warning for the field being resolved. Fields of one
// query may resolve concurrently, hence the lock.
func addWarning(ctx context.Context, code, message string) {
	list, _ := ctx.Value(warningsKey{}).(*warningList)
	if list == nil {
		return
	}
	list.mu.Lock()
	list.items = append(list.items, warning{Code: code, Message: message, Path: graphql.GetPath(ctx)})
	list.mu.Unlock()
}
