package model

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzJSONScalar: whatever JSON a client sends as a value, the scalar turns
// it into JSON text that is valid and means the same, and writes it back
// unchanged.
func FuzzJSONScalar(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `[1,"two",null,true]`, `"text"`, `12345678901234567890123`, `-0.5e-7`, `null`, `"\u00e9\ud83d\ude00"`, `{"":{"":[]}}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(input)))
		dec.UseNumber() // as gqlgen decodes request variables
		var v any
		if err := dec.Decode(&v); err != nil {
			return // not a value a client could send
		}
		var j JSON
		if err := j.UnmarshalGQL(v); err != nil {
			t.Fatalf("UnmarshalGQL(%q) error = %v", input, err)
		}
		if !json.Valid(j) {
			t.Fatalf("UnmarshalGQL(%q) = %q; not valid JSON", input, j)
		}
		var again any
		dec = json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		if err := dec.Decode(&again); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("value changed: %s became %s", a, b)
		}
		var out bytes.Buffer
		j.MarshalGQL(&out)
		if !bytes.Equal(out.Bytes(), j) {
			t.Fatalf("MarshalGQL wrote %q; want %q", out.Bytes(), j)
		}
	})
}
