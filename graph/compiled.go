package graph

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/graph/model"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/jsontext"
)

// The compiled read path. gqlgen's executor is general: it builds a tree
// of field contexts, resolves the root fields of a query concurrently,
// marshals through interfaces, and then json.Marshal copies the result
// again. Most requests the platform sends are reads of a few keys, and for
// those that generality is most of the cost. So a query operation that
// selects only cacheGet, cacheGetMany, cacheExists and __typename (with
// literal or variable arguments, aliases, fragments and @skip/@include) is
// compiled, the first time gqlgen has parsed and validated it, into a plan
// that later requests with the same text execute directly.
//
// A plan answers only what it is sure to answer as gqlgen would: values,
// misses and warnings. Anything else, a variable it cannot coerce the way
// gqlgen does, a field the caller may not read, a key the cache refuses,
// an error from Redis, a response over its budget, a complexity over the
// limit, makes it give up before writing anything, and the request goes
// through gqlgen, which answers it as it always has (reads have no side
// effects, so reading again is safe). Auth, the budget, the warnings and
// the complexity are decided by the same functions the gqlgen path uses.
// compiled_test.go runs a corpus and a fuzzer of documents through both
// paths and requires the same status, content type and bytes.

// plannedField is the kind of a root field a plan can execute.
type plannedField int

const (
	fieldGet plannedField = iota + 1
	fieldGetMany
	fieldExists
	fieldTypename
)

var plannedFields = map[string]plannedField{
	"cacheGet":     fieldGet,
	"cacheGetMany": fieldGetMany,
	"cacheExists":  fieldExists,
	"__typename":   fieldTypename,
}

// plan is a compiled query operation.
type plan struct {
	// source is the document's text (the parsed document points into it
	// already), for weighing a plan found by an APQ hash.
	source string
	doc    *ast.QueryDocument
	op     *ast.OperationDefinition
	// vars are the operation's variables, coerced from each request.
	vars []planVar
	// fields are the collected root fields when they do not depend on the
	// variables (no @skip or @include); nil when they do.
	fields []graphql.CollectedField
	// complexity is the operation's complexity when it does not depend on
	// the variables; -1 when it does (a cacheGetMany with keys from a
	// variable).
	complexity int
	// writes is what a mutation's plan needs beyond a query's
	// (compiledwrites.go); nil for a query.
	writes *writePlan
}

// varKind is a variable type a plan can coerce.
type varKind int

const (
	varString varKind = iota + 1
	varStringList
	varBoolean
	// varInt, varInt64 and varJSON are for the compiled write path.
	varInt
	varInt64
	varJSON
	varEntries // [CacheSetInput!]!
)

type planVar struct {
	name string
	kind varKind
	// nullable says the variable may be null (its type is not T!);
	// elemNullable, for a list, that its elements may be.
	nullable, elemNullable bool
	// def is the default value, coerced; hasDefault says there is one.
	def        varValue
	hasDefault bool
}

// compiledReads holds the plans and what executing them needs.
type compiledReads struct {
	es         graphql.ExecutableSchema
	resolver   *Resolver
	auth       *auth.Authenticator
	complexity int // the complexity limit; 0 for none
	// maxResponse and maxValue make each request's response budget, as
	// responseLimit does; maxResponse 0 for none.
	maxResponse, maxValue int
	plans                 *docCache[*plan]
	// persisted is the APQ store gqlgen's path uses: a plan answers a
	// hash only while the store would.
	persisted graphql.Cache[string]
	// refused remembers documents that cannot be compiled, so they are not
	// looked at again (bounded in bytes too).
	refused *docCache[bool]
	// presenter and recover are the gqlgen server's error presenter and
	// recover func: a write plan's field errors go through them.
	presenter graphql.ErrorPresenterFunc
	recover   graphql.RecoverFunc
	// served counts the requests a plan answered (for tests and metrics).
	served atomic.Uint64
}

// planKey names a plan: the query's JSON text as the request carries it
// (so that finding it decodes nothing), and the operation name.
func planKey(query, operationName []byte) string {
	if len(operationName) == 0 || string(operationName) == "null" {
		return string(query)
	}
	return string(query) + "\x00" + string(operationName)
}

// persistedPlanKey names the plan of an Automatic Persisted Query by its
// hash: '#' and the hash's text (a query's JSON text starts with a quote,
// so the two kinds of key never meet), and the operation name.
func persistedPlanKey(hash, operationName []byte) string {
	if len(operationName) == 0 || string(operationName) == "null" {
		return "#" + string(hash)
	}
	return "#" + string(hash) + "\x00" + string(operationName)
}

