package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
)

func TestPresentError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantMsg  string
		wantCode string
		logged   bool
	}{
		{"bad input from a resolver", badInput("ttlSeconds must be positive"), "ttlSeconds must be positive", CodeBadUserInput, false},
		{"bad input from the cache", fmt.Errorf("%w: key must not be empty", cache.ErrInvalidInput), "key must not be empty", CodeBadUserInput, false},
		{"redis rejected a read", fmt.Errorf("%w: WRONGTYPE Operation against a key", cache.ErrRejected), "Redis rejected the command", CodeRedisRejected, false},
		{"gqlgen validation error", &gqlerror.Error{Message: "Cannot query field", Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}}, "Cannot query field", "GRAPHQL_VALIDATION_FAILED", false},
		{"anything else", errors.New("dial tcp 10.0.0.7:6379: secret detail"), "internal server error", CodeInternal, true},
		{"introspection off, coded where refused", &gqlerror.Error{Message: "introspection is disabled on this service", Extensions: map[string]any{"code": CodeIntrospectionDisabled}}, "introspection is disabled on this service", CodeIntrospectionDisabled, false},
		{"token limit, coded where refused", &gqlerror.Error{Message: "the document exceeds the limit of 5000 tokens", Extensions: map[string]any{"code": CodeTokenLimit}}, "the document exceeds the limit of 5000 tokens", CodeTokenLimit, false},
		{"the parser's own token limit is a parse error", &gqlerror.Error{Message: "exceeded token limit of 5000", Extensions: map[string]any{"code": errcode.ParseFailed}}, "exceeded token limit of 5000", errcode.ParseFailed, false},
		{"a value gqlgen cannot encode as JSON", gqlerror.WrapPath(ast.Path{ast.PathName("cacheSet")}, fmt.Errorf("%w: json: unsupported value: +Inf", model.ErrNotJSON)), "value is not representable as JSON: json: unsupported value: +Inf", CodeBadUserInput, false},
		// As gqlgen hands over a resolver's error: wrapped at its path. The
		// message is the cause's, without the wrapper's path or the
		// sentinel's words.
		{"bad input from the cache, at its path", gqlerror.WrapPath(ast.Path{ast.PathName("cacheSet")}, fmt.Errorf("%w: key must not be empty", cache.ErrInvalidInput)), "key must not be empty", CodeBadUserInput, false},
		{"a value too large, at its index", gqlerror.WrapPath(ast.Path{ast.PathName("m"), ast.PathIndex(1)}, fmt.Errorf("%w: 2000 bytes, above 1024", cache.ErrValueTooLarge)), "2000 bytes, above 1024", CodeValueTooLarge, false},
		{"a rejected key at its index", gqlerror.WrapPath(ast.Path{ast.PathName("m"), ast.PathIndex(3)}, fmt.Errorf("%w: WRONGTYPE", cache.ErrRejected)), "Redis rejected the command", CodeRedisRejected, false},
		// Message text decides nothing: an uncoded error that reads like a
		// client's mistake is still internal.
		{"gqlgen's uncoded introspection error", errors.New("introspection disabled"), "internal server error", CodeInternal, true},
		{"text that mentions a token limit", &gqlerror.Error{Message: "upstream: exceeded token limit of 5"}, "internal server error", CodeInternal, true},
		{"text that reads like a decoding error", &gqlerror.Error{Message: "json request body could not be decoded: EOF body:"}, "internal server error", CodeInternal, true},
		{"text that reads like a JSON argument error", &gqlerror.Error{Message: "value is not representable as JSON"}, "internal server error", CodeInternal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The presenter rewrites a *gqlerror.Error in place.
			detail := tt.err.Error()
			if gqlErr, ok := tt.err.(*gqlerror.Error); ok {
				detail = gqlErr.Message
			}
			var logs bytes.Buffer
			present := presentError(slog.New(slog.NewTextHandler(&logs, nil)))
			got := present(context.Background(), tt.err)
			if got.Message != tt.wantMsg || got.Extensions["code"] != tt.wantCode {
				t.Errorf("presentError(%v) = %q, code %v; want %q, %s", tt.err, got.Message, got.Extensions["code"], tt.wantMsg, tt.wantCode)
			}
			if logged := logs.Len() > 0; logged != tt.logged {
				t.Errorf("logged = %v; want %v (%s)", logged, tt.logged, logs.String())
			}
			if tt.logged && !strings.Contains(logs.String(), detail) {
				t.Errorf("log %q lacks the detail the client was not shown", logs.String())
			}
		})
	}
}

func TestRecoveredPanicIsGenericAndThrottled(t *testing.T) {
	var logs bytes.Buffer
	recover := recoverPanic(slog.New(slog.NewTextHandler(&logs, nil)))
	for range 50 {
		if err := recover(context.Background(), "boom: internal state"); err.Error() != "internal server error" {
			t.Fatalf("recoverPanic = %v; want a generic error", err)
		}
	}
	if n := strings.Count(logs.String(), "boom: internal state"); n != 1 {
		t.Errorf("50 identical panics logged %d times; want once (then held back for a minute)", n)
	}
	_ = recover(context.Background(), "another panic")
	if !strings.Contains(logs.String(), "another panic") {
		t.Error("a different panic was not logged")
	}
}

// The throttle lets one line a minute through per key, whichever other keys
// come in between, counts what it held back, and forgets everything once it
// has seen more than 1000 keys (so its memory is bounded).
func TestLogThrottle(t *testing.T) {
	var l logThrottle
	for i, step := range []struct {
		key     string
		ok      bool
		repeats int
	}{
		{"a", true, 0}, {"b", true, 0}, {"a", false, 0}, {"b", false, 0}, {"a", false, 0}, {"c", true, 0},
	} {
		if ok, repeats := l.allow(step.key); ok != step.ok || repeats != step.repeats {
			t.Errorf("step %d: allow(%q) = %v, %d; want %v, %d", i, step.key, ok, repeats, step.ok, step.repeats)
		}
	}
	// A line held back is counted, and the count comes with the next line
	// let through: here, once the minute has passed.
	l.last["a"] = l.last["a"].Add(-2 * time.Minute)
	if ok, repeats := l.allow("a"); !ok || repeats != 2 {
		t.Errorf("allow(a) a minute later = %v, %d; want true with the 2 held back", ok, repeats)
	}
	for i := range 1001 {
		l.allow(fmt.Sprint("k", i))
	}
	if ok, _ := l.allow("b"); !ok {
		t.Error("allow(b) after 1000 other keys = false; want the throttle to have forgotten it (bounded memory)")
	}
	if n := len(l.last); n > 1001 {
		t.Errorf("the throttle remembers %d keys; want at most 1001", n)
	}
}
