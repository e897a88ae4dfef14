/**
 * Several gateway nodes on one store (the Cluster beside each StateStore): pending sweeps
 * from an index and ping() on both backends; then, on a real PostgreSQL, what several
 * nodes rely on: one claim per account, a dead node's claims and orphans taken over after
 * the lease, a change or a message seen by the other node within a second.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import type { ClusterChange, SealedSecret, StateStore } from '../../src/core/state/types.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const SEALED: SealedSecret = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };
const FAST = { heartbeatMs: 100, leaseMs: 600 };

let server: PostgresInstance;
const dirs: string[] = [];

before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openJson(): Promise<StateStore> {
  const dir = mkdtempSync(join(tmpdir(), 'ap-cluster-'));
  dirs.push(dir);
  return openJsonStore(join(dir, 'state.json'));
}

/** Wait until `check` holds, at most `ms`; returns how long it took. */
async function within(ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - start;
}

for (const backend of ['json', 'postgresql'] as const) {
  describe(`pending sweeps and ping: ${backend}`, () => {
    let store: StateStore;
    before(async () => {
      store = backend === 'json' ? await openJson() : await openPgStore(server.url);
    });
    after(() => store.close());

    it('dueSweeps: migrated accounts whose first sweep is due, earliest first', async () => {
      const now = Date.now();
      const at = (s: number) => new Date(now + s * 1000).toISOString();
      await store.upsert('late@x.org', { state: 'migrated', sweepAt: [at(-10), at(600)] });
      await store.upsert('early@x.org', { state: 'migrated', sweepAt: [at(-60)] });
      await store.upsert('future@x.org', { state: 'migrated', sweepAt: [at(60)] });
      await store.upsert('reset@x.org', { state: 'captured', sweepAt: [at(-30)] });
      await store.upsert('plain@x.org', { state: 'migrated' });
      const due = await store.dueSweeps({ now: new Date(now), limit: 10 });
      assert.deepEqual(
        due.map((r) => r.address),
        ['early@x.org', 'late@x.org'],
      );
      assert.equal((await store.dueSweeps({ now: new Date(now), limit: 1 })).length, 1);
      // a sweep taken off moves the account to its next time
      await store.update('late@x.org', (r) => void (r.sweepAt = r.sweepAt!.slice(1)));
      await store.update('early@x.org', (r) => void (r.sweepAt = undefined));
      assert.deepEqual(await store.dueSweeps({ now: new Date(now), limit: 10 }), []);
      const later = await store.dueSweeps({ now: new Date(now + 700_000), limit: 10 });
      assert.deepEqual(
        later.map((r) => r.address),
        ['future@x.org', 'late@x.org'],
      );
    });

    it('ping answers while the store works', async () => {
      await store.ping();
    });

    it('orphans: what was left mid-move and no live node holds', async () => {
      await store.upsert('moving@x.org', { state: 'captured', transferPhase: 'pre-copying' });
      await store.upsert('locked@x.org', { state: 'transferring', transferPhase: 'switching' });
      await store.upsert('idle@x.org', { state: 'captured', credentials: SEALED });
      const names = async () => (await store.cluster.orphans(10)).map((r) => r.address).sort();
      await store.cluster.join();
      assert.deepEqual(await names(), ['locked@x.org', 'moving@x.org']);
      assert.equal(await store.cluster.claim('moving@x.org'), true);
      assert.equal(await store.cluster.claim('moving@x.org'), true, 'a claim of ours again');
      assert.deepEqual(await names(), ['locked@x.org']);
      await store.cluster.release('moving@x.org');
      assert.deepEqual(await names(), ['locked@x.org', 'moving@x.org']);
      const nodes = await store.cluster.nodes();
      assert.ok(nodes.some((n) => n.node === store.cluster.node && n.alive));
    });
  });
}

