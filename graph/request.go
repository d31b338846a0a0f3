package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Checks on a request before any field runs. Each makes its error here,
// with its code, because the error gqlgen would make for the same case has
// neither a code nor a type: only its message would tell it apart.

// noIntrospection refuses __schema and __type while introspection is off.
// gqlgen refuses them too, but with errors.New("introspection disabled")
// from inside the executor.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	f := introspectionField(oc.Operation.SelectionSet, oc.Doc.Fragments)
	if f == nil {
		return nil
	}
	err := &gqlerror.Error{Message: "introspection is disabled on this service", Extensions: map[string]any{"code": CodeIntrospectionDisabled}}
	if f.Position != nil {
		err.Locations = []gqlerror.Location{{Line: f.Position.Line, Column: f.Position.Column}}
	}
	return err
}

// introspectionField finds a __schema or __type field. They exist only on
// the query root, so only the operation's own selection set and the
// fragments spread into it are searched (validation has refused cycles).
// __typename is not introspection: gqlgen answers it whatever the setting.
func introspectionField(set ast.SelectionSet, fragments ast.FragmentDefinitionList) *ast.Field {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return s
			}
		case *ast.InlineFragment:
			if f := introspectionField(s.SelectionSet, fragments); f != nil {
				return f
			}
		case *ast.FragmentSpread:
			if def := fragments.ForName(s.Name); def != nil {
				if f := introspectionField(def.SelectionSet, fragments); f != nil {
					return f
				}
			}
		}
	}
	return nil
}

// Codes for Automatic Persisted Queries: each way the persistedQuery
// extension can fail has its own, and none is an internal error.
const (
	// CodePersistedQueryNotFound: the hash alone was sent, and the query
	// is not (or no longer) in the store; the client sends it again with
	// the query. gqlgen's code, and Apollo's.
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
	// CodePersistedQueryHashMismatch: the sha256Hash sent is not the
	// SHA-256 of the query sent with it (lowercase hex); nothing is stored.
	CodePersistedQueryHashMismatch = "PERSISTED_QUERY_HASH_MISMATCH"
	// CodePersistedQueryVersion: the extension's version is not 1, the
	// only one there is.
	CodePersistedQueryVersion = "PERSISTED_QUERY_VERSION_UNSUPPORTED"
)

// persistedQueries is Automatic Persisted Queries as gqlgen's
// extension.AutomaticPersistedQuery does them (the same protocol, its
// PERSISTED_QUERY_NOT_FOUND error as it is, the same stats for
// extension.GetApqStats), with a code of its own on each of the other
// errors: gqlgen tells a hash mismatch from an unknown version only by
// message text.
type persistedQueries struct{ store graphql.Cache[string] }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persistedQueries{}

func (persistedQueries) ExtensionName() string { return "AutomaticPersistedQuery" }

func (p persistedQueries) Validate(graphql.ExecutableSchema) error {
	if p.store == nil {
		return errors.New("persistedQueries needs a store")
	}
	return nil
}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Extensions["persistedQuery"] == nil {
		return nil
	}
	ext, ok := params.Extensions["persistedQuery"].(map[string]any)
	hash, isString := ext["sha256Hash"].(string)
	if !ok || !isString {
		return apqError(CodeBadRequest, "the persistedQuery extension must be an object with a version and a sha256Hash string")
	}
	switch v := ext["version"].(type) {
	case nil:
		return apqError(CodePersistedQueryVersion, "the persistedQuery extension has no version; the supported version is 1")
	case json.Number: // as both transports decode numbers
		if v != "1" {
			return apqError(CodePersistedQueryVersion, "persistedQuery version %.20s is not supported; the supported version is 1", v)
		}
	default:
		return apqError(CodeBadRequest, "the persistedQuery version must be a number")
	}
	sent := params.Query != ""
	switch {
	case sent:
		if sum := sha256.Sum256([]byte(params.Query)); hex.EncodeToString(sum[:]) != hash {
			return apqError(CodePersistedQueryHashMismatch, "the persistedQuery sha256Hash is not the SHA-256 of the query (in lowercase hex); the query was not stored")
		}
		p.store.Add(ctx, hash, params.Query)
	default:
		query, found := p.store.Get(ctx, hash)
		if !found {
			// gqlgen's error, word for word: clients match its message too.
			return apqError(CodePersistedQueryNotFound, "PersistedQueryNotFound")
		}
		params.Query = query
	}
	// Under gqlgen's name for them, so that extension.GetApqStats finds
	// them.
	graphql.GetOperationContext(ctx).Stats.SetExtension("APQ", &extension.ApqStats{Hash: hash, SentQuery: sent})
	return nil
}

