package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
)

// Limits bound what one request may ask, against a client exhausting the
// service. Zero fields mean no limit.
type Limits struct {
	// Complexity is the largest query complexity: one per field, plus one
	// per key for cacheGetMany.
	Complexity int
	// Depth is the deepest selection nesting.
	Depth int
	// Tokens is the most lexical tokens the parser reads.
	Tokens int
	// Aliases is the most aliased fields in an operation.
	Aliases int
	// Operations is the most operations in one document.
	Operations int
}

// Error codes for limits.
const (
	CodeComplexityLimit = "COMPLEXITY_LIMIT_EXCEEDED" // gqlgen's own code
	CodeDepthLimit      = "DEPTH_LIMIT_EXCEEDED"
	CodeAliasLimit      = "ALIAS_LIMIT_EXCEEDED"
	CodeOperationLimit  = "OPERATION_LIMIT_EXCEEDED"
	CodeTokenLimit      = "TOKEN_LIMIT_EXCEEDED"
)

// tokenLimit refuses a document of more than max lexical tokens before it
// is parsed. gqlparser's parser has a token limit of its own (kept as a
// backstop), but what it returns is a plain parse error, coded
// GRAPHQL_PARSE_FAILED like any other: only its text would tell it apart.
// So the tokens are counted here, where the error can carry its own code.
type tokenLimit struct {
	max int
	// parsed is gqlgen's parsed-query cache: a document in it has been
	// parsed, so it was within the limit.
	parsed graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = tokenLimit{}

func (tokenLimit) ExtensionName() string                   { return "TokenLimit" }
func (tokenLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l tokenLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	// Every token but the end of input takes at least a byte, so a document
	// no longer than the limit is within it without being read: the hot
	// path.
	if len(p.Query) <= l.max {
		return nil
	}
	if _, ok := l.parsed.Get(ctx, p.Query); ok {
		return nil
	}
	lex := lexer.New(&ast.Source{Input: p.Query})
	for range l.max + 1 {
		tok, err := lex.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return nil // within the limit; the parser reports syntax errors
		}
	}
	return limitError(CodeTokenLimit, "the document exceeds the limit of %d tokens", l.max)
}

// shapeLimits checks depth, aliases and operations once the document is
// parsed and validated, before anything is resolved.
type shapeLimits struct{ Limits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = shapeLimits{}

func (shapeLimits) ExtensionName() string                   { return "ShapeLimits" }
func (shapeLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	// Before anything reads argument values (the complexity limit does):
	// gqlparser panics on a number literal it cannot represent. Variables
	// follow the same rules as literals: decoded as json.Number, 1e400
	// would otherwise be stored verbatim.
	if err := checkLiterals(oc.Operation.SelectionSet, oc.Doc.Fragments); err != nil {
		return err
	}
	for name, v := range oc.Variables {
		if err := checkVariable(v); err != nil {
			err.Message = "variable $" + name + ": " + err.Message
			return err
		}
	}
	if l.Operations > 0 && len(oc.Doc.Operations) > l.Operations {
		return limitError(CodeOperationLimit, "the document has %d operations; the limit is %d", len(oc.Doc.Operations), l.Operations)
	}
	depth, aliases := shape(oc.Operation.SelectionSet, oc.Doc.Fragments, 1)
	if l.Depth > 0 && depth > l.Depth {
		return limitError(CodeDepthLimit, "the operation nests %d levels deep; the limit is %d", depth, l.Depth)
	}
	if l.Aliases > 0 && aliases > l.Aliases {
		return limitError(CodeAliasLimit, "the operation has %d aliased fields; the limit is %d", aliases, l.Aliases)
	}
	return nil
}

// shape returns the depth of a selection set and how many aliased fields it
// holds, following fragments (validation has already refused cycles). The
// introspection fields on the query root (__schema, __type) add no depth:
// the schema query GraphiQL and code generators send nests 13 to 15 levels
// (type { ofType { ofType ... } }), and introspection has its own rule.
// GRAPHQL_INTROSPECTION allows or refuses it as a whole (noIntrospection),
// and what makes an introspection answer large, __Type's lists of types
// (fields, inputFields, interfaces, possibleTypes) nested in one another,
// is bounded by gqlparser's validation (its MaxIntrospectionDepth rule,
// graphql-js's: three such lists deep is refused). gqlgen's complexity
// leaves __schema out too. Their aliases count like any others.
func shape(set ast.SelectionSet, fragments ast.FragmentDefinitionList, level int) (depth, aliases int) {
	depth = level - 1
	for _, sel := range set {
		var d, a int
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				aliases++
			}
			d, a = level, 0
			if len(s.SelectionSet) > 0 {
				d, a = shape(s.SelectionSet, fragments, level+1)
			}
			if level == 1 && isIntrospection(s) {
				d = 0
			}
		case *ast.InlineFragment:
			d, a = shape(s.SelectionSet, fragments, level)
		case *ast.FragmentSpread:
			if f := fragments.ForName(s.Name); f != nil {
				d, a = shape(f.SelectionSet, fragments, level)
			}
		}
		depth, aliases = max(depth, d), aliases+a
	}
	return depth, aliases
}

// isIntrospection reports whether f, a field of the query root, is one of
// the introspection fields. __typename is not: it is a leaf, answered
// whatever the setting, and measured like any field.
func isIntrospection(f *ast.Field) bool { return f.Name == "__schema" || f.Name == "__type" }

// checkLiterals refuses number literals that do not fit a float64 or int64
// (1e400, or an integer of thirty digits), which gqlparser would panic on.
func checkLiterals(set ast.SelectionSet, fragments ast.FragmentDefinitionList) *gqlerror.Error {
	for _, sel := range set {
		var err *gqlerror.Error
		switch s := sel.(type) {
		case *ast.Field:
			for _, a := range s.Arguments {
				if err = checkValue(a.Value); err != nil {
					return err
				}
			}
			err = checkLiterals(s.SelectionSet, fragments)
		case *ast.InlineFragment:
			err = checkLiterals(s.SelectionSet, fragments)
		case *ast.FragmentSpread:
			if f := fragments.ForName(s.Name); f != nil {
				err = checkLiterals(f.SelectionSet, fragments)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkValue(v *ast.Value) *gqlerror.Error {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case ast.IntValue, ast.FloatValue:
		if err := checkNumber(v.Raw, v.Kind == ast.IntValue); err != nil {
			return err
		}
	}
	for _, child := range v.Children {
		if err := checkValue(child.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkVariable applies the literals' rules to the numbers in a variable's
// value, as the JSON decoder left them (json.Number, at any depth).
func checkVariable(v any) *gqlerror.Error {
	switch v := v.(type) {
	case json.Number:
		// As in GraphQL's grammar: an integer has neither a fraction nor
		// an exponent.
		return checkNumber(string(v), !strings.ContainsAny(string(v), ".eE"))
	case map[string]any:
		for _, child := range v {
			if err := checkVariable(child); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := checkVariable(child); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNumber is the one rule for numbers, literal or variable: an integer
// must fit an int64, any other number a float64.
func checkNumber(raw string, integer bool) *gqlerror.Error {
	var err error
	if integer {
		_, err = strconv.ParseInt(raw, 10, 64)
	} else {
		_, err = strconv.ParseFloat(raw, 64)
	}
	if err != nil {
		return &gqlerror.Error{Message: fmt.Sprintf("the number %.40s is out of range", raw), Extensions: map[string]any{"code": CodeBadUserInput}}
	}
	return nil
}

func limitError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}
