package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/school-erp/cache-service/graph/model"
	"github.com/school-erp/cache-service/internal/auth"
)

// Codes for who-may-do-what.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
)

var scopes = map[model.Scope]auth.Scope{
	model.ScopeRead:  auth.ScopeRead,
	model.ScopeWrite: auth.ScopeWrite,
}

// authDirective implements @auth: it runs before the field's resolver, so
// a refused mutation stores nothing. It fails closed: a nil authenticator
// refuses every field, and only auth.OpenAccess (development without
// tokens) opens them all.
func authDirective(a *auth.Authenticator) func(ctx context.Context, obj any, next graphql.Resolver, scope model.Scope) (any, error) {
	return func(ctx context.Context, _ any, next graphql.Resolver, scope model.Scope) (any, error) {
		if err := authorize(ctx, a, scope); err != nil {
			return nil, err
		}
		return next(ctx)
	}
}

// authorize decides whether the caller in ctx may resolve a field that
// needs scope: the one rule @auth and the compiled read path (compiled.go)
// both apply.
func authorize(ctx context.Context, a *auth.Authenticator, scope model.Scope) error {
	if a.Open() {
		return nil
	}
	caller := auth.FromContext(ctx)
	switch {
	case a == nil:
		return coded(CodeForbidden, "no authenticator is configured on this service; every field is refused")
	case !caller.Authenticated() && caller.Presented:
		return coded(CodeUnauthenticated, "the bearer token is not valid")
	case !caller.Authenticated():
		return coded(CodeUnauthenticated, "this field needs a bearer token (Authorization: Bearer <token>)")
	case !caller.Scope.Allows(scopes[scope]):
		return coded(CodeForbidden, "token %q has read scope; this field needs write", caller.Name)
	}
	return nil
}