// planWeight is what a plan costs its cache: its document's, as the
// parsed-query cache weighs one, and an APQ key's bytes.
func planWeight(key string, pl *plan, limit int) int {
	if strings.HasPrefix(key, "#") {
		return parsedWeight(pl.source, limit) + allocated(len(key))
	}
	return parsedWeight(key, limit)
}

// learn compiles the operation gqlgen has just parsed and validated for
// the request whose body parts are p, if it is a plan's kind, and keeps it
// under the query's text and, for an Automatic Persisted Query, its hash.
func (c *compiledReads) learn(ctx context.Context, p requestParts, oc *graphql.OperationContext) {
	if c == nil || oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query && oc.Operation.Operation != ast.Mutation {
		return
	}
	var keys []string
	if p.query != nil && string(p.query) != "null" {
		keys = append(keys, planKey(p.query, p.operationName))
	}
	if hash, ok := persistedHash(p.extensions); ok {
		keys = append(keys, persistedPlanKey(hash, p.operationName))
	}
	var pl *plan
	for _, key := range keys {
		if _, known := c.plans.Get(ctx, key); known {
			continue
		}
		if _, refused := c.refused.Get(ctx, key); refused {
			continue
		}
		if pl == nil {
			compile := c.compile
			if oc.Operation.Operation == ast.Mutation {
				compile = c.compileWrites
			}
			var ok bool
			if pl, ok = compile(ctx, oc.Doc, oc.Operation); !ok {
				c.refused.Add(ctx, key, true)
				return
			}
			pl.source = oc.RawQuery
		}
		c.plans.Add(ctx, key, pl)
	}
}

// compile makes a plan of op, if every root field is one a plan executes.
func (c *compiledReads) compile(ctx context.Context, doc *ast.QueryDocument, op *ast.OperationDefinition) (*plan, bool) {
	pl := &plan{doc: doc, op: op}
	for _, def := range op.VariableDefinitions {
		v, ok := planVariable(def)
		if !ok {
			return nil, false
		}
		pl.vars = append(pl.vars, v)
	}
	dynamic, ok := compilable(op.SelectionSet, doc.Fragments, map[string]bool{})
	if !ok {
		return nil, false
	}
	pl.complexity = -1
	if !usesVariableKeys(op.SelectionSet, doc.Fragments, map[string]bool{}) {
		pl.complexity = complexity.Calculate(ctx, c.es, op, nil)
	}
	if !dynamic {
		pl.fields = graphql.CollectFields(&graphql.OperationContext{Doc: doc, Operation: op}, op.SelectionSet, []string{"Query"})
	}
	return pl, true
}

// compilable reports whether a selection set holds only fields a plan
// executes, and whether it has @skip or @include anywhere.
func compilable(set ast.SelectionSet, fragments ast.FragmentDefinitionList, seen map[string]bool) (dynamic, ok bool) {
	return walkSelections(set, fragments, "Query", seen, func(f *ast.Field) (bool, bool) {
		if _, planned := plannedFields[f.Name]; !planned || len(f.SelectionSet) > 0 {
			return false, false
		}
		for _, arg := range f.Arguments {
			if !plannableArgument(arg.Value) {
				return false, false
			}
		}
		return false, true
	})
}

// walkSelections checks a selection set on the type typeName, as every
// plan's compiler does: each field by field, inline fragments (on
// typeName, or on no type) and fragment spreads (on typeName) by their own
// selections, and no directive but @skip and @include anywhere. It reports
// whether field found something dynamic or any @skip or @include is there.
// seen, when not nil, holds the fragments walked already, and a spread of
// one is not walked again; nil walks every spread (validation has refused
// cycles, so that ends).
func walkSelections(set ast.SelectionSet, fragments ast.FragmentDefinitionList, typeName string, seen map[string]bool, field func(*ast.Field) (dynamic, ok bool)) (dynamic, ok bool) {
	for _, sel := range set {
		var dirs ast.DirectiveList
		d, ok := false, true
		switch s := sel.(type) {
		case *ast.Field:
			d, ok = field(s)
			dirs = s.Directives
		case *ast.InlineFragment:
			if s.TypeCondition != "" && s.TypeCondition != typeName {
				return false, false
			}
			d, ok = walkSelections(s.SelectionSet, fragments, typeName, seen, field)
			dirs = s.Directives
		case *ast.FragmentSpread:
			f := fragments.ForName(s.Name)
			if f == nil || f.TypeCondition != typeName {
				return false, false
			}
			if seen == nil || !seen[s.Name] {
				if seen != nil {
					seen[s.Name] = true
				}
				d, ok = walkSelections(f.SelectionSet, fragments, typeName, seen, field)
			}
			dirs = s.Directives
		default:
			return false, false
		}
		if !ok {
			return false, false
		}
		present, ok := onlySkipInclude(dirs)
		if !ok {
			return false, false
		}
		dynamic = dynamic || d || present
	}
	return dynamic, true
}

