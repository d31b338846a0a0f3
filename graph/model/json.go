package model

import (
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

// UnmarshalGQL encodes an input value (already decoded by gqlgen from the
// request, numbers kept exact as json.Number) as JSON text.
func (j *JSON) UnmarshalGQL(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	*j = b
	return nil
}
