package cache

import (
	"errors"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckKey: every key accepted is 1 to MaxKeyBytes of valid UTF-8 with
// only printable, non-space characters; everything else is refused with
// ErrInvalidInput, never a panic.
func FuzzCheckKey(f *testing.F) {
	for _, seed := range []string{"student:42", "", " ", "a b", "tab\t", "nl\n", "\x00", "é", "\u200b", "\xff\xfe", "../x", "*", "school-erp:k"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := checkKey(key)
		valid := key != "" && len(key) <= MaxKeyBytes && utf8.ValidString(key)
		for _, r := range key {
			valid = valid && unicode.IsPrint(r) && !unicode.IsSpace(r)
		}
		switch {
		case valid && err != nil:
			t.Fatalf("checkKey(%q) = %v; want it accepted", key, err)
		case !valid && !errors.Is(err, ErrInvalidInput):
			t.Fatalf("checkKey(%q) = %v; want ErrInvalidInput", key, err)
		}
		if err != nil {
			return
		}
		// Whatever the rule, an accepted key never holds what the issue
		// forbids: ASCII control characters, DEL, spaces, or zero-width
		// and other invisible characters.
		for i := 0; i < len(key); i++ {
			if b := key[i]; b < 0x20 || b == 0x7f || b == ' ' {
				t.Fatalf("checkKey accepted %q with byte %#x at %d", key, b, i)
			}
		}
		for _, r := range key {
			if r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\ufeff' || r == '\u00a0' || r == '\u2028' || (r >= 0x80 && r <= 0x9f) {
				t.Fatalf("checkKey accepted %q with %U", key, r)
			}
		}
	})
}
