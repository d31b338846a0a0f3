package graph

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/graph/model"
)

// The compiled write path. A mutation operation that selects only
// cacheSet, cacheDelete, cacheIncrement, cacheExpire, cacheSetMany,
// cacheDeleteMany, cacheInvalidateTags and __typename, with literal or variable arguments,
// aliases, fragments, @skip/@include and __typename in the payloads, is
// compiled, the first time gqlgen has parsed and validated it, into a
// plan, as a read is (compiled.go), and later requests with the same text
// (or APQ hash) execute the plan.
//
// A read plan may give up at any point and let gqlgen read again; a write
// plan may not once a field has run. So everything that can refuse a
// request before gqlgen would run a field is decided first: the variables
// coerced (a JSON value checked and compacted into the stored bytes in one
// pass, compactValue), each field's arguments read, @auth, the complexity
// limit, the request's deadline. Anything the plan is not sure to answer
// as gqlgen would makes it give up there, with nothing run. After that the
// fields run one after another in document order, each through the
// function gqlgen's resolver calls (writes.go), and what a field returns
// is written as gqlgen writes it: the payload's fields in selection order,
// or null and the error, through the same error presenter at the field's
// path. compiledwrites_test.go runs a corpus and a fuzzer of mutations
// through both paths against two Redis servers and requires the same
// responses and the same Redis contents.

const (
	fieldSet plannedField = iota + 100
	fieldDelete
	fieldIncrement
	fieldExpire
	fieldDeleteMany
	fieldSetMany
	fieldInvalidateTags
)

var plannedWrites = map[string]plannedField{
	"cacheSet":            fieldSet,
	"cacheDelete":         fieldDelete,
	"cacheIncrement":      fieldIncrement,
	"cacheExpire":         fieldExpire,
	"cacheDeleteMany":     fieldDeleteMany,
	"cacheSetMany":        fieldSetMany,
	"cacheInvalidateTags": fieldInvalidateTags,
	"__typename":          fieldTypename,
}

// payloadType is the payload of a write field.
type payloadType struct {
	name string
	// implementors is what CollectFields takes for it (read only).
	implementors []string
	fields       map[string]bool
}

var payloadTypes = map[plannedField]payloadType{
	fieldSet:        setPayloadType,
	fieldSetMany:    setPayloadType,
	fieldDelete:     deletePayloadType,
	fieldDeleteMany: deletePayloadType,
	fieldIncrement: {"CacheCounterPayload", []string{"CacheCounterPayload"}, map[string]bool{
		"__typename": true, "key": true, "value": true, "backend": true, "failure": true, "message": true,
	}},
	fieldInvalidateTags: {"CacheInvalidatePayload", []string{"CacheInvalidatePayload"}, map[string]bool{
		"__typename": true, "tags": true, "deleted": true, "backend": true, "failure": true, "message": true,
	}},
	fieldExpire: {"CacheExpirePayload", []string{"CacheExpirePayload"}, map[string]bool{
		"__typename": true, "key": true, "existed": true, "backend": true, "failure": true, "message": true,
	}},
}

var setPayloadType = payloadType{"CacheSetPayload", []string{"CacheSetPayload"}, map[string]bool{
	"__typename": true, "key": true, "stored": true, "backend": true, "ttlSeconds": true, "failure": true, "message": true, "currentEtag": true,
}}

var deletePayloadType = payloadType{"CacheDeletePayload", []string{"CacheDeletePayload"}, map[string]bool{
	"__typename": true, "key": true, "deleted": true, "backend": true, "failure": true, "message": true,
}}

// writePlan is what a mutation's plan holds beyond a query's.
type writePlan struct {
	// args are each write field's arguments, by the field in the document.
	args map[*ast.Field]*writeArgs
	// payloads are the payload fields of each of the plan's root fields,
	// when those do not depend on the variables.
	payloads [][]graphql.CollectedField
	// listsFromVariables says a cacheDeleteMany takes its keys, or a
	// cacheSetMany its entries, from a variable: the complexity then
	// depends on the request.
	listsFromVariables bool
}