func apqError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// Response media types (GraphQL over HTTP).
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// postJSON is the POST transport: a JSON body holding a GraphQL request. It
// does what gqlgen's transport.POST does, except that a body it cannot read
// or decode is refused here with BAD_REQUEST; gqlgen's error for that has
// no code, and its message quotes the whole body, which may carry secrets
// or be megabytes long.
type postJSON struct {
	// compiled is the compiled read path; nil sends everything to gqlgen.
	compiled *compiledReads
}

var _ graphql.Transport = postJSON{}

func (p postJSON) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && r.Method == http.MethodPost && mediaType == mediaJSON
}

func (p postJSON) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseType(r)
	setContentType(w, contentType)
	params := &graphql.RawParams{Headers: r.Header}
	params.ReadTime.Start = graphql.Now()
	var body strings.Builder // a string without another copy, for the text checks
	if _, err := io.Copy(&body, r.Body); err != nil {
		badRequest(ctx, w, exec, "could not read the request body")
		return
	}
	// Before decoding: the decoder would replace what these refuse.
	if err := checkJSONText(body.String(), "the request body"); err != nil {
		refuse(ctx, w, exec, err)
		return
	}
	// The body's bytes, read only: the scanner never writes them. A plan
	// did not answer (front tried); the parts are for learning one.
	raw := unsafe.Slice(unsafe.StringData(body.String()), body.Len())
	parts, scanned := scanRequest(raw)
	dec := json.NewDecoder(strings.NewReader(body.String()))
	dec.UseNumber() // as gqlgen: numbers in variables stay exact
	if err := dec.Decode(params); err != nil {
		badRequest(ctx, w, exec, "the request body is not a valid GraphQL request (JSON with a query string)")
		return
	}
	if err := checkDocumentText(params.Query); err != nil {
		refuse(ctx, w, exec, err)
		return
	}
	if noQuery(params) {
		badRequest(ctx, w, exec, "the request has no query (nor a persisted query's hash)")
		return
	}
	params.ReadTime.End = graphql.Now()

	ctx = withRawBody(ctx, raw) // values are stored as sent (values.go)
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		requestError(graphql.WithOperationContext(ctx, oc), w, exec, contentType, errs)
		return
	}
	if scanned {
		p.compiled.learn(ctx, parts, oc)
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// badRequest answers 400 with a BAD_REQUEST error, through the error
// presenter and response extensions like any other error: a body or URL
// that is not a GraphQL-over-HTTP request at all.
func badRequest(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, msg string) {
	refuse(ctx, w, exec, coded(CodeBadRequest, "%s", msg))
}

// refuse answers 400 with err, an error made for the client (codedError).
func refuse(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, err error) {
	w.WriteHeader(http.StatusBadRequest)
	writeRequestErrors(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.WrapIfUnwrapped(err)}))
}

// writeRequestErrors writes resp without a data entry.
func writeRequestErrors(w io.Writer, resp *graphql.Response) {
	writeJSON(w, struct {
		Errors     gqlerror.List  `json:"errors"`
		Extensions map[string]any `json:"extensions,omitempty"`
	}{resp.Errors, resp.Extensions})
}

// getQuery is the GET transport: query, operationName, variables and
// extensions in the URL, for queries only. It does what gqlgen's
// transport.GET does, except for the answers to requests refused before
// execution (requestError), a coded 400 for parameters it cannot decode,
// and 405 for a mutation, as GraphQL over HTTP has them.
type getQuery struct{}

var _ graphql.Transport = getQuery{}

func (getQuery) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method == http.MethodGet
}

