// The client against the built service binary and real redis-server
// processes (see harness.ts).
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { CacheClient, NetworkError, RequestError, TypedDocumentString, operationType } from '../src/index.js';
import { freePort, startRedis, startService, type Redis, type Service } from './harness.js';

const readToken = 'reports-token-0123456789';
const writeToken = 'erp-token-abcdefghijklmn';

describe('every operation of clients/operations.graphql', () => {
  let redis: Redis;
  let svc: Service;
  let client: CacheClient;
  before(async () => {
    redis = await startRedis();
    svc = await startService({}, redis);
    client = new CacheClient({ url: svc.endpoint });
  });
  after(async () => {
    await svc?.stop();
    await redis?.stop();
  });

  test('answers without errors, in a sequence that uses each one', async () => {
    const ok = <T>(r: { data: T; errors: unknown[]; warnings: unknown[] }): T => {
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.warnings, []);
      return r.data;
    };
    const health = ok(await client.redisHealth()).redisHealth;
    assert.equal(health.status, 'CONNECTED');
    assert.equal(health.mode, 'STANDALONE');
    assert.equal(health.fallback.mode, 'MEMORY'); // development's default
    assert.equal(health.cluster, null);

    const set = ok(await client.cacheSet('student:42', { name: 'Ada', grades: [95, 87.5] }, { ttlSeconds: 300, tags: ['class:9b'] })).cacheSet;
    assert.equal(set?.stored, true);
    assert.equal(set?.backend, 'REDIS');
    assert.equal(set?.ttlSeconds, 300);
    assert.deepEqual(ok(await client.cacheGet('student:42')).cacheGet, { name: 'Ada', grades: [95, 87.5] });
    assert.deepEqual(ok(await client.cacheGetMany(['student:42', 'nobody'])).cacheGetMany, [{ name: 'Ada', grades: [95, 87.5] }, null]);
    assert.equal(ok(await client.cacheExists('student:42')).cacheExists, true);

    const entry = ok(await client.cacheEntry('student:42')).cacheEntry;
    assert.ok(entry && entry.etag.length === 40 && entry.ttlSeconds !== null && entry.ttlSeconds > 290, JSON.stringify(entry));
    const cas = ok(await client.cacheSet('student:42', { name: 'Ada L.' }, { ifEtag: entry.etag })).cacheSet;
    assert.equal(cas?.stored, true);
    const stale = ok(await client.cacheSet('student:42', { name: 'late' }, { ifEtag: entry.etag })).cacheSet;
    assert.equal(stale?.failure, 'CONDITION_NOT_MET');
    assert.equal(stale?.currentEtag?.length, 40);
    assert.equal(ok(await client.cacheSet('student:42', 1, { ifAbsent: true })).cacheSet?.failure, 'CONDITION_NOT_MET');

    const lease = ok(await client.cacheFetch('report', 30)).cacheFetch;
    assert.ok(lease && !lease.hit && lease.lease, JSON.stringify(lease));
    assert.equal(ok(await client.cacheSet('report', { rows: 3 }, { lease: lease.lease })).cacheSet?.stored, true);
    const hit = ok(await client.cacheFetch('report', 30, { waitMs: 100 })).cacheFetch;
    assert.deepEqual([hit?.hit, hit?.value, hit?.backend], [true, { rows: 3 }, 'REDIS']);

    const counter = ok(await client.cacheIncrement('visits', { by: '9007199254740993', ttlSeconds: 60 })).cacheIncrement;
    assert.equal(counter?.value, '9007199254740993'); // beyond 2^53, exact as a string
    assert.equal(ok(await client.cacheIncrement('visits')).cacheIncrement?.value, '9007199254740994');
    assert.equal(ok(await client.cacheExpire('visits', 120)).cacheExpire?.existed, true);
    assert.equal(ok(await client.cacheExpire('visits')).cacheExpire?.existed, true); // made permanent

    const many = ok(await client.cacheSetMany([{ key: 'a', value: 1, tags: ['t'] }, { key: 'b', value: [2], ttlSeconds: 10 }])).cacheSetMany;
    assert.deepEqual(many?.map((p) => p?.stored), [true, true]);
    const invalidated = ok(await client.cacheInvalidateTags(['class:9b', 't'])).cacheInvalidateTags;
    assert.deepEqual([invalidated?.deleted, invalidated?.failure], [2, null]);
    assert.deepEqual(ok(await client.cacheDeleteMany(['b', 'a'])).cacheDeleteMany?.map((p) => p?.deleted), [true, false]);
    assert.equal(ok(await client.cacheDelete('report')).cacheDelete?.deleted, true);
    assert.equal(ok(await client.cacheDelete('report')).cacheDelete?.deleted, false);
  });

  test('values come back as sent: key order, numbers beyond 53 bits, null', async () => {
    // Beyond 53 bits, within the 64 bits the schema allows an integer
    // (JavaScript sends it as 1234567890123456800, and gets those digits back).
    const value = { zeta: 1, alpha: { y: 2, x: 3 }, big: 1234567890123456789 };
    await client.cacheSet('ordered', value);
    assert.equal(await redis.command('GET', 'school-erp:ordered'), `$${JSON.stringify(value).length}\r\n${JSON.stringify(value)}\r\n`);
    const got = (await client.cacheGet('ordered')).data.cacheGet as Record<string, unknown>;
    assert.deepEqual(Object.keys(got), ['zeta', 'alpha', 'big']);

    assert.equal((await client.cacheSet('nothing', null)).data.cacheSet?.stored, true);
    assert.equal((await client.cacheGet('nothing')).data.cacheGet, null);
    const entry = (await client.cacheEntry('nothing')).data.cacheEntry;
    assert.ok(entry !== null, 'a stored null is an entry, not a miss');
    assert.equal(entry.value, null);
    assert.equal((await client.cacheExists('nothing')).data.cacheExists, true);
  });
});

