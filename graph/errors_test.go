package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/cache"
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
		{"introspection off", &gqlerror.Error{Message: "__schema introspection disabled"}, "introspection is disabled on this service", CodeIntrospectionDisabled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			present := presentError(slog.New(slog.NewTextHandler(&logs, nil)))
			got := present(context.Background(), tt.err)
			if got.Message != tt.wantMsg || got.Extensions["code"] != tt.wantCode {
				t.Errorf("presentError(%v) = %q, code %v; want %q, %s", tt.err, got.Message, got.Extensions["code"], tt.wantMsg, tt.wantCode)
			}
			if logged := logs.Len() > 0; logged != tt.logged {
				t.Errorf("logged = %v; want %v (%s)", logged, tt.logged, logs.String())
			}
			if tt.logged && !strings.Contains(logs.String(), "secret detail") {
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
