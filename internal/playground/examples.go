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

mutation CacheDelete {
  cacheDelete(key: "greeting") {
    key
    deleted
    backend
    failure
    message
  }
}
`
