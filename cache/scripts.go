package cache

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/valkey-io/valkey-go"
)

// script is a Lua script sent by its SHA-1 (EVALSHA), and in full (EVAL)
// when the server does not hold it yet. Each touches only the keys it is
// given, all in one slot, so it works in a cluster.
type script struct{ src, sha string }

func newScript(src string) script {
	sum := sha1.Sum([]byte(src))
	return script{src: src, sha: hex.EncodeToString(sum[:])}
}

func (s script) cmds(vk *valkeyClient, keys []string, args ...string) writeCmds {
	n := int64(len(keys))
	return writeCmds{
		cmds: []valkey.Completed{vk.B().Evalsha().Sha1(s.sha).Numkeys(n).Key(keys...).Arg(args...).Build().Pin()},
		eval: []valkey.Completed{vk.B().Eval().Script(s.src).Numkeys(n).Key(keys...).Arg(args...).Build().Pin()},
	}
}

// casScript is the compare-and-set behind Condition.IfETag: it writes only
// if the key's value has the given ETag, computed by Redis over the stored
// bytes, as ETag computes it. Replies {1} when it stored, {0, etag} when
// the value differs, {0} when there is none.
// KEYS[1] key; ARGV[1] etag; ARGV[2] value; ARGV[3] TTL in ms, 0 for none.
// It revokes the key's lease when it writes (KEYS[2], in the key's slot).
var casScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
local tag = redis.sha1hex(cur)
if tag ~= ARGV[1] then return {0, tag} end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('DEL', KEYS[2])
return {1}
`)

// fetchScript is Fetch: the value if there is one ({1, value, pttl});
// otherwise a lease for this caller if nobody holds one ({2}), or {3}.
// KEYS[1] key; KEYS[2] its lease key; ARGV[1] token; ARGV[2] lease in ms.
var fetchScript = newScript(`
local v = redis.call('GET', KEYS[1])
if v then return {1, v, redis.call('PTTL', KEYS[1])} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3}
`)

// leaseSetScript is a write with a lease: only while the lease is this
// caller's, and it releases the lease with the write. Replies 1 when it
// stored, 0 when the lease had expired or been revoked.
// KEYS[1] key; KEYS[2] its lease key; ARGV[1] token; ARGV[2] value;
// ARGV[3] TTL in ms, 0 for none.
var leaseSetScript = newScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('DEL', KEYS[2])
return 1
`)

// tagAddScript records that a key is written with a tag: the key goes into
// the tag's sorted set with Redis's own clock (ms) as its score, so that a
// prune can tell an entry old enough to judge from one whose write may
// still be under way. The set has no TTL: a key's TTL can be extended
// after it was written (Expire), and the set must not go before the keys
// it names; dead entries are pruned instead (tags.go).
// Replies {score, 1 if the entry is new}.
// KEYS[1] tag set; ARGV[1] the key.
var tagAddScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
return {now, added}
`)

// tagUndoScript takes back an entry tagAddScript made new, for a write its
// condition then refused: the key was not written with the tag. Only if
// nothing wrote the entry again since (same score).
// KEYS[1] tag set; ARGV[1] the key; ARGV[2] the score tagAddScript gave.
var tagUndoScript = newScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// tagPruneScript removes entries whose keys were found gone, but only if
// the entry was not written again since it was read (same score) and is
// older than the horizon, by Redis's clock: a write that added its entry
// before the key was looked at may not have set the key yet, and must keep
// its entry.
// KEYS[1] tag set; ARGV[1] horizon in ms; then pairs of key, score read.
var tagPruneScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = now - tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV, 2 do
  local score = tonumber(ARGV[i + 1])
  if score < before then
    local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if cur and tonumber(cur) == score then
      redis.call('ZREM', KEYS[1], ARGV[i])
      removed = removed + 1
    end
  end
end
return removed
`)