// onlySkipInclude reports whether dirs are only @skip and @include, and
// whether there are any.
func onlySkipInclude(dirs ast.DirectiveList) (present, ok bool) {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			return false, false
		}
	}
	return len(dirs) > 0, true
}

// plannableArgument accepts a key, or a list of keys, given as literals or
// variables.
func plannableArgument(v *ast.Value) bool {
	switch v.Kind {
	case ast.Variable, ast.StringValue, ast.BlockValue:
		return true
	case ast.ListValue:
		for _, child := range v.Children {
			if !plannableArgument(child.Value) || child.Value.Kind == ast.ListValue {
				return false
			}
		}
		return true
	}
	return false
}

// usesVariableKeys reports whether a cacheGetMany takes its keys (or some
// of them) from a variable: its complexity then depends on the request.
func usesVariableKeys(set ast.SelectionSet, fragments ast.FragmentDefinitionList, seen map[string]bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name != "cacheGetMany" {
				continue
			}
			if arg := s.Arguments.ForName("keys"); arg != nil && arg.Value.Kind == ast.Variable {
				return true
			}
		case *ast.InlineFragment:
			if usesVariableKeys(s.SelectionSet, fragments, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if f := fragments.ForName(s.Name); f != nil && !seen[s.Name] {
				seen[s.Name] = true
				if usesVariableKeys(f.SelectionSet, fragments, seen) {
					return true
				}
			}
		}
	}
	return false
}

// planVariable describes a variable of a type a plan can coerce.
func planVariable(def *ast.VariableDefinition) (planVar, bool) {
	v := planVar{name: def.Variable, nullable: !def.Type.NonNull}
	switch {
	case def.Type.Elem == nil && def.Type.NamedType == "String":
		v.kind = varString
	case def.Type.Elem == nil && def.Type.NamedType == "Boolean":
		v.kind = varBoolean
	case def.Type.Elem == nil && def.Type.NamedType == "Int":
		v.kind = varInt
	case def.Type.Elem == nil && def.Type.NamedType == "Int64" && def.DefaultValue == nil:
		v.kind = varInt64
	case def.Type.Elem == nil && def.Type.NamedType == "JSON" && def.DefaultValue == nil:
		// (A default would be GraphQL, coerced by the scalar in its own way.)
		v.kind = varJSON
	case def.Type.Elem != nil && def.Type.Elem.Elem == nil && def.Type.Elem.NamedType == "String":
		v.kind, v.elemNullable = varStringList, !def.Type.Elem.NonNull
	case def.Type.NonNull && def.Type.Elem != nil && def.Type.Elem.NonNull && def.Type.Elem.Elem == nil && def.Type.Elem.NamedType == "CacheSetInput" && def.DefaultValue == nil:
		v.kind = varEntries
	default:
		return planVar{}, false
	}
	if len(def.Directives) > 0 {
		return planVar{}, false
	}
	if def.DefaultValue != nil {
		d, err := def.DefaultValue.Value(nil)
		if err != nil {
			return planVar{}, false
		}
		if d, ok := coerceDefault(v, d); ok {
			v.def, v.hasDefault = d, true
		} else {
			return planVar{}, false
		}
	}
	return v, true
}

// coerceDefault checks a default value's Go type (gqlparser's) against the
// variable's kind.
func coerceDefault(v planVar, d any) (varValue, bool) {
	switch v.kind {
	case varString:
		s, ok := d.(string)
		return varValue{str: s}, ok
	case varBoolean:
		b, ok := d.(bool)
		return varValue{b: b}, ok
	case varInt:
		i, ok := d.(int64)
		return varValue{i: i}, ok
	case varJSON, varInt64, varEntries:
		return varValue{}, false
	}
	list, ok := d.([]any)
	if !ok {
		return varValue{}, false
	}
	out := varValue{list: make([]string, len(list))}
	for i, e := range list {
		s, isString := e.(string)
		if !isString {
			return varValue{}, false
		}
		out.list[i] = s
	}
	return out, true
}

