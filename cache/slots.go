package cache

import (
	"strconv"
	"sync"
)

// A lease lives in a key of the service's own beside the client's key, and
// the two are read and written together by one script, so in a cluster they
// must be in the same hash slot. The lease key therefore carries a hash tag
// (the part of a key between the first '{' and the next '}', which is all
// Redis hashes) chosen to hash to the client key's slot. The client key's
// own text cannot serve as the tag: it may hold braces of its own.

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// keySlot is the hash slot Redis Cluster gives key: CRC16 (XMODEM) of the
// hash tag if the key has a non-empty one, of the whole key otherwise. (The
// same rule is internal to valkey-go, hence written out here.)
func keySlot(key string) uint16 {
	for s := 0; s < len(key); s++ {
		if key[s] != '{' {
			continue
		}
		for e := s + 1; e < len(key); e++ {
			if key[e] == '}' {
				if e > s+1 {
					return crc16(key[s+1:e]) % clusterSlots
				}
				break
			}
		}
		break
	}
	return crc16(key) % clusterSlots
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags[s] is the smallest number whose decimal text hashes to slot s:
// 64 KiB, where the texts themselves would cost 350 KiB of heap.
var slotTags = sync.OnceValue(func() []uint32 {
	tags := make([]uint32, clusterSlots)
	found := make([]bool, clusterSlots)
	var text []byte
	for i, left := uint32(0), clusterSlots; left > 0; i++ {
		text = strconv.AppendUint(text[:0], uint64(i), 10)
		if s := crc16(string(text)) % clusterSlots; !found[s] {
			tags[s], found[s] = i, true
			left--
		}
	}
	return tags
})

// leaseKey is the key holding rk's lease: in the service's own namespace
// (a space, which no client key can have), in rk's slot: its hash tag is
// slotTags()'s number for that slot. Every write
// builds one: the tag is formatted on the stack and the key is one
// concatenation.
func (c *Client) leaseKey(rk string) string {
	var digits [10]byte
	tag := strconv.AppendUint(digits[:0], uint64(slotTags()[keySlot(rk)]), 10)
	return c.internalKeyOf("lease:{", tag, "}:", rk)
}
