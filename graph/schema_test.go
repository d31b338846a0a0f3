package graph

import (
	"os"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestEveryRootFieldDecidesItsScope keeps the rule that a new Query or
// Mutation field cannot be added without an @auth scope.
func TestEveryRootFieldDecidesItsScope(t *testing.T) {
	src, err := os.ReadFile("../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, gqlErr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if gqlErr != nil {
		t.Fatal(gqlErr)
	}
	n := 0
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		for _, f := range root.Fields {
			if len(f.Name) > 1 && f.Name[:2] == "__" {
				continue
			}
			n++
			d := f.Directives.ForName("auth")
			if d == nil || d.Arguments.ForName("scope") == nil {
				t.Errorf("%s.%s has no @auth(scope: ...)", root.Name, f.Name)
				continue
			}
			if scope := d.Arguments.ForName("scope").Value.Raw; root == schema.Mutation && scope != "WRITE" {
				t.Errorf("mutation %s has scope %s; mutations need WRITE", f.Name, scope)
			}
		}
	}
	if n < 6 {
		t.Errorf("found %d root fields; the schema has at least 6", n)
	}
}
