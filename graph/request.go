package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

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

// persistedQueries is gqlgen's Automatic Persisted Queries with a code on
// each of its errors. Every error it returns is about the request's
// persistedQuery extension (a hash that does not match the query, an
// unknown version), so the client's; gqlgen codes only
// PERSISTED_QUERY_NOT_FOUND, which clients act on and which is kept.
type persistedQueries struct {
	extension.AutomaticPersistedQuery
}

var _ graphql.OperationParameterMutator = persistedQueries{}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	err := p.AutomaticPersistedQuery.MutateOperationParameters(ctx, params)
	if err != nil && !hasCode(err) {
		setCode(err, CodeBadRequest)
	}
	return err
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
type postJSON struct{}

var _ graphql.Transport = postJSON{}

func (postJSON) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && r.Method == http.MethodPost && mediaType == mediaJSON
}

func (postJSON) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseType(r)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	params := &graphql.RawParams{Headers: r.Header}
	params.ReadTime.Start = graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		badRequest(ctx, w, exec, "could not read the request body")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // as gqlgen: numbers in variables stay exact
	if err := dec.Decode(params); err != nil {
		badRequest(ctx, w, exec, "the request body is not a valid GraphQL request (JSON with a query string)")
		return
	}
	if noQuery(params) {
		badRequest(ctx, w, exec, "the request has no query (nor a persisted query's hash)")
		return
	}
	params.ReadTime.End = graphql.Now()

	ctx = withRawBody(ctx, body) // values are stored as sent (values.go)
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		requestError(graphql.WithOperationContext(ctx, oc), w, exec, contentType, errs)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
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
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		badRequest(ctx, w, exec, "the URL's query string cannot be decoded")
		return
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

// badRequest answers 400 with a BAD_REQUEST error, through the error
// presenter and response extensions like any other error: a body or URL
// that is not a GraphQL-over-HTTP request at all.
func badRequest(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, msg string) {
	w.WriteHeader(http.StatusBadRequest)
	err := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadRequest}}
	writeRequestErrors(w, exec.DispatchError(ctx, gqlerror.List{err}))
}

// writeRequestErrors writes resp without a data entry.
func writeRequestErrors(w io.Writer, resp *graphql.Response) {
	writeJSON(w, struct {
		Errors     gqlerror.List  `json:"errors"`
		Extensions map[string]any `json:"extensions,omitempty"`
	}{resp.Errors, resp.Extensions})
}

// responseType picks the response's media type from Accept as gqlgen's
// transports do: application/json unless the client asks for
// application/graphql-response+json (or for nothing this serves).
func responseType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return mediaJSON
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
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Data is JSON the executor wrote; errors and extensions are plain
		// values. Unreachable, but never half a response.
		b.Reset()
		b.WriteString(`{"errors":[{"message":"internal server error","extensions":{"code":"` + CodeInternal + `"}}]}`)
	}
	_, _ = w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}