// serve answers the request from a plan, if there is one for it and it can
// answer as gqlgen would; otherwise it writes nothing and reports false.
func (c *compiledReads) serve(ctx context.Context, w http.ResponseWriter, p requestParts, contentType string) (served bool) {
	if c == nil {
		return false
	}
	var key string
	switch {
	case p.query != nil && (p.extensions == nil || string(p.extensions) == "null"):
		key = lookupKey(p.query, p.operationName)
	case p.query == nil && p.extensions != nil:
		// An Automatic Persisted Query by its hash alone, answered only
		// while the APQ store still holds it, as gqlgen would (else it
		// answers PERSISTED_QUERY_NOT_FOUND and the client sends the
		// query again). A request carrying both is gqlgen's: it checks
		// the hash and stores the query.
		hash, ok := persistedHash(p.extensions)
		if !ok {
			return false
		}
		if _, stored := c.persisted.Get(ctx, unsafe.String(unsafe.SliceData(hash), len(hash))); !stored {
			return false
		}
		key = persistedPlanKey(hash, p.operationName)
	default:
		return false
	}
	pl, ok := c.plans.Get(ctx, key)
	if !ok {
		return false
	}
	var varsArr [maxPlanVars]varValue
	vars := varsArr[:0]
	if len(pl.vars) > maxPlanVars {
		vars = make([]varValue, 0, len(pl.vars))
	}
	vars = vars[:len(pl.vars)]
	if !pl.coerce(p.variables, vars) {
		return false
	}
	fields := pl.fields
	var varMap map[string]any
	if fields == nil || pl.complexity < 0 {
		varMap = make(map[string]any, len(vars))
		for i, v := range pl.vars {
			if !vars[i].absent {
				varMap[v.name] = vars[i].asAny(v.kind)
			}
		}
	}
	root, scope := queryRoot, model.ScopeRead
	if pl.writes != nil {
		root, scope = mutationRoot, model.ScopeWrite
	}
	if fields == nil {
		fields = graphql.CollectFields(&graphql.OperationContext{Doc: pl.doc, Operation: pl.op, Variables: varMap}, pl.op.SelectionSet, root)
	}
	for range fields {
		if authorize(ctx, c.auth, scope) != nil {
			return false
		}
	}
	if c.complexity > 0 {
		n := pl.complexity
		if n < 0 {
			n = complexity.Calculate(ctx, c.es, pl.op, varMap)
		}
		if n > c.complexity {
			return false
		}
	}
	if pl.writes != nil {
		return c.serveWrites(ctx, w, pl, fields, vars, varMap, contentType)
	}
	defer func() {
		// A panic below is gqlgen's to present, as it would have been.
		if recover() != nil {
			served = false
		}
	}()
	resp := responses.Get().(*response)
	defer resp.release()
	resp.data.WriteString(`{"data":`)
	warnings, ok := c.execute(ctx, pl, fields, vars, resp)
	if !ok {
		return false
	}
	if len(warnings) == 0 && resp.compact {
		// Already what writeResponse would write, known without a scan:
		// written as it is, the large values straight from the cache.
		resp.data.WriteByte('}')
		setContentType(w, contentType)
		resp.writeTo(w)
		c.served.Add(1)
		return true
	}
	out := resp.bytes()
	// What writeResponse writes for a json.RawMessage is the text
	// compacted, nothing escaped: text with no space outside strings is
	// that already (values this service stored were written compact; a
	// value another program wrote may not be).
	if len(warnings) > 0 || !jsontext.Spaceless(out) {
		// What writeResponse writes for gqlgen's Response: the data
		// compacted, then the extensions.
		resp := graphql.Response{Data: out[len(`{"data":`):]}
		if len(warnings) > 0 {
			resp.Extensions = map[string]any{"warnings": warnings}
		}
		b, err := marshalJSON(&resp)
		if err != nil {
			return false
		}
		out = b
	} else {
		// Already what writeResponse would write: written as it is.
		out = append(out, '}')
	}
	setContentType(w, contentType)
	_, _ = w.Write(out)
	c.served.Add(1)
	return true
}