// argSource is where an argument's value comes from.
type argSource struct {
	given bool // the argument is in the document
	v     int  // the variable's index in the plan's, or -1 for a literal
	// lit is a literal's value (lit.null for null); json a value literal
	// as the JSON scalar coerces it, nil for null.
	lit  varValue
	json model.JSON
}

// writeArgs are a write field's arguments (those of its kind).
type writeArgs struct {
	key, value, ttlSeconds, ifAbsent, ifEtag, tags, lease argSource
	by, keys, entries                                     argSource
}

// compileWrites makes a plan of a mutation, if every root field is one a
// plan executes.
func (c *compiledReads) compileWrites(ctx context.Context, doc *ast.QueryDocument, op *ast.OperationDefinition) (*plan, bool) {
	pl := &plan{doc: doc, op: op, writes: &writePlan{args: map[*ast.Field]*writeArgs{}}}
	for _, def := range op.VariableDefinitions {
		v, ok := planVariable(def)
		if !ok {
			return nil, false
		}
		pl.vars = append(pl.vars, v)
	}
	dynamic, ok := pl.compileRootWrites(op.SelectionSet, doc.Fragments, map[string]bool{})
	if !ok {
		return nil, false
	}
	pl.complexity = -1
	if !dynamic && !pl.writes.listsFromVariables {
		pl.complexity = complexity.Calculate(ctx, c.es, op, nil)
	}
	if !dynamic {
		oc := &graphql.OperationContext{Doc: doc, Operation: op}
		pl.fields = graphql.CollectFields(oc, op.SelectionSet, mutationRoot)
		pl.writes.payloads = payloadsOf(oc, pl.fields)
	}
	return pl, true
}

// compileRootWrites checks the mutation's selection set and reads each
// write field's arguments; it reports whether there is @skip or @include
// anywhere.
func (pl *plan) compileRootWrites(set ast.SelectionSet, fragments ast.FragmentDefinitionList, seen map[string]bool) (dynamic, ok bool) {
	return walkSelections(set, fragments, "Mutation", seen, func(f *ast.Field) (bool, bool) {
		return pl.compileWriteField(f, fragments)
	})
}

// compileWriteField checks one root field of a mutation and reads a write
// field's arguments, once per field of the document.
func (pl *plan) compileWriteField(s *ast.Field, fragments ast.FragmentDefinitionList) (dynamic, ok bool) {
	kind, planned := plannedWrites[s.Name]
	if !planned {
		return false, false
	}
	if kind == fieldTypename {
		return false, len(s.SelectionSet) == 0
	}
	if _, known := pl.writes.args[s]; !known {
		args, ok := pl.compileWriteArgs(kind, s)
		if !ok {
			return false, false
		}
		pl.writes.args[s] = args
		if kind == fieldDeleteMany && args.keys.v >= 0 || kind == fieldSetMany && args.entries.v >= 0 {
			pl.writes.listsFromVariables = true
		}
	}
	return compilePayload(s.SelectionSet, payloadTypes[kind], fragments)
}

// compilePayload checks a payload's selection set: its own scalar fields
// and __typename, in fragments on its type or none.
func compilePayload(set ast.SelectionSet, t payloadType, fragments ast.FragmentDefinitionList) (dynamic, ok bool) {
	return walkSelections(set, fragments, t.name, nil, func(f *ast.Field) (bool, bool) {
		return false, t.fields[f.Name] && len(f.SelectionSet) == 0 && len(f.Arguments) == 0
	})
}

