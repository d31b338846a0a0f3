package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"unsafe"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/school-erp/cache-service/graph/model"
)

// A value is any JSON, null included: null is valid JSON, and the cache
// stores it like any other value. But it must be given: a write without
// one is the client's mistake, not a request to store null.

// requiredValue is the JSON text to store for a value argument: the value,
// or JSON null when the client gave null, or an error when it gave
// nothing. gqlgen hands a nullable argument over as nil both ways, so the
// caller says which (given).
func requiredValue(value model.JSON, given bool) (model.JSON, error) {
	switch {
	case value != nil:
		return value, nil
	case given:
		return model.JSON("null"), nil
	default:
		return nil, badInput("value is required (null stores JSON null)")
	}
}

// argumentGiven reports whether the field being resolved was given the
// argument name, null included: in the document, or through a variable the
// request set (a variable left unset leaves the argument out, as the
// GraphQL spec has it).
func argumentGiven(ctx context.Context, name string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return false
	}
	arg := fc.Field.Arguments.ForName(name)
	switch {
	case arg == nil:
		return false
	case arg.Value.Kind == ast.Variable:
		_, set := graphql.GetOperationContext(ctx).Variables[arg.Value.Raw]
		return set
	default:
		return true
	}
}

// Values are stored as the client sent them. gqlgen decodes a request's
// variables into Go maps and slices before the JSON scalar sees them, and a
// map has no order: re-encoding one sorts its keys (and re-spells numbers
// and escapes). So for each JSON-typed place in the variables (a JSON
// variable, or a JSON field of an input object or list in one), rawValues
// puts back the JSON text the request carried there, which the scalar then
// stores as it is (compacted). Values written as literals in the document
// are GraphQL, not JSON, and go through the scalar's own encoding.

type rawBodyKey struct{}

// withRawBody keeps a POST body for rawValues to read the variables' JSON
// text from.
func withRawBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, rawBodyKey{}, body)
}

// rawValues is the operation context mutator that puts the JSON text back.
type rawValues struct{ schema *ast.Schema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = rawValues{}

func (rawValues) ExtensionName() string                   { return "RawJSONValues" }
func (rawValues) Validate(graphql.ExecutableSchema) error { return nil }

func (v rawValues) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	body, _ := ctx.Value(rawBodyKey{}).([]byte)
	if body == nil {
		return nil // not a POST: GET carries queries only, which take no JSON
	}
	var raw map[string]json.RawMessage
	for _, def := range oc.Operation.VariableDefinitions {
		if !v.carriesJSON(def.Type, map[string]bool{}) {
			continue
		}
		if raw == nil {
			var b struct {
				Variables map[string]json.RawMessage `json:"variables"`
			}
			// The transport has decoded this body already; this cannot fail.
			if json.Unmarshal(body, &b) != nil || b.Variables == nil {
				return nil
			}
			raw = b.Variables
		}
		if text, ok := raw[def.Variable]; ok {
			oc.Variables[def.Variable] = v.restore(def.Type, oc.Variables[def.Variable], text)
		}
	}
	return nil
}

// carriesJSON reports whether a value of type t has a JSON scalar in it.
func (v rawValues) carriesJSON(t *ast.Type, seen map[string]bool) bool {
	if t.Elem != nil {
		return v.carriesJSON(t.Elem, seen)
	}
	if t.NamedType == "JSON" {
		return true
	}
	def := v.schema.Types[t.NamedType]
	if def == nil || def.Kind != ast.InputObject || seen[def.Name] {
		return false
	}
	seen[def.Name] = true
	for _, f := range def.Fields {
		if v.carriesJSON(f.Type, seen) {
			return true
		}
	}
	return false
}

// restore returns decoded, the coerced value of type t, with the JSON text
// from text (the same value as the request spelled it) at each JSON place.
// Where the two do not line up it leaves decoded as it is.
func (v rawValues) restore(t *ast.Type, decoded any, text json.RawMessage) any {
	if decoded == nil {
		return nil
	}
	switch {
	case t.Elem != nil:
		// A []any from the request, or, for a single value where a list is
		// expected (which GraphQL makes a list of one), a slice the
		// validator typed after it.
		list := reflect.ValueOf(decoded)
		if list.Kind() != reflect.Slice {
			return decoded
		}
		var items []json.RawMessage
		if json.Unmarshal(text, &items) != nil {
			items = []json.RawMessage{text}
		}
		if len(items) != list.Len() {
			return decoded
		}
		for i, item := range items {
			restored := reflect.ValueOf(v.restore(t.Elem, list.Index(i).Interface(), item))
			if restored.IsValid() && restored.Type().AssignableTo(list.Type().Elem()) {
				list.Index(i).Set(restored)
			}
		}
		return decoded
	case t.NamedType == "JSON":
		var b bytes.Buffer
		if json.Compact(&b, text) != nil {
			return decoded
		}
		return model.RawJSON(b.Bytes())
	}
	def := v.schema.Types[t.NamedType]
	obj, ok := decoded.(map[string]any)
	if def == nil || def.Kind != ast.InputObject || !ok {
		return decoded
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(text, &fields) != nil {
		return decoded
	}
	for _, f := range def.Fields {
		if fv, ok := obj[f.Name]; ok && fields[f.Name] != nil && v.carriesJSON(f.Type, map[string]bool{}) {
			obj[f.Name] = v.restore(f.Type, fv, fields[f.Name])
		}
	}
	return obj
}

// compactValue is what rawValues makes of a JSON variable's text, for the
// compiled write path, in one pass over it: the stored bytes (the text
// with the space between tokens removed, as json.Compact does, into one
// new slice the cache may keep), having checked each number by the rule
// shapeLimits applies to variables (checkNumber). It reports false for a
// number that rule refuses, and for text that is not one JSON value; the
// request's scanner (scan.go) has validated the text already, so the
// second is a guard, not a validator.
func compactValue(src []byte) ([]byte, bool) {
	dst := make([]byte, 0, len(src))
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case c == '"':
			end := closingQuote(src, i+1)
			if end < 0 {
				return nil, false
			}
			dst = append(dst, src[i:end+1]...)
			i = end + 1
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' || '0' <= c && c <= '9':
			j, integer := i+1, true
			for ; j < len(src); j++ {
				d := src[j]
				if d == '.' || d == 'e' || d == 'E' {
					integer = false
				} else if !('0' <= d && d <= '9' || d == '+' || d == '-') {
					break
				}
			}
			number := src[i:j]
			// Up to 18 digits always fit an int64: only longer integers,
			// and other numbers, need parsing.
			if !integer || len(number) > 18 {
				if checkNumber(unsafe.String(unsafe.SliceData(number), len(number)), integer) != nil {
					return nil, false
				}
			}
			dst = append(dst, number...)
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, len(dst) > 0
}

// closingQuote returns the index of the quote that closes the JSON string
// whose contents start at b[i], or -1.
func closingQuote(b []byte, i int) int {
	for {
		n := bytes.IndexByte(b[i:], '"')
		if n < 0 {
			return -1
		}
		q := i + n
		// Escaped when an odd number of backslashes precede it.
		k := q
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q
		}
		i = q + 1
	}
}