// response is a plan's response as execute writes it: the text around the
// values in data, and each large value a span refers to, not copied.
type response struct {
	data  bytes.Buffer
	spans []span
	// compact says every value is known to be compact, and so the whole
	// response (the rest is written compact).
	compact bool
}

// span is a value that belongs at data's offset at.
type span struct {
	at    int
	value []byte
}

// spanMin is the size from which a value is referred to rather than
// copied: a shorter one costs less to copy than another Write.
const spanMin = 1024

// responseBuffers hold responses as write plans write them
// (compiledwrites.go).
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// responses hold responses as read plans write them.
var responses = sync.Pool{New: func() any { return &response{compact: true} }}

func (r *response) release() {
	clear(r.spans) // the values are the cache's, not the pool's to keep
	r.spans = r.spans[:0]
	r.data.Reset()
	r.compact = true
	if r.data.Cap() <= 64<<10 && cap(r.spans) <= 64 {
		responses.Put(r) // a huge one is left to the collector
	}
}

// value writes a value (nil is null); compact says it is known to be
// compact.
func (r *response) value(v []byte, compact bool) {
	switch {
	case v == nil:
		r.data.WriteString("null")
	case compact && len(v) >= spanMin:
		r.spans = append(r.spans, span{at: r.data.Len(), value: v})
	default:
		r.compact = r.compact && compact
		r.data.Write(v)
	}
}

// bytes is the whole response so far, in one slice (data's own when there
// are no spans).
func (r *response) bytes() []byte {
	if len(r.spans) == 0 {
		return r.data.Bytes()
	}
	n := r.data.Len()
	for _, s := range r.spans {
		n += len(s.value)
	}
	out := make([]byte, 0, n+1) // room for the closing brace
	prev, d := 0, r.data.Bytes()
	for _, s := range r.spans {
		out = append(out, d[prev:s.at]...)
		out = append(out, s.value...)
		prev = s.at
	}
	return append(out, d[prev:]...)
}

func (r *response) writeTo(w http.ResponseWriter) {
	prev, d := 0, r.data.Bytes()
	for _, s := range r.spans {
		if s.at > prev {
			_, _ = w.Write(d[prev:s.at])
		}
		_, _ = w.Write(s.value)
		prev = s.at
	}
	_, _ = w.Write(d[prev:])
}

// The root types' names as CollectFields takes them (read only).
var (
	queryRoot    = []string{"Query"}
	mutationRoot = []string{"Mutation"}
)

// lookupKey is planKey for a lookup: without copying the query when there
// is no operation name (the cache does not keep a key it is only asked
// for).
func lookupKey(query, operationName []byte) string {
	if len(operationName) == 0 || string(operationName) == "null" {
		return unsafe.String(unsafe.SliceData(query), len(query))
	}
	return planKey(query, operationName)
}

var (
	headerJSON            = []string{mediaJSON}
	headerGraphQLResponse = []string{mediaGraphQLResponse}
)

var headerNoSniff = []string{"nosniff"}

// setContentType sets the response's media type (and nosniff) as postJSON
// does, from shared slices (net/http only reads them).
func setContentType(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h["X-Content-Type-Options"] = headerNoSniff
	if contentType == mediaJSON {
		h["Content-Type"] = headerJSON
		return
	}
	h["Content-Type"] = headerGraphQLResponse
}

// varValue is a variable's value for one request.
type varValue struct {
	null bool // null, or absent without a default
	// absent says the request did not set the variable, and it has no
	// default: an argument given it is left out, as GraphQL says.
	absent bool
	str    string
	b      bool
	i      int64
	// raw is a JSON variable's value as it is stored: compacted, in a
	// slice of its own (compactValue).
	raw []byte
	// entries are a [CacheSetInput!]! variable's (compiledwrites.go).
	entries []*model.CacheSetInput
	// list is a list's elements; nullElem says one of them is null (which
	// a [String!] argument refuses, so the plan gives up on reading it).
	list     []string
	nullElem bool
}

// maxPlanVars is how many variables a request's values fit in without an
// allocation; a plan with more uses the heap.
const maxPlanVars = 8