describe('tokens', () => {
  let redis: Redis;
  let svc: Service;
  before(async () => {
    redis = await startRedis();
    svc = await startService({ APP_ENV: 'staging', API_TOKENS: `erp:write:${writeToken},reports:read:${readToken}` }, redis);
  });
  after(async () => {
    await svc?.stop();
    await redis?.stop();
  });

  test('no token: refused as a whole, 401 UNAUTHENTICATED', async () => {
    const client = new CacheClient({ url: svc.endpoint });
    await assert.rejects(client.cacheGet('k'), (err: unknown) => err instanceof RequestError && err.status === 401 && err.code === 'UNAUTHENTICATED');
  });

  test('a read token reads; its writes are FORBIDDEN field errors, returned', async () => {
    const client = new CacheClient({ url: svc.endpoint, token: readToken });
    assert.equal((await client.cacheExists('k')).data.cacheExists, false);
    const r = await client.cacheSet('k', 1);
    assert.equal(r.data.cacheSet, null);
    assert.equal(r.errors[0]?.extensions?.code, 'FORBIDDEN');
    assert.deepEqual(r.errors[0]?.path, ['cacheSet']);
  });

  test('a write token writes; a token function is asked each time', async () => {
    let asked = 0;
    const client = new CacheClient({ url: svc.endpoint, token: () => (asked++, writeToken) });
    assert.equal((await client.cacheSet('k', 'v')).data.cacheSet?.stored, true);
    assert.equal((await client.cacheGet('k')).data.cacheGet, 'v');
    assert.equal(asked, 2);
  });
});