// compileWriteArgs reads a write field's arguments: each a variable of the
// argument's type, or a literal, coerced now.
func (pl *plan) compileWriteArgs(kind plannedField, f *ast.Field) (*writeArgs, bool) {
	none := argSource{v: -1} // an argument left out
	a := &writeArgs{none, none, none, none, none, none, none, none, none, none}
	type slot struct {
		src  *argSource
		kind varKind
	}
	slots := map[string]slot{"key": {&a.key, varString}}
	switch kind {
	case fieldIncrement:
		slots["by"] = slot{&a.by, varInt64}
		slots["ttlSeconds"] = slot{&a.ttlSeconds, varInt}
	case fieldExpire:
		slots["ttlSeconds"] = slot{&a.ttlSeconds, varInt}
	case fieldDeleteMany:
		slots = map[string]slot{"keys": {&a.keys, varStringList}}
	case fieldSetMany:
		slots = map[string]slot{"entries": {&a.entries, varEntries}}
	case fieldInvalidateTags:
		slots = map[string]slot{"tags": {&a.tags, varStringList}}
	case fieldSet:
		slots["value"] = slot{&a.value, varJSON}
		slots["ttlSeconds"] = slot{&a.ttlSeconds, varInt}
		slots["ifAbsent"] = slot{&a.ifAbsent, varBoolean}
		slots["ifEtag"] = slot{&a.ifEtag, varString}
		slots["tags"] = slot{&a.tags, varStringList}
		slots["lease"] = slot{&a.lease, varString}
	}
	for _, arg := range f.Arguments {
		s, known := slots[arg.Name]
		if !known {
			return nil, false
		}
		src, ok := pl.argumentSource(arg.Value, s.kind)
		if !ok {
			return nil, false
		}
		*s.src = src
	}
	// The key (or keys) are required: validation has seen to it; a plan
	// checks.
	switch kind {
	case fieldDeleteMany:
		return a, a.keys.given && (a.keys.v >= 0 || !a.keys.lit.null)
	case fieldSetMany:
		return a, a.entries.given && (a.entries.v >= 0 || !a.entries.lit.null)
	case fieldInvalidateTags:
		return a, a.tags.given && (a.tags.v >= 0 || !a.tags.lit.null)
	}
	return a, a.key.given && (a.key.v >= 0 || !a.key.lit.null)
}

// argumentSource reads one argument's value in the document.
func (pl *plan) argumentSource(v *ast.Value, kind varKind) (argSource, bool) {
	src := argSource{given: true, v: -1}
	if v.Kind == ast.Variable {
		src.v = pl.varIndex(v.Raw)
		return src, src.v >= 0 && pl.vars[src.v].kind == kind
	}
	if v.Kind == ast.NullValue {
		src.lit.null = true
		return src, true
	}
	switch kind {
	case varString:
		src.lit.str = v.Raw // gqlparser's Raw is the string's value, unescaped
		return src, v.Kind == ast.StringValue || v.Kind == ast.BlockValue
	case varInt:
		if v.Kind != ast.IntValue {
			return src, false
		}
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		src.lit.i = n
		return src, err == nil
	case varInt64:
		// As the Int64 scalar reads a literal: an integer, or a string of
		// decimal digits (anything else it refuses, which gqlgen answers).
		if v.Kind != ast.IntValue && v.Kind != ast.StringValue {
			return src, false
		}
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		src.lit.i = n
		return src, err == nil
	case varBoolean:
		src.lit.b = v.Raw == "true"
		return src, v.Kind == ast.BooleanValue
	case varStringList:
		if v.Kind != ast.ListValue {
			return src, false
		}
		src.lit.list = []string{}
		for _, child := range v.Children {
			if child.Value.Kind != ast.StringValue && child.Value.Kind != ast.BlockValue {
				return src, false
			}
			src.lit.list = append(src.lit.list, child.Value.Raw)
		}
		return src, true
	case varEntries:
		// Entries written in the document, coerced now as gqlgen's input
		// unmarshaler coerces gqlparser's value of them.
		if v.Kind != ast.ListValue || hasVariable(v) {
			return src, false
		}
		d, err := v.Value(nil)
		if err != nil {
			return src, false
		}
		entries, ok := literalEntries(d)
		src.lit.entries = entries
		return src, ok
	case varJSON:
		// A value written in the document, coerced now as gqlgen coerces
		// it for each request: gqlparser's value, encoded by the scalar.
		if hasVariable(v) {
			return src, false
		}
		d, err := v.Value(nil)
		if err != nil || d == nil {
			return src, false
		}
		if src.json.UnmarshalGQL(d) != nil {
			return src, false
		}
		return src, true
	}
	return src, false
}

func hasVariable(v *ast.Value) bool {
	if v.Kind == ast.Variable {
		return true
	}
	for _, child := range v.Children {
		if hasVariable(child.Value) {
			return true
		}
	}
	return false
}