describe('several nodes on one PostgreSQL', () => {
  let a: PgStore;
  let b: PgStore;
  before(async () => {
    a = await openPgStore(server.url, { nodeName: 'node-a', clusterTiming: FAST });
    b = await openPgStore(server.url, { nodeName: 'node-b', clusterTiming: FAST });
    await a.cluster.join();
    await b.cluster.join();
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('an account is claimed by one node at a time, however many ask at once', async () => {
    const addresses = Array.from({ length: 40 }, (_, i) => `c${i}@x.org`);
    for (const addr of addresses) await a.upsert(addr, { state: 'captured', credentials: SEALED });
    const won = await Promise.all(
      addresses.flatMap((addr) => [
        a.cluster.claim(addr).then((ok) => (ok ? `a:${addr}` : '')),
        b.cluster.claim(addr).then((ok) => (ok ? `b:${addr}` : '')),
      ]),
    );
    for (const addr of addresses) {
      const winners = won.filter((w) => w.endsWith(`:${addr}`));
      assert.equal(winners.length, 1, `${addr}: ${winners.join(', ')}`);
    }
    // released, the other node may take it
    const ofA = won.find((w) => w.startsWith('a:'))!.slice(2);
    assert.equal(await b.cluster.claim(ofA), false);
    await a.cluster.release(ofA);
    assert.equal(await b.cluster.claim(ofA), true);
  });

  it('a change of state or phase reaches the other node within a second; other edits do not', async () => {
    const seen: ClusterChange[] = [];
    const off = b.cluster.onChange((c) => seen.push(c));
    try {
      await a.upsert('lock@x.org', { state: 'captured', credentials: SEALED });
      await a.update('lock@x.org', (r) => void (r.transferPhase = 'pre-copying'));
      await a.update('lock@x.org', (r) => {
        r.state = 'transferring';
        r.transferPhase = 'switching';
      });
      const ms = await within(1000, () => seen.some((c) => c.state === 'transferring'));
      const lock = seen.find((c) => c.state === 'transferring')!;
      assert.equal(lock.address, 'lock@x.org');
      assert.equal(lock.phase, 'switching');
      assert.equal(lock.node, a.cluster.node);
      assert.ok(ms < 1000, `${ms} ms`);
      const before = seen.length;
      await a.update('lock@x.org', (r) => void (r.attempts = 3)); // no state change
      await b.update('lock@x.org', (r) => void (r.state = 'migrated')); // b's own change
      await sleep(300);
      assert.equal(seen.length, before);
    } finally {
      off();
    }
  });

  it('a message published on one node reaches the other, not itself', async () => {
    const onB: unknown[] = [];
    const onA: unknown[] = [];
    const offB = b.cluster.onMessage('brake', (d) => onB.push(d));
    const offA = a.cluster.onMessage('brake', (d) => onA.push(d));
    try {
      a.cluster.publish('brake', { client: '192.0.2.1' });
      await within(1000, () => onB.length === 1);
      assert.deepEqual(onB, [{ client: '192.0.2.1' }]);
      await sleep(200);
      assert.deepEqual(onA, []);
    } finally {
      offA();
      offB();
    }
  });

  it("a dead node's claims and half-done moves are taken over after the lease", async () => {
    const c = await openPgStore(server.url, { nodeName: 'node-c', clusterTiming: FAST });
    await c.cluster.join();
    await c.upsert('dying@x.org', {
      state: 'transferring',
      transferPhase: 'switching',
      credentials: SEALED,
    });
    assert.equal(await c.cluster.claim('dying@x.org'), true);
    assert.equal(await a.cluster.claim('dying@x.org'), false, 'held by a live node');
    assert.ok(!(await a.cluster.orphans(100)).some((r) => r.address === 'dying@x.org'));
    await c.upsert('other@x.org', { state: 'captured', credentials: SEALED });
    // c stops heartbeating without giving anything back: kill -9 as the others see it
    clearInterval((c.cluster as unknown as { beat: NodeJS.Timeout }).beat);
    const ms = await within(3000, async () =>
      (await a.cluster.orphans(100)).some((r) => r.address === 'dying@x.org'),
    );
    assert.ok(ms >= FAST.leaseMs / 2, `orphaned after ${ms} ms, before the lease`);
    assert.equal(await a.cluster.claim('dying@x.org'), true);
    assert.equal(await b.cluster.claim('dying@x.org'), false, 'now held by a');
    // a node whose heartbeat is stale takes nothing, not even what it held
    assert.equal(await c.cluster.claim('other@x.org'), false, 'claimed by a dead node');
    assert.equal(await c.cluster.claim('dying@x.org'), false);
    const names = (await a.cluster.nodes()).map((n) => `${n.name}:${n.alive}`);
    assert.ok(names.includes('node-c:false'), names.join(' '));
    await c.close();
    assert.ok(!(await a.cluster.nodes()).some((n) => n.name === 'node-c'), 'left on close');
  });

  it("side data written on one node is the other node's, with a version that moves", async () => {
    assert.equal(await b.side.read('pop@x.org', 'pop3-uidls'), undefined);
    assert.equal(await b.side.version('pop@x.org', 'pop3-uidls'), undefined);
    await a.side.write('Pop@X.org', 'pop3-uidls', { pairs: [['d1', 's1']] });
    assert.deepEqual(await b.side.read('pop@x.org', 'pop3-uidls'), { pairs: [['d1', 's1']] });
    const v1 = await b.side.version('pop@x.org', 'pop3-uidls');
    await a.side.write('pop@x.org', 'pop3-uidls', { pairs: [] });
    const v2 = await b.side.version('pop@x.org', 'pop3-uidls');
    assert.ok(v1 !== undefined && v2 !== undefined && v2 > v1, `${v1} -> ${v2}`);
    await a.side.write('pop@x.org', 'handed over', { at: 'x' });
    await b.side.remove('pop@x.org');
    assert.equal(await a.side.read('pop@x.org', 'handed over'), undefined);
  });

  it('onLost fires when the heartbeat fails for a lease', async () => {
    const d = await openPgStore(server.url, { nodeName: 'node-d', clusterTiming: FAST });
    await d.cluster.join();
    let lost = 0;
    d.cluster.onLost(() => lost++);
    // its heartbeat cannot reach the database any more
    const cl = d.cluster as unknown as { heartbeat: () => Promise<void> };
    cl.heartbeat = () => Promise.reject(new Error('network down'));
    await within(3000, () => lost === 1);
    await sleep(300);
    assert.equal(lost, 1, 'once per episode');
    await d.close();
  });
});
