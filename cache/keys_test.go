package cache

import (
	"errors"
	"testing"
)

// No key a caller may pass can name one of the service's own keys: the
// key rules refuse every internal name.
func TestInternalKeysAreOutOfCallersReach(t *testing.T) {
	for _, name := range []string{trackingCheckKey, checkConfigKey} {
		if err := checkKey(internalKeyName(name)); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("checkKey(%q) = %v; want ErrInvalidInput: a caller could overwrite the service's own key", internalKeyName(name), err)
		}
	}
	c := &Client{opts: Options{KeyPrefix: "p:"}}
	if got, want := c.internalKey(checkConfigKey), "p:"+internalKeyName(checkConfigKey); got != want {
		t.Errorf("internalKey = %q; want %q, under the prefix like every key", got, want)
	}
}
