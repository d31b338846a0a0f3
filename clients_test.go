package main

import (
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/school-erp/cache-service/graph"
)

// TestOperationsFileCoversTheSchema: clients/operations.graphql, which
// clients generate their code from, validates against the schema and
// selects every field of every type an operation can return, and passes
// every argument of every root field, so that a field added to the schema
// without it fails here.
func TestOperationsFileCoversTheSchema(t *testing.T) {
	b, err := os.ReadFile("clients/operations.graphql")
	if err != nil {
		t.Fatal(err)
	}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
	doc, errs := gqlparser.LoadQueryWithRules(schema, string(b), nil) // nil: the default rules
	if len(errs) > 0 {
		t.Fatalf("clients/operations.graphql does not validate: %v", errs)
	}

	selected := map[string]bool{} // "Type.field" and "Type.field(arg)"
	var walk func(set ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				selected[s.ObjectDefinition.Name+"."+s.Name] = true
				for _, a := range s.Arguments {
					selected[s.ObjectDefinition.Name+"."+s.Name+"("+a.Name+")"] = true
				}
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				walk(s.Definition.SelectionSet)
			}
		}
	}
	names := map[string]bool{}
	for _, op := range doc.Operations {
		if op.Name == "" || names[op.Name] {
			t.Errorf("operation %q: each needs a name of its own (clients name their methods after them)", op.Name)
		}
		names[op.Name] = true
		walk(op.SelectionSet)
	}

	// Every output type reachable from the roots.
	seen := map[string]bool{}
	var visit func(def *ast.Definition)
	visit = func(def *ast.Definition) {
		if def == nil || seen[def.Name] || strings.HasPrefix(def.Name, "__") {
			return
		}
		seen[def.Name] = true
		if def.Kind != ast.Object {
			return
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if !selected[def.Name+"."+f.Name] {
				t.Errorf("clients/operations.graphql does not select %s.%s", def.Name, f.Name)
			}
			if def == schema.Query || def == schema.Mutation || def == schema.Subscription {
				for _, a := range f.Arguments {
					if !selected[def.Name+"."+f.Name+"("+a.Name+")"] {
						t.Errorf("clients/operations.graphql does not pass %s.%s(%s)", def.Name, f.Name, a.Name)
					}
				}
			}
			visit(schema.Types[f.Type.Name()])
		}
	}
	visit(schema.Query)
	visit(schema.Mutation)
	visit(schema.Subscription)
	if len(seen) < 10 {
		t.Fatalf("only %d types reached from the roots; the walk is broken", len(seen))
	}
}
