package graph

import (
	"encoding/json"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// TestNumberRulesAgree: a number is refused as a variable exactly when it
// is refused as a literal.
func TestNumberRulesAgree(t *testing.T) {
	for _, raw := range []string{
		"0", "-0", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
		"123456789012345678901234567890", "1.5", "-2.5e3", "1e308", "1e309", "1e400", "-1e999",
		"1E5", "1e-400", "0.000001", "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0",
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: `{ f(a: ` + raw + `) }`})
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		literal := checkValue(doc.Operations[0].SelectionSet[0].(*ast.Field).Arguments[0].Value)
		variable := checkVariable(map[string]any{"x": []any{json.Number(raw)}})
		if (literal == nil) != (variable == nil) {
			t.Errorf("%s: as a literal %v, as a variable %v; want the same", raw, literal, variable)
		}
		if variable != nil && variable.Extensions["code"] != CodeBadUserInput {
			t.Errorf("%s: code %v; want %s", raw, variable.Extensions["code"], CodeBadUserInput)
		}
	}
}
