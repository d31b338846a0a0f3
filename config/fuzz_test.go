package config

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseTokens: parsing never panics; every token it returns is well
// formed; an error never repeats the token part of any entry.
func FuzzParseTokens(f *testing.F) {
	for _, seed := range []string{"erp:write:0123456789abcdef", "a:read:0123456789abcdef,b:write:fedcba9876543210", "# c\nx:read:0123456789abcdefgh\n", "bad", "a:admin:0123456789abcdef", "a:read:short", ":::", "a:read:0123456789 abcdef"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tokens, err := ParseTokens(s)
		if err != nil {
			entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
			var names []string
			for _, entry := range entries {
				name, _, _ := strings.Cut(strings.TrimSpace(entry), ":")
				names = append(names, name)
			}
			for _, entry := range entries {
				parts := strings.SplitN(strings.TrimSpace(entry), ":", 3)
				if len(parts) < 3 || len(parts[2]) < 4 || !strings.Contains(err.Error(), parts[2]) {
					continue
				}
				// Names are shown; a token that is also (part of) a name
				// may appear for that reason.
				if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, parts[2]) }) {
					t.Fatalf("error %q repeats the token %q", err, parts[2])
				}
			}
			return
		}
		for _, tok := range tokens {
			if !tokenName.MatchString(tok.Name) || (tok.Scope != "read" && tok.Scope != "write") || len(tok.Value) < MinTokenLength || strings.ContainsAny(tok.Value, " \t\n,") {
				t.Fatalf("ParseTokens(%q) returned a malformed token %s", s, tok)
			}
		}
	})
}

// FuzzRedisURL: applying any REDIS_URL either fails with a config error
// that does not repeat the password, or yields a usable address.
func FuzzRedisURL(f *testing.F) {
	for _, seed := range []string{"redis://u:SECRETPW-XYZZY", "redis://h:6379/0", "rediss://u:p@h:1/2", "redis://:pw@[::1]:7000", "redis://h?addr=a:1&addr=b:2", "http://x", "redis://u@h", "redis://:p#q@h", "::"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := Redis{URL: raw}
		err := r.applyURL()
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("applyURL(%q) error %T; want *Error", raw, err)
			}
			if r.Password != "" && len(r.Password) > 3 && strings.Contains(err.Error(), r.Password) {
				t.Fatalf("error %q repeats the password", err)
			}
			// The scheme is shown; what follows it must not be, where it
			// may be credentials.
			scheme, _, _ := strings.Cut(raw, "://")
			quoted := strconv.Quote(scheme + "://") // as the error shows it
			shown := strings.ReplaceAll(err.Error(), quoted[1:len(quoted)-1], "")
			if at := strings.LastIndex(raw, "@"); at > 0 {
				if _, rest, ok := strings.Cut(raw[:at], "://"); ok && len(rest) > 3 && strings.Contains(shown, rest) {
					t.Fatalf("error %q repeats the user info %q", err, rest)
				}
			}
			// user:password with no host: the part after the colon must
			// not be echoed either.
			if _, rest, ok := strings.Cut(raw, "://"); ok && !strings.Contains(rest, "@") {
				authority, _, _ := strings.Cut(rest, "/")
				if _, pw, ok := strings.Cut(authority, ":"); ok && len(pw) > 3 && !isDigits(pw) && strings.Contains(shown, pw) {
					t.Fatalf("error %q repeats %q", err, pw)
				}
			}
			return
		}
		if r.Host == "" || r.Port < 1 || r.Port > 65535 || r.DB < 0 {
			t.Fatalf("applyURL(%q) = host %q port %d db %d", raw, r.Host, r.Port, r.DB)
		}
	})
}