// payloadsOf collects each root field's payload fields.
func payloadsOf(oc *graphql.OperationContext, fields []graphql.CollectedField) [][]graphql.CollectedField {
	out := make([][]graphql.CollectedField, len(fields))
	for i, f := range fields {
		if t, ok := payloadTypes[plannedWrites[f.Name]]; ok {
			out[i] = graphql.CollectFields(oc, f.Selections, t.implementors)
		}
	}
	return out
}

// writeCall is one field's call, its arguments read.
type writeCall struct {
	set        setArgs
	key        string
	by         *model.Int64
	ttlSeconds *int
	keys       []string
	entries    []*model.CacheSetInput
}

// writeResult is what a field's call returned: the payload of its kind.
type writeResult struct {
	set         *model.CacheSetPayload
	del         *model.CacheDeletePayload
	counter     *model.CacheCounterPayload
	expire      *model.CacheExpirePayload
	dels        []*model.CacheDeletePayload
	sets        []*model.CacheSetPayload
	invalidated *model.CacheInvalidatePayload
}

// maxPlanWrites is how many fields' calls fit without an allocation.
const maxPlanWrites = 4

// serveWrites answers a mutation from its plan, or reports false having
// run nothing. Its variables are coerced, its fields collected, @auth and
// the complexity limit passed (serve).
func (c *compiledReads) serveWrites(ctx context.Context, w http.ResponseWriter, pl *plan, fields []graphql.CollectedField, vars []varValue, varMap map[string]any, contentType string) bool {
	payloads := pl.writes.payloads
	if payloads == nil {
		payloads = payloadsOf(&graphql.OperationContext{Doc: pl.doc, Operation: pl.op, Variables: varMap}, fields)
	}
	var callsArr [maxPlanWrites]writeCall
	calls := callsArr[:0]
	if len(fields) > maxPlanWrites {
		calls = make([]writeCall, 0, len(fields))
	}
	lists := false // a field reports errors of its own, at its indexes
	for _, f := range fields {
		call, ok := pl.call(plannedWrites[f.Name], pl.writes.args[f.Field], vars)
		if !ok {
			return false
		}
		calls = append(calls, call)
		lists = lists || plannedWrites[f.Name] == fieldDeleteMany || plannedWrites[f.Name] == fieldSetMany
	}
	if ctx.Err() != nil {
		return false // past its deadline: gqlgen says what that means
	}

	// From here on the plan answers: fields run.
	buf := responseBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<10 {
			responseBuffers.Put(buf)
		}
	}()
	// Errors are collected as gqlgen collects them, in a response context,
	// made at the first error (or first for a field that may report some).
	var errCtx context.Context
	if lists {
		errCtx = graphql.WithResponseContext(ctx, c.presenter, c.recover)
	}
	buf.WriteString(`{"data":{`)
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		kind := plannedWrites[f.Name]
		if kind == fieldTypename {
			buf.WriteString(`"Mutation"`)
			continue
		}
		fctx := ctx
		if errCtx != nil {
			fctx = fieldContext(errCtx, f)
		}
		res, panicked, err := c.run(fctx, kind, calls[i])
		if err == nil && panicked == nil {
			writePayload(buf, kind, payloads[i], res)
			continue
		}
		buf.WriteString("null")
		if errCtx == nil {
			errCtx = graphql.WithResponseContext(ctx, c.presenter, c.recover)
		}
		fieldError(fieldContext(errCtx, f), c.recover, err, panicked)
	}
	buf.WriteByte('}')
	out := buf.Bytes()
	var errs gqlerror.List
	if errCtx != nil {
		errs = graphql.GetErrors(errCtx)
	}
	if len(errs) > 0 {
		resp := graphql.Response{Errors: errs, Data: out[len(`{"data":`):]}
		// In the order of the fields they are about, as warnings{} puts
		// them.
		order := make(map[string]int, len(fields))
		for i, f := range fields {
			order[f.Alias] = i
		}
		slices.SortStableFunc(resp.Errors, func(a, b *gqlerror.Error) int { return comparePaths(order, a.Path, b.Path) })
		b, err := marshalJSON(&resp)
		if err != nil {
			b = []byte(`{"errors":[{"message":"internal server error","extensions":{"code":"` + CodeInternal + `"}}]}`)
		}
		out = b
	} else {
		buf.WriteByte('}')
		out = buf.Bytes()
	}
	setContentType(w, contentType)
	_, _ = w.Write(out)
	c.served.Add(1)
	return true
}

