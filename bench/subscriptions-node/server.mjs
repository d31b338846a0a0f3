// The reference for bench/subscriptions: the same cacheSet mutation and
// cacheChanged(keys) subscription as the service, built the way a Node
// user builds it today: graphql-js, graphql-ws over ws, and
// graphql-redis-subscriptions (ioredis) carrying each change to every
// instance through Redis pub/sub. For the comparison only: no auth, no
// limits, no keyspace notifications, no RESYNC.
//
//	PORT=5100 REDIS_URL=redis://127.0.0.1:6390 node server.mjs
import http from 'node:http';
import { createHash } from 'node:crypto';
import { buildSchema, graphql } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { withFilter } from 'graphql-subscriptions';
import Redis from 'ioredis';

const redisURL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(redisURL);
const pubsub = new RedisPubSub({ publisher: new Redis(redisURL), subscriber: new Redis(redisURL) });
const channel = 'cache-service-reference:changes';

const schema = buildSchema(`
  scalar JSON
  type CacheSetResult { stored: Boolean! }
  enum CacheChangeKind { SET DELETE }
  type CacheChange { key: String! kind: CacheChangeKind! etag: String at: String! }
  type Query { ok: Boolean }
  type Mutation { cacheSet(key: String!, value: JSON): CacheSetResult! }
  type Subscription { cacheChanged(keys: [String!]!): CacheChange! }
`);

const root = {
  async cacheSet({ key, value }) {
    const text = JSON.stringify(value);
    await redis.set(key, text);
    const etag = createHash('sha1').update(text).digest('hex');
    await pubsub.publish(channel, { cacheChanged: { key, kind: 'SET', etag, at: new Date().toISOString() } });
    return { stored: true };
  },
};
schema.getSubscriptionType().getFields().cacheChanged.subscribe = withFilter(
  () => pubsub.asyncIterableIterator(channel),
  (payload, args) => args.keys.includes(payload.cacheChanged.key),
);

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/graphql') {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      res.writeHead(400).end();
      return;
    }
    const result = await graphql({ schema, source: body.query, variableValues: body.variables, rootValue: root });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(result));
  });
});
const wss = new WebSocketServer({ server, path: '/graphql' });
useServer({ schema }, wss);
server.listen(Number(process.env.PORT ?? 5100), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
