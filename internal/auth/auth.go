// Package auth identifies API callers by bearer token. It knows tokens by
// their SHA-256 only, compares in constant time, and puts the caller in the
// request context; graph decides, per field, what a caller may do.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync/atomic"
)

// Scope is what a token allows.
type Scope int

const (
	// ScopeRead allows queries.
	ScopeRead Scope = iota + 1
	// ScopeWrite allows queries and mutations.
	ScopeWrite
)

// Allows reports whether s covers need.
func (s Scope) Allows(need Scope) bool { return s >= need }

// Token is a configured bearer token.
type Token struct {
	Name  string
	Scope Scope
	Value string
}

// Caller is who made a request.
type Caller struct {
	// Name is the token's name; empty for an anonymous caller.
	Name  string
	Scope Scope
	// Presented is true when the request carried a bearer token, valid or
	// not, so an unknown token can be told from none.
	Presented bool
}

// Authenticated reports whether the request carried a known token.
func (c Caller) Authenticated() bool { return c.Name != "" }

type entry struct {
	caller Caller // what Attach puts in a context: one per token, never copied there
	sum    [sha256.Size]byte
}

// Authenticator checks bearer tokens. Its tokens can be replaced while it
// is in use (Replace: a reload of API_TOKENS_FILE).
type Authenticator struct {
	tokens atomic.Pointer[[]entry]
	open   bool
}

// New returns an Authenticator that knows tokens. With none it knows no
// caller, so everything that needs a caller is refused: an empty token
// list (a file that came up empty, say) never opens the API. OpenAccess
// is the one way to do that.
func New(tokens []Token) *Authenticator {
	a := &Authenticator{}
	a.Replace(tokens)
	return a
}

// Replace makes tokens the ones a knows, for every request from now on
// (one in flight keeps the caller it was identified as). OpenAccess stays
// open.
func (a *Authenticator) Replace(tokens []Token) {
	entries := make([]entry, 0, len(tokens))
	for _, t := range tokens {
		entries = append(entries, entry{caller: Caller{Name: t.Name, Scope: t.Scope, Presented: true}, sum: sha256.Sum256([]byte(t.Value))})
	}
	a.tokens.Store(&entries)
}

// OpenAccess returns an Authenticator that lets every caller do
// everything, token or not: development without tokens (the configuration
// refuses it elsewhere). Asking for it by name keeps an open API a
// decision, never a default.
func OpenAccess() *Authenticator { return &Authenticator{open: true} }

// Open reports whether a is OpenAccess: every caller may do everything.
// Nil is not open.
func (a *Authenticator) Open() bool { return a != nil && a.open }

// Identify reads the Authorization header. Every configured token is
// compared, each in constant time on fixed-length digests, so the time
// taken says nothing about which token, or how much of one, matched.
func (a *Authenticator) Identify(r *http.Request) Caller { return *a.identify(r) }

// The callers without a known token, shared by every such request.
var (
	anonymous = &Caller{}
	unknown   = &Caller{Presented: true}
)

func (a *Authenticator) identify(r *http.Request) *Caller {
	return a.identifyValue(r.Header.Get("Authorization"))
}

// identifyValue reads an Authorization value ("Bearer <token>").
func (a *Authenticator) identifyValue(h string) *Caller {
	if h == "" {
		return anonymous
	}
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return unknown
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(value)))
	var tokens []entry
	if p := a.tokens.Load(); p != nil {
		tokens = *p
	}
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return unknown
	}
	return &tokens[found].caller
}

// IdentifyValue is Identify for an Authorization value ("Bearer
// <token>") that came another way than a request's header.
func (a *Authenticator) IdentifyValue(authorization string) Caller {
	return *a.identifyValue(authorization)
}

type callerKey struct{}

// Middleware identifies the caller of every request and stores it in the
// request's context for FromContext.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := a.Attach(r)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Attach identifies the caller of r and returns r's context with the
// caller stored for FromContext, and the caller. The context holds a
// pointer to a Caller made once per token, so storing it allocates
// nothing beyond the context itself.
func (a *Authenticator) Attach(r *http.Request) (context.Context, Caller) {
	c := a.identify(r)
	return context.WithValue(r.Context(), callerKey{}, c), *c
}

// AttachValue is Attach for an Authorization value that came another way
// than the request's header: a WebSocket's connection_init payload.
func (a *Authenticator) AttachValue(ctx context.Context, authorization string) (context.Context, Caller) {
	c := a.identifyValue(authorization)
	return context.WithValue(ctx, callerKey{}, c), *c
}

// FromContext returns the caller Attach stored; anonymous if none.
func FromContext(ctx context.Context) Caller {
	if c, _ := ctx.Value(callerKey{}).(*Caller); c != nil {
		return *c
	}
	return Caller{}
}