// call reads a field's arguments for one request.
func (pl *plan) call(kind plannedField, a *writeArgs, vars []varValue) (writeCall, bool) {
	var call writeCall
	ok := true
	switch kind {
	case fieldSet:
		call.set, ok = pl.setCall(a, vars)
	case fieldDelete:
		call.key, ok = pl.stringFrom(a.key, vars)
	case fieldIncrement, fieldExpire:
		call.key, ok = pl.stringFrom(a.key, vars)
		if v, set := pl.optional(a.ttlSeconds, vars); set {
			n := int(v.i)
			call.ttlSeconds = &n
		}
		// by left out is 1, the schema's default, in cacheIncrement as
		// in gqlgen's arguments.
		if v, set := pl.optional(a.by, vars); set && kind == fieldIncrement {
			by := model.Int64(v.i)
			call.by = &by
		}
	case fieldDeleteMany:
		v, set := pl.optional(a.keys, vars)
		ok = set && !v.nullElem
		call.keys = v.list
	case fieldSetMany:
		v, set := pl.optional(a.entries, vars)
		ok = set
		call.entries = v.entries
	case fieldInvalidateTags:
		v, set := pl.optional(a.tags, vars)
		ok = set && !v.nullElem
		call.keys = v.list
	}
	return call, ok
}

// run runs a field's work, a panic in it recovered as gqlgen recovers a
// resolver's.
func (c *compiledReads) run(ctx context.Context, kind plannedField, call writeCall) (res writeResult, panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, panicked, err = writeResult{}, r, nil
		}
	}()
	cache := c.resolver.Cache
	switch kind {
	case fieldSet:
		res.set, err = cacheSet(ctx, cache, call.set)
	case fieldDelete:
		res.del, err = cacheDelete(ctx, cache, call.key)
	case fieldIncrement:
		res.counter, err = cacheIncrement(ctx, cache, call.key, call.by, call.ttlSeconds)
	case fieldExpire:
		res.expire, err = cacheExpire(ctx, cache, call.key, call.ttlSeconds)
	case fieldDeleteMany:
		res.dels, err = cacheDeleteMany(ctx, cache, call.keys)
	case fieldSetMany:
		res.sets, err = cacheSetMany(ctx, cache, call.entries)
	case fieldInvalidateTags:
		res.invalidated, err = cacheInvalidateTags(ctx, cache, call.keys)
	}
	return res, nil, err
}

// fieldContext is the context gqlgen resolves a root field of a mutation
// in, within the response context ctx: the mutation's, then the field's.
func fieldContext(ctx context.Context, f graphql.CollectedField) context.Context {
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Mutation"})
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Mutation", Field: f, IsMethod: true, IsResolver: true})
}

// fieldError records what a root field that failed answers, as gqlgen's
// resolveField does, in the field's context: the error with the field's
// location, through the error presenter; a panic through the recover
// func, without the location, as there.
func fieldError(ctx context.Context, recoverFunc graphql.RecoverFunc, err error, panicked any) {
	if panicked != nil {
		graphql.AddError(ctx, graphql.ErrorOnPath(ctx, recoverFunc(ctx, panicked)))
		return
	}
	err = graphql.AddFieldLocationToError(ctx, err)
	if list, ok := err.(gqlerror.List); ok {
		for _, e := range list {
			graphql.AddError(ctx, e)
		}
		return
	}
	graphql.AddError(ctx, err)
}

