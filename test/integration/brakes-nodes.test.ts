/**
 * The brakes of two gateway nodes on one real PostgreSQL (two PgStores, both joined):
 * failures of one client address split across the nodes brake it on both, each failure
 * crossing over LISTEN/NOTIFY within a second.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { Brakes, type Attempt } from '../../src/core/login/brakes.js';
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const LIMITS = {
  ...DEFAULT_LIMITS.brakes,
  failureDelayMs: 0,
  maxFailureDelayMs: 0,
  maxFailuresPerAddress: 4,
  maxFailuresPerAccount: 3,
  windowMs: 60_000,
};

async function fail(b: Brakes, ip: string, account: string): Promise<void> {
  const r = b.begin(ip, account);
  assert.ok(!('refused' in r), `refused: ${'refused' in r ? r.refused : ''}`);
  await (r as Attempt).failed();
}

/** ms until check() holds, polling; throws after `ms` */
async function within(ms: number, check: () => boolean): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

describe('brakes across two nodes on PostgreSQL', { timeout: 120_000 }, () => {
  let server: PostgresInstance;
  let a: PgStore;
  let b: PgStore;
  let brakesA: Brakes;
  let brakesB: Brakes;
  before(async () => {
    server = await startPostgres();
    a = await openPgStore(server.url, { nodeName: 'node-a' });
    b = await openPgStore(server.url, { nodeName: 'node-b' });
    await a.cluster.join();
    await b.cluster.join();
    brakesA = new Brakes(LIMITS, { cluster: a.cluster });
    brakesB = new Brakes(LIMITS, { cluster: b.cluster });
  });
  after(async () => {
    brakesA?.close();
    brakesB?.close();
    await a?.close();
    await b?.close();
    await server?.stop();
  });

  it('a failure crosses within a second; failures split across nodes brake the address on both', async () => {
    const ip = '203.0.113.50';
    await fail(brakesB, ip, 'u1@example.org');
    const ms = await within(1_000, () => brakesA.tracked.addresses === 1);
    await fail(brakesA, ip, 'u2@example.org');
    await fail(brakesB, ip, 'u3@example.org');
    await fail(brakesA, ip, 'u4@example.org');
    // four failures in all, two seen by each node: the address is braked on both
    const refusedOn = (x: Brakes) => {
      const r = x.begin(ip, 'u5@example.org');
      if ('refused' in r) return r.refused;
      r.end();
      return undefined;
    };
    await within(1_000, () => refusedOn(brakesA) === 'address');
    await within(1_000, () => refusedOn(brakesB) === 'address');
    // another address is not
    assert.equal(refusedOn(brakesA), 'address');
    const other = brakesA.begin('198.51.100.7', 'u5@example.org');
    assert.ok(!('refused' in other));
    (other as Attempt).end();
    console.log(`# a failure on node B reached node A after ${ms} ms`);
  });
});