// coerce reads the request's variables as the plan's types into values
// (one per plan variable), and gives up on anything gqlgen would refuse or
// coerce in its own way.
func (pl *plan) coerce(raw []byte, values []varValue) bool {
	var givenArr [maxPlanVars]bool
	given := givenArr[:0]
	if len(pl.vars) > maxPlanVars {
		given = make([]bool, 0, len(pl.vars))
	}
	given = given[:len(pl.vars)]
	if raw != nil && string(raw) != "null" {
		ok := scanObject(raw, func(key, value []byte) bool {
			for i := range pl.vars {
				if pl.vars[i].name != string(key) {
					continue
				}
				if given[i] {
					return false // a duplicate: encoding/json keeps the last
				}
				given[i] = true
				return pl.vars[i].coerce(value, &values[i])
			}
			return true // not a variable of the operation: gqlgen ignores it
		})
		if !ok {
			return false
		}
	}
	for i, v := range pl.vars {
		switch {
		case given[i]:
		case v.hasDefault:
			values[i] = v.def
		case !v.nullable:
			return false // gqlgen refuses a missing required variable
		default:
			values[i] = varValue{null: true, absent: true}
		}
	}
	return true
}

func (v planVar) coerce(raw []byte, dst *varValue) bool {
	if string(raw) == "null" {
		*dst = varValue{null: true}
		return v.nullable
	}
	switch v.kind {
	case varString:
		s, ok := jsonString(raw)
		*dst = varValue{str: s}
		return ok
	case varBoolean:
		switch string(raw) {
		case "true":
			*dst = varValue{b: true}
			return true
		case "false":
			*dst = varValue{}
			return true
		}
		return false
	case varInt:
		// An integer as the JSON decoder spells it, within 64 bits, as
		// gqlparser's variable coercion takes it; anything else (a
		// fraction, an exponent, a string) is gqlgen's to judge.
		if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return false
		}
		n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(raw), len(raw)), 10, 64)
		*dst = varValue{i: n}
		return err == nil
	case varInt64:
		// As the Int64 scalar reads a variable: a string of decimal
		// digits, or an integer (a number with a fraction or an exponent
		// is refused there, and answered by gqlgen).
		text := raw
		if raw[0] == '"' {
			s, ok := jsonString(raw)
			if !ok {
				return false
			}
			text = unsafe.Slice(unsafe.StringData(s), len(s))
		} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') || bytes.ContainsAny(raw, ".eE") {
			return false
		}
		n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(text), len(text)), 10, 64)
		*dst = varValue{i: n}
		return err == nil
	case varJSON:
		stored, ok := compactValue(raw)
		*dst = varValue{raw: stored}
		return ok
	case varEntries:
		entries, ok := coerceEntries(raw)
		*dst = varValue{entries: entries}
		return ok
	}
	out := varValue{list: []string{}}
	ok := scanArray(raw, func(e []byte) bool {
		if string(e) == "null" {
			out.nullElem = true
			out.list = append(out.list, "")
			return v.elemNullable
		}
		s, ok := jsonString(e)
		out.list = append(out.list, s)
		return ok
	})
	*dst = out
	return ok
}

// asAny is a variable's value as gqlgen holds variables, for its
// CollectFields and complexity.
func (v varValue) asAny(kind varKind) any {
	switch {
	case v.null:
		return nil
	case kind == varString:
		return v.str
	case kind == varBoolean:
		return v.b
	case kind == varInt:
		return v.i
	case kind == varInt64:
		return strconv.FormatInt(v.i, 10)
	case kind == varJSON:
		return model.RawJSON(v.raw)
	case kind == varEntries:
		return entriesAsAny(v.entries)
	}
	list := make([]any, len(v.list))
	for i, s := range v.list {
		list[i] = s
	}
	return list
}