describe('partial results and warnings', () => {
  let redis: Redis;
  let svc: Service;
  let client: CacheClient;
  before(async () => {
    redis = await startRedis();
    svc = await startService({ CACHE_FALLBACK: 'none', REDIS_COMMAND_TIMEOUT: '300ms', REDIS_HEALTH_INTERVAL: '100ms' }, redis);
    client = new CacheClient({ url: svc.endpoint });
  });
  after(async () => {
    await svc?.stop();
    await redis?.stop();
  });

  test('a key Redis refuses to read is null with its error; the others keep their values', async () => {
    await client.cacheSetMany([{ key: 'a', value: 1 }, { key: 'b', value: 2 }]);
    await redis.command('HSET', 'school-erp:h', 'f', 'v');
    const r = await client.cacheGetMany(['a', 'h', 'b']);
    assert.deepEqual(r.data.cacheGetMany, [1, null, 2]);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.extensions?.code, 'REDIS_REJECTED');
    assert.deepEqual(r.errors[0]?.path, ['cacheGetMany', 1]);
  });

  test('bad input on one field of a mutation: the other field still ran', async () => {
    const doc = new TypedDocumentString(
      'mutation { a: cacheSet(key: "k1", value: 1) { stored } b: cacheSet(key: "k2", value: 2, ttlSeconds: 0) { stored } }',
    ) as unknown as TypedDocumentString<{ a: { stored: boolean } | null; b: { stored: boolean } | null }, Record<string, never>>;
    const r = await client.request(doc, {});
    assert.deepEqual(r.data, { a: { stored: true }, b: null });
    assert.equal(r.errors[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.deepEqual(r.errors[0]?.path, ['b']);
  });

  test('a request refused as a whole throws, with the code', async () => {
    const doc = new TypedDocumentString('{ nope }') as unknown as TypedDocumentString<unknown, Record<string, never>>;
    await assert.rejects(client.request(doc, {}), (err: unknown) => err instanceof RequestError && err.code === 'GRAPHQL_VALIDATION_FAILED' && err.status === 400);
  });

  test('Redis down: reads answer null with a warning the caller sees', async () => {
    await redis.stop();
    let r = await client.cacheGet('a');
    // The first reads after the kill may still try Redis (NO_REPLY) before
    // the breaker opens (REDIS_UNAVAILABLE); both are warnings, not errors.
    for (let i = 0; i < 50 && r.warnings[0]?.code !== 'REDIS_UNAVAILABLE'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      r = await client.cacheGet('a');
    }
    assert.equal(r.data.cacheGet, null);
    assert.deepEqual(r.errors, []);
    assert.equal(r.warnings.length, 1);
    assert.equal(r.warnings[0]?.code, 'REDIS_UNAVAILABLE');
    assert.deepEqual(r.warnings[0]?.path, ['cacheGet']);
    const w = await client.cacheSet('a', 1);
    assert.deepEqual([w.data.cacheSet?.stored, w.data.cacheSet?.failure], [false, 'REDIS_UNAVAILABLE']);
  });
});

describe('retries: reads only', () => {
  let redis: Redis;
  let svc: Service;
  before(async () => {
    redis = await startRedis();
    svc = await startService({ GRAPHQL_MAX_IN_FLIGHT: '1' }, redis);
  });
  after(async () => {
    await svc?.stop();
    await redis?.stop();
  });

  /** Takes the service's one in-flight slot with a request whose body has not finished arriving; release() sends the rest. */
  async function holdTheSlot(): Promise<{ release(): void }> {
    const { port } = new URL(svc.url);
    const body = JSON.stringify({ query: '{ __typename }' });
    const sock = createConnection({ host: '127.0.0.1', port: Number(port) });
    await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
    sock.on('error', () => {});
    sock.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    // Held once another request is refused with 503.
    for (let i = 0; ; i++) {
      const res = await fetch(svc.endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
      await res.text();
      if (res.status === 503) break;
      if (i > 100) throw new Error('the slot was never held');
      await new Promise((r) => setTimeout(r, 10));
    }
    return {
      release: () => {
        sock.end(body.slice(5));
      },
    };
  }

  function countingFetch(): { fetch: typeof fetch; calls: () => number } {
    let calls = 0;
    return { fetch: (input, init) => (calls++, fetch(input, init)), calls: () => calls };
  }

  test('a query answered 503 OVERLOADED is sent again, and answered', async () => {
    const held = await holdTheSlot();
    const counter = countingFetch();
    const client = new CacheClient({ url: svc.endpoint, fetch: counter.fetch, retries: 5, backoffMs: 50, maxBackoffMs: 200 });
    setTimeout(() => held.release(), 150);
    const r = await client.cacheExists('k');
    assert.equal(r.data.cacheExists, false);
    assert.ok(r.attempts >= 2, `attempts = ${r.attempts}`);
    assert.equal(counter.calls(), r.attempts);
  });

  test('a mutation answered 503 is not sent again', async () => {
    const held = await holdTheSlot();
    try {
      const counter = countingFetch();
      const client = new CacheClient({ url: svc.endpoint, fetch: counter.fetch, retries: 5, backoffMs: 10 });
      await assert.rejects(client.cacheSet('k', 1), (err: unknown) => err instanceof RequestError && err.status === 503 && err.code === 'OVERLOADED' && err.attempts === 1);
      assert.equal(counter.calls(), 1);
    } finally {
      held.release();
    }
  });

  test('a query that finds nothing listening is sent again until the service is up', async () => {
    const port = await freePort();
    const counter = countingFetch();
    const client = new CacheClient({ url: `http://127.0.0.1:${port}/graphql`, fetch: counter.fetch, retries: 15, backoffMs: 100, maxBackoffMs: 500 });
    const answer = client.redisHealth();
    await new Promise((r) => setTimeout(r, 200));
    const late = await startService({ PORT: String(port) }, undefined);
    try {
      const r = await answer;
      assert.ok(r.data.redisHealth.status, 'an answer');
      assert.ok(r.attempts >= 2, `attempts = ${r.attempts}`);
    } finally {
      await late.stop();
    }
  });

  test('a mutation that finds nothing listening fails at once, saying it may have applied', async () => {
    const port = await freePort();
    const counter = countingFetch();
    const client = new CacheClient({ url: `http://127.0.0.1:${port}/graphql`, fetch: counter.fetch, retries: 8 });
    await assert.rejects(client.cacheDelete('k'), (err: unknown) => err instanceof NetworkError && err.mayHaveApplied && err.attempts === 1);
    assert.equal(counter.calls(), 1);
  });
});

test('operationType reads the first definition that is not a fragment', () => {
  assert.equal(operationType('{ cacheGet(key: "mutation") }'), 'query');
  assert.equal(operationType('# mutation\nquery Q { a }'), 'query');
  assert.equal(operationType('fragment F on Query { query: cacheGet(key: "x") } mutation M { cacheDelete(key: "k") { deleted } }'), 'mutation');
  assert.equal(operationType('\n    mutation CacheSet($key: String!) { cacheSet(key: $key, value: "{") { key } }'), 'mutation');
  assert.equal(operationType('"""mutation""" query Q { a }'), 'query');
});
