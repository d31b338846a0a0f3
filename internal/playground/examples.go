package playground

// Examples is the document the editor opens with: one named operation for
// every root field of schema.graphqls, so a newcomer can run each without
// reading the schema first. The tests check that it covers every root field
// and that each operation runs against the real service.
const Examples = `# One example for every root field of the cache API.
# Run one: click the run button and pick it by name.
# The docs (book icon, top left) describe every field.

query RedisHealth {
  redisHealth {
    status
    latencyMs
    memoryUsage
    uptimeSeconds
    serverVersion
    mode
    tls
    breaker
    reason
    fallback {
      mode
      active
    }
  }
}

mutation CacheSet {
  cacheSet(key: "greeting", value: {hello: "world"}, ttlSeconds: 300) {
    key
    stored
    backend
    ttlSeconds
    failure
    message
  }
}

query CacheGet {
  cacheGet(key: "greeting")
}

query CacheGetMany {
  cacheGetMany(keys: ["greeting", "no-such-key"])
}

query CacheExists {
  cacheExists(key: "greeting")
}

query CacheEntry {
  cacheEntry(key: "greeting") {
    value
    ttlSeconds
    etag
    backend
  }
}

mutation CacheFetch {
  cacheFetch(key: "greeting", leaseSeconds: 10, waitMs: 500) {
    hit
    value
    lease
    pending
  }
}

mutation CacheSetIfAbsent {
  cacheSet(key: "greeting", value: {hello: "again"}, ifAbsent: true, tags: ["demo"]) {
    stored
    failure
    currentEtag
  }
}

mutation CacheIncrement {
  cacheIncrement(key: "visits", by: 1, ttlSeconds: 60) {
    value
    backend
    failure
  }
}

mutation CacheExpire {
  cacheExpire(key: "visits", ttlSeconds: 120) {
    existed
    failure
  }
}

mutation CacheSetMany {
  cacheSetMany(entries: [{key: "a", value: 1, tags: ["demo"]}, {key: "b", value: 2, ttlSeconds: 60}]) {
    key
    stored
    backend
  }
}

mutation CacheDeleteMany {
  cacheDeleteMany(keys: ["a", "b"]) {
    key
    deleted
  }
}

mutation CacheInvalidateTags {
  cacheInvalidateTags(tags: ["demo"]) {
    deleted
    failure
    message
  }
}

mutation CacheDelete {
  cacheDelete(key: "greeting") {
    key
    deleted
    backend
    failure
    message
  }
}

# Subscriptions run over WebSocket: start one, then run CacheSet.
subscription CacheChanged {
  cacheChanged(prefix: "greet", withValue: true) {
    key
    kind
    etag
    at
    value
  }
}

subscription RedisHealthChanged {
  redisHealthChanged {
    status
    breaker
    keyspaceNotifications
  }
}
`