// writePayload writes what a field returned, its selected fields as
// gqlgen marshals them.
func writePayload(buf *bytes.Buffer, kind plannedField, fields []graphql.CollectedField, res writeResult) {
	switch kind {
	case fieldSet:
		writeSetPayload(buf, fields, res.set)
	case fieldDelete:
		writeDeletePayload(buf, fields, res.del)
	case fieldIncrement:
		writeCounterPayload(buf, fields, res.counter)
	case fieldExpire:
		writeExpirePayload(buf, fields, res.expire)
	case fieldInvalidateTags:
		writeInvalidatePayload(buf, fields, res.invalidated)
	case fieldDeleteMany:
		if res.dels == nil {
			buf.WriteString("null")
			return
		}
		buf.WriteByte('[')
		for i, p := range res.dels {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeDeletePayload(buf, fields, p)
		}
		buf.WriteByte(']')
	case fieldSetMany:
		if res.sets == nil {
			buf.WriteString("null")
			return
		}
		buf.WriteByte('[')
		for i, p := range res.sets {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeSetPayload(buf, fields, p)
		}
		buf.WriteByte(']')
	}
}

// setCall reads cacheSet's arguments for one request.
func (pl *plan) setCall(a *writeArgs, vars []varValue) (setArgs, bool) {
	key, ok := pl.stringFrom(a.key, vars)
	if !ok {
		return setArgs{}, false
	}
	out := setArgs{key: key}
	switch src := a.value; {
	case src.v >= 0:
		v := vars[src.v]
		out.valueGiven = !v.absent
		if !v.null {
			out.value = model.JSON(v.raw)
		}
	default:
		out.valueGiven, out.value = src.given, src.json
	}
	if v, set := pl.optional(a.ttlSeconds, vars); set {
		n := int(v.i)
		out.ttlSeconds = &n
	}
	if v, set := pl.optional(a.ifAbsent, vars); set {
		b := v.b
		out.ifAbsent = &b
	}
	if v, set := pl.optional(a.ifEtag, vars); set {
		s := v.str
		out.ifEtag = &s
	}
	if v, set := pl.optional(a.lease, vars); set {
		s := v.str
		out.lease = &s
	}
	if v, set := pl.optional(a.tags, vars); set {
		if v.nullElem {
			return setArgs{}, false // gqlgen refuses it for [String!]
		}
		out.tags = v.list
	}
	return out, true
}

// stringFrom is a required string argument's value.
func (pl *plan) stringFrom(src argSource, vars []varValue) (string, bool) {
	if src.v >= 0 {
		v := vars[src.v]
		return v.str, !v.null
	}
	return src.lit.str, src.given && !src.lit.null
}

// optional is an optional argument's value, and whether it has one (not
// left out, not null).
func (pl *plan) optional(src argSource, vars []varValue) (varValue, bool) {
	v := src.lit
	if src.v >= 0 {
		v = vars[src.v]
	} else if !src.given {
		return varValue{}, false
	}
	return v, !v.null
}

// writeSetPayload writes a CacheSetPayload's selected fields as gqlgen
// marshals them.
func writeSetPayload(buf *bytes.Buffer, fields []graphql.CollectedField, p *model.CacheSetPayload) {
	if p == nil {
		buf.WriteString("null") // a list's element refused
		return
	}
	buf.WriteByte('{')
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		switch f.Name {
		case "__typename":
			buf.WriteString(`"CacheSetPayload"`)
		case "key":
			writeString(buf, p.Key)
		case "stored":
			writeBool(buf, p.Stored)
		case "backend":
			writeEnum(buf, p.Backend)
		case "ttlSeconds":
			writeInt(buf, p.TTLSeconds)
		case "failure":
			writeEnum(buf, p.Failure)
		case "message":
			writeOptionalString(buf, p.Message)
		case "currentEtag":
			writeOptionalString(buf, p.CurrentEtag)
		}
	}
	buf.WriteByte('}')
}

// writeDeletePayload writes a CacheDeletePayload's selected fields.
func writeDeletePayload(buf *bytes.Buffer, fields []graphql.CollectedField, p *model.CacheDeletePayload) {
	if p == nil {
		buf.WriteString("null") // a list's element refused
		return
	}
	buf.WriteByte('{')
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		switch f.Name {
		case "__typename":
			buf.WriteString(`"CacheDeletePayload"`)
		case "key":
			writeString(buf, p.Key)
		case "deleted":
			writeBool(buf, p.Deleted)
		case "backend":
			writeEnum(buf, p.Backend)
		case "failure":
			writeEnum(buf, p.Failure)
		case "message":
			writeOptionalString(buf, p.Message)
		}
	}
	buf.WriteByte('}')
}

