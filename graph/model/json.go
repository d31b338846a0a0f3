package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrNotJSON is returned (wrapped) for an input value that cannot be
// written as JSON text: the client's mistake, which the error presenter
// tells by this sentinel.
var ErrNotJSON = errors.New("value is not representable as JSON")

// JSON is the JSON scalar: JSON text, written to responses as it is, without
// decoding and re-encoding. Values come from the cache, which only returns
// valid JSON.
type JSON json.RawMessage

// MarshalGQL writes the JSON text as the field's value.
func (j JSON) MarshalGQL(w io.Writer) {
	if j == nil {
		_, _ = io.WriteString(w, "null")
		return
	}
	_, _ = w.Write(j)
}

// RawJSON is an input value as the request spelled it: valid, compacted
// JSON text, put in place of the decoded value by the transport so that the
// scalar stores what the client sent (object keys in their order, numbers
// and escapes as written).
type RawJSON []byte

// UnmarshalGQL takes an input value as JSON text: a RawJSON as it is, or a
// value gqlgen decoded (from a literal in the document, numbers kept exact
// as json.Number) encoded as JSON, object keys sorted.
func (j *JSON) UnmarshalGQL(v any) error {
	if raw, ok := v.(RawJSON); ok {
		// Raw text keeps bytes that decoding would have replaced (text that
		// is not UTF-8); the cache refuses those, as it refuses any value
		// that is not JSON.
		*j = JSON(raw)
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a JSON value, not HTML: "<" stays "<"
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	*j = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return nil
}
