// GraphQL over HTTP: the spec's own audit (graphql-http's auditServer)
// against the built binary with its default development settings. Every
// MUST and every SHOULD must pass: a warning fails too. Notices (MAY) are
// printed, and fail as well, so that a change of answer is looked at.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { auditServer } from 'graphql-http';

import { startRedis, startService, type Redis, type Service } from './harness.js';

let redis: Redis;
let svc: Service;
before(async () => {
  redis = await startRedis();
  svc = await startService({}, redis);
});
after(async () => {
  await svc?.stop();
  await redis?.stop();
});

test('auditServer: every MUST, SHOULD and MAY of GraphQL over HTTP', async (t) => {
  const results = await auditServer({ url: svc.endpoint });
  const counts: Record<string, number> = {};
  const failed: string[] = [];
  for (const r of results) {
    counts[r.status] = (counts[r.status] ?? 0) + 1;
    if (r.status !== 'ok') failed.push(`${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}`);
  }
  t.diagnostic(`audit: ${JSON.stringify(counts)}`);
  for (const f of failed) t.diagnostic(f);
  assert.ok(results.length > 50, `only ${results.length} audits ran`);
  assert.deepEqual(failed, []);
});
