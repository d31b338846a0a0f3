package graph

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSON must answer as json.Valid does, on anything.
func FuzzValidJSON(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `null`, `nul`, `nullx`, `true`, `false`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-5`, `.5`, `1.5e3`,
		`""`, `"\u00e9"`, `"\u00"`, `"\x"`, `"\/"`, "\"\t\"", `"abc`, `[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1}`, `{"a" 1}`, `{"a":}`,
		`{"a":1,}`, `{1:2}`, ` {"a" : [ 1 , { "b" : null } ] } `, `[1]x`, `{"a":1}{}`, "\"ü€😀\"", "\"\xff\"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("validJSON(%q) = %v; json.Valid says %v", b, got, want)
		}
	})
}

// At encoding/json's nesting limit and one past it.
func TestValidJSONNesting(t *testing.T) {
	for _, b := range []string{
		strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
		strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
		strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
		strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
	} {
		if got, want := validJSON([]byte(b)), json.Valid([]byte(b)); got != want {
			t.Errorf("validJSON of %d bytes nested = %v; json.Valid says %v", len(b), got, want)
		}
	}
}