// writeCounterPayload writes a CacheCounterPayload's selected fields.
func writeCounterPayload(buf *bytes.Buffer, fields []graphql.CollectedField, p *model.CacheCounterPayload) {
	buf.WriteByte('{')
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		switch f.Name {
		case "__typename":
			buf.WriteString(`"CacheCounterPayload"`)
		case "key":
			writeString(buf, p.Key)
		case "value":
			// The Int64 scalar: a string of digits.
			if p.Value == nil {
				buf.WriteString("null")
				break
			}
			buf.WriteByte('"')
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(*p.Value), 10))
			buf.WriteByte('"')
		case "backend":
			writeEnum(buf, p.Backend)
		case "failure":
			writeEnum(buf, p.Failure)
		case "message":
			writeOptionalString(buf, p.Message)
		}
	}
	buf.WriteByte('}')
}

// writeExpirePayload writes a CacheExpirePayload's selected fields.
func writeExpirePayload(buf *bytes.Buffer, fields []graphql.CollectedField, p *model.CacheExpirePayload) {
	buf.WriteByte('{')
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		switch f.Name {
		case "__typename":
			buf.WriteString(`"CacheExpirePayload"`)
		case "key":
			writeString(buf, p.Key)
		case "existed":
			writeBool(buf, p.Existed)
		case "backend":
			writeEnum(buf, p.Backend)
		case "failure":
			writeEnum(buf, p.Failure)
		case "message":
			writeOptionalString(buf, p.Message)
		}
	}
	buf.WriteByte('}')
}

// writeInvalidatePayload writes a CacheInvalidatePayload's selected
// fields.
func writeInvalidatePayload(buf *bytes.Buffer, fields []graphql.CollectedField, p *model.CacheInvalidatePayload) {
	buf.WriteByte('{')
	for i, f := range fields {
		writeFieldName(buf, i, f.Alias)
		switch f.Name {
		case "__typename":
			buf.WriteString(`"CacheInvalidatePayload"`)
		case "tags":
			buf.WriteByte('[')
			for j, t := range p.Tags {
				if j > 0 {
					buf.WriteByte(',')
				}
				writeString(buf, t)
			}
			buf.WriteByte(']')
		case "deleted":
			n := p.Deleted
			writeInt(buf, &n)
		case "backend":
			writeEnum(buf, p.Backend)
		case "failure":
			writeEnum(buf, p.Failure)
		case "message":
			writeOptionalString(buf, p.Message)
		}
	}
	buf.WriteByte('}')
}

// writeFieldName writes a field's response key (a GraphQL name: nothing
// to escape), after a comma for all but the first.
func writeFieldName(buf *bytes.Buffer, i int, alias string) {
	if i > 0 {
		buf.WriteByte(',')
	}
	buf.WriteByte('"')
	buf.WriteString(alias)
	buf.WriteString(`":`)
}

// writeString writes s as gqlgen's MarshalString does: as it is when it
// has nothing to escape, otherwise through MarshalString itself.
func writeString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			graphql.MarshalString(s).MarshalGQL(buf)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

func writeOptionalString(buf *bytes.Buffer, s *string) {
	if s == nil {
		buf.WriteString("null")
		return
	}
	writeString(buf, *s)
}

func writeBool(buf *bytes.Buffer, b bool) {
	if b {
		buf.WriteString("true")
		return
	}
	buf.WriteString("false")
}

func writeInt(buf *bytes.Buffer, n *int) {
	if n == nil {
		buf.WriteString("null")
		return
	}
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(*n), 10))
}

// writeEnum writes an enum value as gqlgen's generated MarshalGQL does
// (strconv.Quote of a name of capitals and underscores: the name quoted).
func writeEnum[E ~string](buf *bytes.Buffer, e *E) {
	if e == nil {
		buf.WriteString("null")
		return
	}
	buf.WriteByte('"')
	buf.WriteString(string(*e))
	buf.WriteByte('"')
}

