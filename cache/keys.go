package cache

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// redisKey is the one place the key prefix is applied: every key the
// client sends to Redis, callers' and its own, is built here.
func (c *Client) redisKey(key string) string { return c.opts.KeyPrefix + key }

// internalKeyOf is internalKey(name + string(tag) + sep + rest) in one
// allocation, for the keys built on every write (leaseKey).
func (c *Client) internalKeyOf(name string, tag []byte, sep, rest string) string {
	return c.opts.KeyPrefix + internalNamespace + name + string(tag) + sep + rest
}

// internalKey names a key the service uses for itself (the client-cache
// check, --check-config's test key). The name has a space in it, which
// checkKey refuses, so no caller's key can ever be the same: a client's
// value is never overwritten or deleted by the service's own work.
func (c *Client) internalKey(name string) string {
	return c.redisKey(internalKeyName(name))
}

func internalKeyName(name string) string { return internalNamespace + name }

// internalNamespace begins every internal key's name.
const internalNamespace = "cache-service internal:"

// Internal key names, for tests that prove no caller can reach them.
const (
	trackingCheckKey = "tracking-check"
	checkConfigKey   = "check-config"
)

// checkKey enforces the key rules on a caller's key.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key must not be empty", ErrInvalidInput)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes; the limit is %d", ErrInvalidInput, len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidInput)
	}
	// Printable characters other than whitespace: no control characters
	// (which could confuse logs and tools reading keys), no invisible
	// format characters, no spaces.
	for i, r := range key {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: key has a control, whitespace or invisible character (%U) at byte %d", ErrInvalidInput, r, i)
		}
	}
	return nil
}
