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

func TestRecoveredPanicIsGeneric(t *testing.T) {
	var logs bytes.Buffer
	err := recoverPanic(slog.New(slog.NewTextHandler(&logs, nil)))(context.Background(), "boom: internal state")
	if err.Error() != "internal server error" || !strings.Contains(logs.String(), "boom: internal state") {
		t.Errorf("recoverPanic = %v, log %q; want a generic error and the panic in the log", err, logs.String())
	}
}
