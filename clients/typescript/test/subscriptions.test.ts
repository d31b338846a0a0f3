// Subscriptions with the real graphql-ws client (the library browsers and
// Apollo Client, urql and GraphiQL use), over the ws package in Node,
// against the built service binary and a real redis-server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

import { CacheChangedDocument, type CacheChangedSubscriptionVariables } from '../src/index.js';
import { startRedis, startService, type Redis, type Service } from './harness.js';

const readToken = 'reports-token-0123456789';
const writeToken = 'erp-token-abcdefghijklmn';

interface Change {
  key: string;
  kind: string;
  etag: string | null;
  value: unknown;
}

/** Collects a subscription's events; next() waits for one. */
function collect<T>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: any) => T) {
  const queue: T[] = [];
  const waiting: ((v: T) => void)[] = [];
  let failure: unknown;
  const dispose = client.subscribe(
    { query, variables },
    {
      next: (r) => {
        if (r.errors) failure = r.errors;
        const v = pick(r.data);
        const w = waiting.shift();
        if (w) w(v);
        else queue.push(v);
      },
      error: (err) => (failure = err),
      complete: () => {},
    },
  );
  return {
    dispose,
    next: (ms = 5000): Promise<T> => {
      if (failure) return Promise.reject(failure);
      const v = queue.shift();
      if (v !== undefined) return Promise.resolve(v);
      return new Promise<T>((res, rej) => {
        const w = (x: T) => {
          clearTimeout(t);
          res(x);
        };
        const t = setTimeout(() => {
          waiting.splice(waiting.indexOf(w), 1); // an event after this is the next caller's
          rej(new Error(`no event within ${ms} ms (${String(failure ?? '')})`));
        }, ms);
        waiting.push(w);
      });
    },
  };
}

describe('cacheChanged with graphql-ws', () => {
  let redis: Redis;
  let svc: Service;
  const clients: Client[] = [];
  before(async () => {
    redis = await startRedis();
    svc = await startService({ APP_ENV: 'staging', API_TOKENS: `erp:write:${writeToken},reports:read:${readToken}`, SHUTDOWN_DRAIN_DELAY: '0s' }, redis);
  });
  after(async () => {
    for (const c of clients) await c.dispose();
    await svc?.stop();
    await redis?.stop();
  });
  const ws = (token: string | null, onClose?: (code: number, reason: string) => void) => {
    const client = createClient({
      url: svc.endpoint.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
      lazy: true,
      on: { closed: (e: unknown) => onClose?.((e as { code: number }).code, (e as { reason: string }).reason) },
    });
    clients.push(client);
    return client;
  };
  const mutate = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(svc.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${writeToken}` },
      body: JSON.stringify({ query, variables }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { errors?: unknown };
    assert.equal(body.errors, undefined);
  };

  test('a read token gets each change of its keys, with the etag and the value', async () => {
    const client = ws(readToken);
    // The operation from clients/operations.graphql, typed by codegen.
    const vars: CacheChangedSubscriptionVariables = { prefix: 'node:', withValue: true };
    const sub = collect<Change>(client, CacheChangedDocument.toString(), vars, (d) => d.cacheChanged);
    // The protocol does not say when a subscription is live: write until
    // the first event comes.
    let first: Change | undefined;
    for (let i = 0; i < 50 && !first; i++) {
      await mutate('mutation { cacheSet(key: "node:warm", value: 1) { stored } }');
      first = await sub.next(200).catch(() => undefined);
    }
    assert.ok(first, 'the subscription never became live');
    while (await sub.next(200).catch(() => undefined)); // later warm-up events
    await mutate('mutation($v: JSON) { cacheSet(key: "node:a", value: $v) { stored } }', { v: { n: 1 } });
    const x = await sub.next();
    assert.equal(x.key, 'node:a');
    assert.equal(x.kind, 'SET');
    assert.match(x.etag ?? '', /^[0-9a-f]{40}$/);
    assert.deepEqual(x.value, { n: 1 });
    await mutate('mutation { cacheDelete(key: "node:a") { deleted } }');
    const d = await sub.next();
    assert.equal(d.kind, 'DELETE');
    assert.equal(d.value, null);
    sub.dispose();
  });

  test('no token: closed with 4403 before any event', async () => {
    let closed: { code: number; reason: string } | undefined;
    const client = ws(null, (code, reason) => (closed ??= { code, reason }));
    const sub = collect<Change>(client, 'subscription { cacheChanged(keys: ["node:x"]) { key kind } }', {}, (d) => d.cacheChanged);
    await mutate('mutation { cacheSet(key: "node:x", value: 1) { stored } }');
    await assert.rejects(sub.next(1000));
    assert.equal(closed?.code, 4403);
    assert.match(closed?.reason ?? '', /Forbidden/);
  });
});