// coerceEntries reads a [CacheSetInput!]! variable as gqlgen would have
// it after coercion and rawValues: each entry's key, its value as stored
// (compacted, compactValue), its ttlSeconds and tags. Anything gqlparser
// would refuse or coerce in its own way (a single object for the list, a
// member that is not a field, a duplicate, a missing key, a ttlSeconds that
// is not a plain integer, a null where none may be) is gqlgen's to answer.
func coerceEntries(raw []byte) ([]*model.CacheSetInput, bool) {
	if raw[0] != '[' {
		return nil, false
	}
	out := []*model.CacheSetInput{}
	ok := scanArray(raw, func(e []byte) bool {
		in := &model.CacheSetInput{}
		var seen [4]bool
		if !scanObject(e, func(key, v []byte) bool {
			var field int
			null := string(v) == "null"
			switch string(key) {
			case "key":
				field = 0
				s, ok := jsonString(v)
				if !ok {
					return false
				}
				in.Key = s
			case "value":
				field = 1
				var value model.JSON
				if !null {
					stored, ok := compactValue(v)
					if !ok {
						return false
					}
					value = stored
				}
				in.Value = graphql.OmittableOf(value)
			case "ttlSeconds":
				field = 2
				if !null {
					if v[0] != '-' && (v[0] < '0' || v[0] > '9') || bytes.ContainsAny(v, ".eE") {
						return false
					}
					n, err := strconv.ParseInt(string(v), 10, 64)
					if err != nil {
						return false
					}
					ttl := int(n)
					in.TTLSeconds = &ttl
				}
			case "tags":
				field = 3
				if !null {
					in.Tags = []string{}
					if !scanArray(v, func(t []byte) bool {
						s, ok := jsonString(t)
						in.Tags = append(in.Tags, s)
						return ok
					}) {
						return false
					}
				}
			default:
				return false
			}
			if seen[field] {
				return false
			}
			seen[field] = true
			return true
		}) || !seen[0] {
			return false
		}
		out = append(out, in)
		return true
	})
	return out, ok
}

// literalEntries coerces entries written in the document, from gqlparser's
// value of them, as gqlgen's input unmarshaler does.
func literalEntries(d any) ([]*model.CacheSetInput, bool) {
	list, ok := d.([]any)
	if !ok {
		return nil, false
	}
	out := make([]*model.CacheSetInput, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		in := &model.CacheSetInput{}
		for name, v := range m {
			switch name {
			case "key":
				s, ok := v.(string)
				if !ok {
					return nil, false
				}
				in.Key = s
			case "value":
				var value model.JSON
				if v != nil && value.UnmarshalGQL(v) != nil {
					return nil, false
				}
				in.Value = graphql.OmittableOf(value)
			case "ttlSeconds":
				if v != nil {
					n, ok := v.(int64)
					if !ok {
						return nil, false
					}
					ttl := int(n)
					in.TTLSeconds = &ttl
				}
			case "tags":
				if v != nil {
					tags, ok := v.([]any)
					if !ok {
						return nil, false
					}
					in.Tags = make([]string, len(tags))
					for i, t := range tags {
						if in.Tags[i], ok = t.(string); !ok {
							return nil, false
						}
					}
				}
			default:
				return nil, false
			}
		}
		out = append(out, in)
	}
	return out, true
}

// entriesAsAny is a [CacheSetInput!]! variable as gqlgen holds it, for the
// complexity (which counts the entries).
func entriesAsAny(entries []*model.CacheSetInput) []any {
	out := make([]any, len(entries))
	for i, e := range entries {
		m := map[string]any{"key": e.Key}
		if e.Value.IsSet() {
			if v := e.Value.Value(); v != nil {
				m["value"] = model.RawJSON(v)
			} else {
				m["value"] = nil
			}
		}
		if e.TTLSeconds != nil {
			m["ttlSeconds"] = int64(*e.TTLSeconds)
		}
		if e.Tags != nil {
			tags := make([]any, len(e.Tags))
			for j, t := range e.Tags {
				tags[j] = t
			}
			m["tags"] = tags
		}
		out[i] = m
	}
	return out
}