func (getQuery) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseType(r)
	setContentType(w, contentType)
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		badRequest(ctx, w, exec, "the URL's query string cannot be decoded")
		return
	}
	// Before decoding: the decoder would replace what these refuse
	// (invalid UTF-8, lone surrogate escapes), as the POST transport does.
	for name, list := range query {
		for _, v := range list {
			var err error
			switch name {
			case "query":
				err = checkDocumentText(v)
			case "variables", "extensions":
				err = checkJSONText(v, "the "+name)
			case "operationName":
				if !utf8.ValidString(v) {
					err = invalidUTF8(v, "the operation name")
				}
			}
			if err != nil {
				refuse(ctx, w, exec, err)
				return
			}
		}
	}
	params := &graphql.RawParams{Query: query.Get("query"), OperationName: query.Get("operationName"), Headers: r.Header}
	params.ReadTime.Start = graphql.Now()
	for name, into := range map[string]*map[string]any{"variables": &params.Variables, "extensions": &params.Extensions} {
		raw := query.Get(name)
		if raw == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(into); err != nil {
			badRequest(ctx, w, exec, "the "+name+" parameter is not a JSON object")
			return
		}
	}
	if noQuery(params) {
		badRequest(ctx, w, exec, "the request has no query parameter (nor a persisted query's hash)")
		return
	}
	params.ReadTime.End = graphql.Now()

	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		requestError(graphql.WithOperationContext(ctx, oc), w, exec, contentType, errs)
		return
	}
	if op := oc.Doc.Operations.ForName(oc.OperationName); op == nil || op.Operation != ast.Query {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		err := &gqlerror.Error{Message: "only queries may be sent with GET; send mutations with POST", Extensions: map[string]any{"code": CodeMethodNotAllowed}}
		writeRequestErrors(w, exec.DispatchError(ctx, gqlerror.List{err}))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// unsupportedMedia answers a POST that postJSON does not take: its
// Content-Type is missing or not application/json (curl -d sends
// application/x-www-form-urlencoded). gqlgen's own answer to it is
// "transport not supported", with no code and a text/plain content type;
// this one says which media type to send.
type unsupportedMedia struct{}

var _ graphql.Transport = unsupportedMedia{}

func (unsupportedMedia) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method == http.MethodPost
}

func (unsupportedMedia) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	setContentType(w, responseType(r))
	w.Header().Set("Accept-Post", mediaJSON)
	w.WriteHeader(http.StatusUnsupportedMediaType)
	msg := "the request has no Content-Type"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		msg = fmt.Sprintf("Content-Type %q is not supported", clip(ct, 100))
	}
	err := &gqlerror.Error{Message: msg + ": send the GraphQL request as JSON with Content-Type: application/json", Extensions: map[string]any{"code": CodeUnsupportedMediaType}}
	writeRequestErrors(w, exec.DispatchError(r.Context(), gqlerror.List{err}))
}

// clip shortens s to at most n bytes for a message, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// noQuery reports whether a request has neither a query nor the
// persistedQuery extension that may stand for one: it is not a GraphQL
// request (GraphQL over HTTP: the server MAY answer 400).
func noQuery(p *graphql.RawParams) bool {
	_, apq := p.Extensions["persistedQuery"]
	return p.Query == "" && !apq
}

// requestError answers a request refused before execution: a document that
// does not parse or validate, variables that do not fit their types, a
// limit, introspection while it is off, a persisted query problem. GraphQL
// over HTTP says such an answer SHOULD be 200 under application/json and
// is 4xx under application/graphql-response+json, and (with the GraphQL
// spec) that it SHOULD NOT carry a data entry: nothing was executed, so
// there is no data, not even null.
//
// The exception is PERSISTED_QUERY_NOT_FOUND, answered as gqlgen and
// Apollo Server answer it (200, data null, whatever the media type):
// Automatic Persisted Query clients expect it so, and Apollo's link stops
// using persisted queries altogether after a 400.
func requestError(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, contentType string, errs gqlerror.List) {
	resp := exec.DispatchError(ctx, errs)
	if persistedQueryNotFound(errs) {
		writeResponse(w, resp)
		return
	}
	if contentType == mediaGraphQLResponse {
		w.WriteHeader(http.StatusBadRequest)
	}
	writeRequestErrors(w, resp)
}

// codePersistedQueryNotFound is gqlgen's code for an APQ hash it does not
// know (unexported there); clients act on it.
const codePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"

func persistedQueryNotFound(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] == codePersistedQueryNotFound {
			return true
		}
	}
	return false
}

// responseType picks the response's media type from Accept as gqlgen's
// transports do: application/json unless the client asks for
// application/graphql-response+json (or for nothing this serves).
func responseType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	switch accept {
	case "", "*/*", mediaJSON, "application/json, */*":
		return mediaJSON // the common cases, without parsing
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", mediaJSON:
			return mediaJSON
		case mediaGraphQLResponse:
			return mediaGraphQLResponse
		}
	}
	return mediaGraphQLResponse
}

func writeResponse(w io.Writer, resp *graphql.Response) {
	writeJSON(w, resp)
}

// writeJSON writes v as JSON without the HTML escaping encoding/json does
// by default (json.Marshal writes "<" as \u003c, even inside the JSON text
// of a stored value), so values come back byte for byte as stored. The
// response is JSON served with nosniff, never HTML.
func writeJSON(w io.Writer, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		// Data is JSON the executor wrote; errors and extensions are plain
		// values. Unreachable, but never half a response.
		b = []byte(`{"errors":[{"message":"internal server error","extensions":{"code":"` + CodeInternal + `"}}]}`)
	}
	_, _ = w.Write(b)
}

// marshalJSON is json.Marshal without HTML escaping (see writeJSON).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
