'use strict'
// The Node reference of bench/run (issue 20): the cacheGet and cacheSet
// subset of schema.graphqls on Fastify 5 + Mercurius with graphql-jit and
// ioredis, one process, no auth, no limits. For the comparison only.
//
//   POST /graphql   cacheGet(key) / cacheSet(key, value, ttlSeconds)
//   GET  /health    200 {"status":"ok"}, without asking Redis
//
// Environment: NODE_REF_LISTEN (host:port, default 127.0.0.1:8090),
// NODE_REF_REDIS (host:port, default 127.0.0.1:6379), NODE_REF_PREFIX (the
// key prefix, default the service's "school-erp:", so that both read the
// same keys).
const Fastify = require('fastify')
const mercurius = require('mercurius')
const Redis = require('ioredis')

const [host, port] = (process.env.NODE_REF_LISTEN || '127.0.0.1:8090').split(':')
const [redisHost, redisPort] = (process.env.NODE_REF_REDIS || '127.0.0.1:6379').split(':')
const prefix = process.env.NODE_REF_PREFIX ?? 'school-erp:'

const schema = `
  scalar JSON
  type CacheSetPayload {
    key: String!
    stored: Boolean!
    ttlSeconds: Int
  }
  type Query {
    cacheGet(key: String!): JSON
  }
  type Mutation {
    cacheSet(key: String!, value: JSON, ttlSeconds: Int): CacheSetPayload!
  }
`

const redis = new Redis({ host: redisHost, port: Number(redisPort), lazyConnect: false })

const resolvers = {
  // A JSON scalar passes values through as they are (Mercurius builds it
  // from the schema's "scalar JSON" with no coercion of its own).
  JSON: {
    serialize: (v) => v,
    parseValue: (v) => v,
    parseLiteral: () => { throw new Error('JSON literals are not supported here: send the value in variables') }
  },
  Query: {
    cacheGet: async (_, { key }) => {
      const v = await redis.get(prefix + key)
      return v === null ? null : JSON.parse(v)
    }
  },
  Mutation: {
    cacheSet: async (_, { key, value, ttlSeconds }) => {
      const text = JSON.stringify(value === undefined ? null : value)
      if (ttlSeconds) {
        await redis.set(prefix + key, text, 'EX', ttlSeconds)
      } else {
        await redis.set(prefix + key, text)
      }
      return { key, stored: true, ttlSeconds: ttlSeconds ?? null }
    }
  }
}

const app = Fastify({ logger: false })
app.register(mercurius, { schema, resolvers, jit: 1, graphiql: false })
app.get('/health', async () => ({ status: 'ok' }))

const stop = async () => {
  await app.close()
  redis.disconnect()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

app.listen({ host, port: Number(port) }).then((addr) => {
  console.log(`node reference: serving on ${addr}, redis ${redisHost}:${redisPort}`)
}, (err) => {
  console.error(err)
  process.exit(1)
})