// execute runs the fields in order and writes the data. It reports false,
// having returned nothing, when gqlgen must answer instead.
func (c *compiledReads) execute(ctx context.Context, pl *plan, fields []graphql.CollectedField, vars []varValue, resp *response) ([]warning, bool) {
	buf := &resp.data
	if c.maxResponse > 0 && c.maxKeys(pl, fields, vars)*int64(c.maxValue)*6 > int64(c.maxResponse) {
		// Only a response that could pass the limit needs counting: a few
		// keys, at CACHE_MAX_VALUE_BYTES each at most (six times that for
		// a value that is not JSON, returned as a JSON string), cannot.
		ctx = context.WithValue(ctx, budgetKey{}, newResponseBudget(c.maxResponse, c.maxValue))
	}
	var warnings []warning
	warn := func(code, msg string, path ...ast.PathElement) {
		warnings = append(warnings, warning{Code: code, Message: msg, Path: path})
	}
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('"')
		buf.WriteString(f.Alias)
		buf.WriteString(`":`)
		alias := ast.PathName(f.Alias)
		switch plannedFields[f.Name] {
		case fieldTypename:
			buf.WriteString(`"Query"`)
		case fieldGet, fieldExists:
			key, ok := pl.stringArg(f.Field, "key", vars)
			if !ok {
				return nil, false
			}
			var rd cache.Read
			if plannedFields[f.Name] == fieldGet {
				rd = getWithin(ctx, c.resolver.Cache, key)
			} else {
				var found bool
				found, rd.Backend, rd.Err = c.resolver.Cache.Exists(ctx, key)
				rd.Value, rd.Compact = jsonFalse, true
				if found {
					rd.Value = jsonTrue
				}
			}
			value, backend, err := rd.Value, rd.Backend, rd.Err
			if err != nil {
				code, msg, ok := readWarning(err)
				if !ok {
					return nil, false
				}
				warn(code, msg, alias)
				value = nil
				if plannedFields[f.Name] == fieldExists {
					value = jsonFalse
				}
			} else if code, msg, ok := fallbackWarning(backend); ok {
				warn(code, msg, alias)
			}
			resp.value(value, rd.Compact || value == nil)
		case fieldGetMany:
			keys, ok := pl.listArg(f.Field, "keys", vars)
			if !ok {
				return nil, false
			}
			reads, err := getManyWithin(ctx, c.resolver.Cache, keys)
			if err != nil {
				return nil, false
			}
			buf.WriteByte('[')
			for j, rd := range reads {
				if j > 0 {
					buf.WriteByte(',')
				}
				if rd.Err != nil {
					code, msg, ok := readWarning(rd.Err)
					if !ok {
						return nil, false
					}
					warn(code, msg, alias, ast.PathIndex(j))
					buf.WriteString("null")
					continue
				}
				if code, msg, ok := fallbackWarning(rd.Backend); ok {
					warn(code, msg, alias, ast.PathIndex(j))
				}
				resp.value(rd.Value, rd.Compact)
			}
			buf.WriteByte(']')
		default:
			return nil, false
		}
	}
	buf.WriteByte('}')
	return warnings, true
}

// maxKeys counts the keys the fields read, at most (a key a list names
// twice counted twice).
func (c *compiledReads) maxKeys(pl *plan, fields []graphql.CollectedField, vars []varValue) int64 {
	var n int64
	for _, f := range fields {
		switch plannedFields[f.Name] {
		case fieldGet:
			n++
		case fieldGetMany:
			keys, _ := pl.listArg(f.Field, "keys", vars)
			n += int64(len(keys))
		}
	}
	return n
}

// The values of cacheExists (read only).
var (
	jsonTrue  = []byte("true")
	jsonFalse = []byte("false")
)

// stringArg is a field's string argument: a literal, or a variable's value.
func (pl *plan) stringArg(f *ast.Field, name string, vars []varValue) (string, bool) {
	arg := f.Arguments.ForName(name)
	if arg == nil {
		return "", false
	}
	return pl.stringValue(arg.Value, vars)
}

func (pl *plan) stringValue(v *ast.Value, vars []varValue) (string, bool) {
	switch v.Kind {
	case ast.Variable:
		if i := pl.varIndex(v.Raw); i >= 0 && !vars[i].null {
			return vars[i].str, true
		}
		return "", false
	case ast.StringValue, ast.BlockValue:
		return v.Raw, true // gqlparser's Raw is the string's value, unescaped
	}
	return "", false
}

// listArg is a field's list-of-strings argument.
func (pl *plan) listArg(f *ast.Field, name string, vars []varValue) ([]string, bool) {
	arg := f.Arguments.ForName(name)
	if arg == nil {
		return nil, false
	}
	switch arg.Value.Kind {
	case ast.Variable:
		i := pl.varIndex(arg.Value.Raw)
		if i < 0 || vars[i].null || vars[i].nullElem {
			return nil, false // null, or a null element: gqlgen refuses it for [String!]!
		}
		return vars[i].list, true
	case ast.ListValue:
		out := make([]string, len(arg.Value.Children))
		for i, child := range arg.Value.Children {
			s, ok := pl.stringValue(child.Value, vars)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

func (pl *plan) varIndex(name string) int {
	for i := range pl.vars {
		if pl.vars[i].name == name {
			return i
		}
	}
	return -1
}
