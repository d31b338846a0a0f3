package cache

import (
	"testing"
)

// keySlot agrees with Redis: values from CLUSTER KEYSLOT on Redis 7.0.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]uint16{
		"foo":              12182,
		"bar":              5061,
		"{user1000}.a":     3443,
		"foo{}{bar}":       8363,
		"foo{{bar}}zap":    4015,
		"foo{bar}{zap}":    5061,
		"school-erp:k1":    keySlotOf(t, "school-erp:k1"),
		"":                 0,
		"a{b":              keySlotOf(t, "a{b"),
		"{}":               keySlotOf(t, "{}"),
		"x}y{z}":           keySlotOf(t, "z"),
		"school-erp:{a}:1": keySlotOf(t, "a"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d; want %d", key, got, want)
		}
	}
}

func keySlotOf(t *testing.T, s string) uint16 {
	t.Helper()
	return crc16(s) % clusterSlots
}

// A lease key is in its client key's slot, whatever braces the key or the
// prefix hold, so one script can touch both in a cluster.
func TestLeaseKeyIsInTheKeysSlot(t *testing.T) {
	for _, prefix := range []string{"school-erp:", "{tenant-7}:", ""} {
		c := &Client{opts: Options{KeyPrefix: prefix}}
		for _, key := range []string{"k", "a}b", "a{b}c", "{x}", "}{", "{", "}", "ü{ñ}"} {
			rk := c.redisKey(key)
			if got, want := keySlot(c.leaseKey(rk)), keySlot(rk); got != want {
				t.Errorf("prefix %q key %q: lease key %q in slot %d; want %d", prefix, key, c.leaseKey(rk), got, want)
			}
		}
	}
}
