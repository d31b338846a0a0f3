package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrNotInt64 is returned (wrapped) for an Int64 argument that is not a
// 64-bit integer: the client's mistake.
var ErrNotInt64 = errors.New("not a 64-bit integer")

// Int64 is the Int64 scalar: a 64-bit signed integer, written as a string
// of decimal digits so that a JavaScript client loses no precision.
type Int64 int64

// MarshalGQL writes the integer as a JSON string.
func (n Int64) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, `"`+strconv.FormatInt(int64(n), 10)+`"`)
}

// UnmarshalGQL accepts a string of decimal digits or an integer (gqlgen
// decodes numbers as json.Number, or int64 for a literal).
func (n *Int64) UnmarshalGQL(v any) error {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case int:
		*n = Int64(x)
		return nil
	case int64:
		*n = Int64(x)
		return nil
	default:
		return fmt.Errorf("%w: an Int64 is a string of decimal digits or an integer, not %T", ErrNotInt64, v)
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNotInt64, s)
	}
	*n = Int64(i)
	return nil
}
