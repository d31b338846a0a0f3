package graph

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
)

func TestCheckJSONText(t *testing.T) {
	tests := []struct {
		text string
		ok   bool
	}{
		{`{"k":"plain"}`, true},
		{`{"k":"é\u00e9\ud83d\ude00"}`, true},
		{`{"k":"\\ud800"}`, true}, // an escaped backslash, then text
		{`{"k":"\\\ud800"}`, false},
		{`{"k":"\ud800"}`, false},
		{`{"k":"\uD800x"}`, false},
		{`{"k":"\udfff"}`, false},
		{`{"k":"\ud800\ud800"}`, false},
		{`{"k":"\ude00\ud83d"}`, false},
		{`{"k":"\ud800\u0041"}`, false},
		{`{"k":"x\ud800`, false}, // at the end of the text
		{`{"\ud800":1}`, false},
		{"{\"k\":\"\xff\"}", false},
		{"{\"k\":\"\xed\xa0\x80\"}", false}, // a surrogate encoded in UTF-8 is not UTF-8
		{`{"k":"\u12"}`, true},              // malformed: the decoder's to refuse
	}
	for _, tt := range tests {
		err := checkJSONText(tt.text, "the body")
		if (err == nil) != tt.ok {
			t.Errorf("checkJSONText(%q) = %v; want ok %v", tt.text, err, tt.ok)
		}
		var ce codedError
		if err != nil && (!errors.As(err, &ce) || ce.code != CodeInvalidUTF8) {
			t.Errorf("checkJSONText(%q) = %v; want code %s", tt.text, err, CodeInvalidUTF8)
		}
	}
}

func TestCheckDocumentText(t *testing.T) {
	tests := []struct {
		doc string
		ok  bool
	}{
		{`{ cacheGet(key: "k") }`, true},
		{`{ cacheGet(key: "\ud83d\ude00") }`, true},
		{`{ cacheGet(key: "\u{1F600}") }`, true},
		{`{ cacheGet(key: "\ud800") }`, false},
		{`{ cacheGet(key: "a\"\ud800") }`, false},
		{`{ cacheGet(key: "\\ud800") }`, true},
		{`{ cacheGet(key: "\udc00") }`, false},
		{`{ cacheGet(key: "k") } # "\ud800"`, true},
		{"{ cacheGet(key: \"k\") } # \"\n { x(a: \"\\ud800\") }", false},
		{`mutation { cacheSet(key: "k", value: """\ud800""") { stored } }`, true},
		{`mutation { cacheSet(key: "k", value: """a \""" \ud800 """) { stored } }`, true},
		{`mutation { cacheSet(key: "k", value: """a"""") { stored } } { x(a: "\ud800") }`, false},
		{`mutation { cacheSet(key: "k", value: """a""""") { stored } } # "\ud800`, true},
		{"{ cacheGet(key: \"a\xffb\") }", false},
	}
	for _, tt := range tests {
		if err := checkDocumentText(tt.doc); (err == nil) != tt.ok {
			t.Errorf("checkDocumentText(%q) = %v; want ok %v", tt.doc, err, tt.ok)
		}
	}
}

// FuzzLoneSurrogateEscapes holds checkDocumentText to gqlparser's lexer:
// for a document the lexer reads through, a string token decodes a lone
// surrogate escape to U+FFFD exactly when checkDocumentText refuses it.
// (Documents that hold U+FFFD, or an escape of it, are left out: there the
// lexer's output cannot tell.)
func FuzzLoneSurrogateEscapes(f *testing.F) {
	for _, seed := range []string{
		`{ cacheGet(key: "\ud800") }`,
		`{ cacheGet(key: "\ud83d\ude00") } # \ud800`,
		`mutation { cacheSet(key: "k", value: """x\"""\ud800""""") { stored } } { a(b: "\uDC00") }`,
		"{ a(b: \"\\\\ud800\") }\r# \"\\ud800\n",
		`{ a(b: "\ud800\u{DC00}") }`,
		`{ a(b: ["\u0041", "\ud800", """\ud800"""]) }`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !utf8.ValidString(doc) || strings.ContainsRune(doc, utf8.RuneError) || strings.Contains(strings.ToLower(doc), "fffd") {
			return
		}
		lex := lexer.New(&ast.Source{Input: doc})
		lexerReplaced := false
		for {
			tok, err := lex.ReadToken()
			if err != nil {
				return // not a document: the parser's to refuse
			}
			if tok.Kind == lexer.EOF {
				break
			}
			if tok.Kind == lexer.String && strings.ContainsRune(tok.Value, utf8.RuneError) {
				lexerReplaced = true
			}
		}
		if refused := checkDocumentText(doc) != nil; refused != lexerReplaced {
			t.Fatalf("document %q: checkDocumentText refuses %v; the lexer replaced a lone surrogate %v", doc, refused, lexerReplaced)
		}
	})
}
