package jsontext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

var seeds = []string{
	``, ` `, `null`, `nul`, `nullx`, `true`, `false`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-5`, `.5`, `1.5e3`,
	`""`, `"\u00e9"`, `"\u00"`, `"\x"`, `"\/"`, "\"\t\"", `"abc`, `[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1}`, `{"a" 1}`, `{"a":}`,
	`{"a":1,}`, `{1:2}`, ` {"a" : [ 1 , { "b" : null } ] } `, `[1]x`, `{"a":1}{}`, "\"ü€😀\"", "\"\xff\"",
	`"abcdefghijklmnopqrstuvwxyz"`, `"abcdefgh\"ijklmnop"`, "\"abcdefgh\x01ijklmnop\"", "\"abcdefg\xc3\xa9ijklmnop\"",
	"\"abcdefg\xc3ijklmnop\"", `{"a b":"c d", "e":1}`, `["x",` + "\n" + `"y"]`, "\"\xed\xa0\x80\"",
	// Past the first 16 bytes of a string, where it is read eight at a time.
	`"abcdefghijklmnopqrstu\"vwxyz"`, `"abcdefghijklmnopqrstu\nvwxyz"`, `"abcdefghijklmnopqrstu\qvwxyz"`, `"abcdefghijklmnopqrstuvwxyz`,
	"\"abcdefghijklmnopqrstu\x1fvwxyz\"", "\"abcdefghijklmnopqrstu\xc3\xa9vwxyz\"", "\"abcdefghijklmnopqrstu\xc3vwxyz\"",
	"\"abcdefghijklmnopqrstu\x7fvwxyz\"", `"abcdefghijklmnopqrstuvw"`, `"abcdefghijklmnopqrstuvwx"`,
}

// Valid must answer as json.Valid does, on anything.
func FuzzValid(f *testing.F) {
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("Valid(%q) = %v; json.Valid says %v", b, got, want)
		}
	})
}

// Scan must find what json.Valid, utf8.Valid and json.Compact find
// together, on anything: Invalid unless both say valid, Compact exactly
// when compacting would change nothing.
func FuzzScan(f *testing.F) {
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := Invalid
		if json.Valid(b) && utf8.Valid(b) {
			want = Spaced
			var compacted bytes.Buffer
			if err := json.Compact(&compacted, b); err != nil {
				t.Fatalf("json.Compact(%q): %v", b, err)
			}
			if bytes.Equal(compacted.Bytes(), b) {
				want = Compact
			}
		}
		if got := Scan(b); got != want {
			t.Errorf("Scan(%q) = %d; want %d", b, got, want)
		}
	})
}

// At encoding/json's nesting limit and one past it.
func TestValidNesting(t *testing.T) {
	for _, b := range []string{
		strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
		strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
		strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
		strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
	} {
		if got, want := Valid([]byte(b)), json.Valid([]byte(b)); got != want {
			t.Errorf("Valid of %d bytes nested = %v; json.Valid says %v", len(b), got, want)
		}
	}
}

// BenchmarkValid: Valid against json.Valid on values of the sizes the
// benchmarks read (a list of small objects, mostly strings and numbers).
func BenchmarkValid(b *testing.B) {
	for _, size := range []int{100, 10 << 10, 100 << 10} {
		var sb strings.Builder
		sb.WriteString(`{"rows":[`)
		for i := 0; sb.Len() < size; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"id":4711,"name":"Ada Lovelace","class":"7B","grades":[95,87.5,-3e2],"paid":true,"note":null}`)
		}
		sb.WriteString(`]}`)
		v := []byte(sb.String())
		for _, f := range []struct {
			name  string
			valid func([]byte) bool
		}{
			{"jsontext", Valid},
			{"encoding_json", json.Valid},
			{"jsontext_Scan", func(b []byte) bool { return Scan(b) == Compact }},
			{"three_passes", func(b []byte) bool { return utf8.Valid(b) && Valid(b) && Spaceless(b) }},
		} {
			b.Run(fmt.Sprintf("%s/%dB", f.name, len(v)), func(b *testing.B) {
				b.SetBytes(int64(len(v)))
				for b.Loop() {
					if !f.valid(v) {
						b.Fatal("not valid")
					}
				}
			})
		}
	}
}
