/**
 * The worker pool's late-mail sweeps with a stand-in copy engine over a real JSON store:
 * a switch puts the sweep times on the record, a restart (a new pool on the same store)
 * resumes them when due, each sweep takes its time off and the last clears them, a failing
 * sweep is reported and retried at the next time, and the account stays migrated. Among
 * several nodes (FakeCluster): a sweep runs only on a granted claim and gives it back, the
 * due ones come from the store's dueSweeps (no list of the migrated accounts), and losing
 * the cluster aborts a sweep, its time kept.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { EventBus, type GatewayEvent } from '../../src/core/bus.js';
import { resolveLimits } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { transferMetrics } from '../../src/core/metrics/transfers.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import { generateKeyFile, loadKeyring, seal } from '../../src/core/state/crypto.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { StateStore } from '../../src/core/state/types.js';
import type { SweepFn, SweepOutcome } from '../../src/core/workers/late-mail.js';
import { WorkerPool } from '../../src/core/workers/worker-pool.js';
import { FakeCluster, withCluster } from '../support/fake-cluster.js';

const A = 'alice@example.org';

async function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'ap-sweep-'));
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  await generateKeyFile(join(dir, 'k.key'));
  const keyring = loadKeyring(join(dir, 'k.key'));
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.onAny((e) => events.push(e));
  let clock = Date.parse('2026-12-01T00:00:00.000Z');
  const sweeps: string[] = [];
  let next: (signal: AbortSignal) => SweepOutcome | Promise<SweepOutcome> = () => ({
    messages: 0,
    bytes: 0,
    errors: [],
  });
  const sweep: SweepFn = async (req, signal) => {
    sweeps.push(req.password);
    return next(signal);
  };
  const pools: WorkerPool[] = [];
  const pool = (s: StateStore = store): WorkerPool => {
    const p = new WorkerPool({
      store: s,
      keyring,
      bus,
      logger: silentLogger,
      sessions: new SessionRegistry(),
      migrate: async () => ({ ok: true }),
      sweep,
      concurrency: () => 2,
      limits: resolveLimits({ workerPollMs: 10, lateMailSweepMs: [60_000, 600_000] }),
      now: () => clock,
    });
    pools.push(p);
    return p;
  };
  t.after(async () => {
    for (const p of pools) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    store,
    file,
    keyring,
    events,
    sweeps,
    bus,
    pool,
    at: (ms: number) => (clock = Date.parse('2026-12-01T00:00:00.000Z') + ms),
    answer: (f: (signal: AbortSignal) => SweepOutcome | Promise<SweepOutcome>) => (next = f),
  };
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(await cond(), what);
}

describe('late-mail sweeps in the worker pool', () => {
  it('a switch schedules them on the record; a restart resumes them; the last clears them', async (t) => {
    const s = await setup(t);
    await s.store.upsert(A, { state: 'captured', credentials: seal(s.keyring, 'pw', A) });
    const first = s.pool();
    await first.start();
    await until(async () => (await s.store.get(A))?.state === 'migrated', 'moved');
    await until(async () => (await s.store.get(A))?.sweepAt?.length === 2, 'sweep times recorded');
    assert.deepEqual((await s.store.get(A))?.sweepAt, [
      '2026-12-01T00:01:00.000Z',
      '2026-12-01T00:10:00.000Z',
    ]);
    assert.equal(s.sweeps.length, 0, 'nothing is swept before its time');
    // the gateway restarts: a new pool over the state saved on disk
    await first.stop();
    await s.store.close();
    const store = await openJsonStore(s.file, { saveDelayMs: 60_000 });
    t.after(() => store.close());
    assert.equal((await store.get(A))?.sweepAt?.length, 2, 'the times survived the restart');
    s.at(61_000);
    s.answer(() => ({ messages: 2, bytes: 200, errors: [] }));
    const second = s.pool(store);
    await second.start();
    await until(async () => (await store.get(A))?.sweepAt?.length === 1, 'first sweep done');
    assert.deepEqual(s.sweeps, ['pw']);
    assert.deepEqual((await store.get(A))?.sweepAt, ['2026-12-01T00:10:00.000Z']);
    s.at(600_000);
    s.answer(() => ({ messages: 0, bytes: 0, errors: [] }));
    second.wake();
    await until(
      async () => (await store.get(A))?.sweepAt === undefined,
      'last sweep clears the times',
    );
    assert.equal(s.sweeps.length, 2);
    assert.equal((await store.get(A))?.state, 'migrated');
    const swept = s.events.filter((e) => e.type === 'transfer.swept');
    assert.deepEqual(
      swept.map((e) => e.type === 'transfer.swept' && e.messages),
      [2, 0],
    );
  });

  it('a failing sweep is reported, retried at the next time, and never fails the account', async (t) => {
    const s = await setup(t);
    t.after(() => s.store.close());
    const registry = new Registry();
    transferMetrics(registry, { bus: s.bus, store: s.store, now: () => 0 });
    await s.store.upsert(A, {
      state: 'migrated',
      credentials: seal(s.keyring, 'pw', A),
      sweepAt: ['2026-12-01T00:01:00.000Z', '2026-12-01T00:10:00.000Z'],
    });
    s.at(60_000);
    s.answer(() => {
      throw new Error('source unreachable');
    });
    const pool = s.pool();
    await pool.start();
    await until(
      async () => (await s.store.get(A))?.sweepAt?.length === 1,
      'the failed sweep took its time',
    );
    const failed = s.events.find((e) => e.type === 'transfer.swept');
    assert.ok(failed?.type === 'transfer.swept' && failed.error === 'source unreachable');
    assert.equal((await s.store.get(A))?.state, 'migrated');
    s.at(600_000);
    s.answer(() => ({ messages: 3, bytes: 300, errors: [] }));
    pool.wake();
    await until(
      async () => (await s.store.get(A))?.sweepAt === undefined,
      'retried at the next time',
    );
    assert.equal((await s.store.get(A))?.state, 'migrated');
    assert.match(await registry.metrics(), /autoport_late_mail_swept_total 3/);
  });
});

describe('late-mail sweeps among several nodes', () => {
  const TIMES = ['2026-12-01T00:01:00.000Z', '2026-12-01T00:10:00.000Z'];

  it('runs a sweep only on a granted claim, gives it back, and never lists the migrated', async (t) => {
    const s = await setup(t);
    t.after(() => s.store.close());
    const cluster = new FakeCluster();
    const store = withCluster(s.store, cluster);
    const B = 'bob@example.org';
    for (const a of [A, B])
      await store.upsert(a, {
        state: 'migrated',
        credentials: seal(s.keyring, `pw-${a}`, a),
        sweepAt: TIMES,
      });
    cluster.other.add(B);
    s.at(61_000);
    const pool = s.pool(store);
    await pool.start();
    await until(async () => (await store.get(A))?.sweepAt?.length === 1, 'a swept');
    await new Promise((r) => setTimeout(r, 100)); // a few more ticks: b is another node's
    assert.deepEqual(s.sweeps, [`pw-${A}`]);
    assert.ok(cluster.log.includes(`claim ${B} refused`));
    await until(async () => cluster.log.includes(`release ${A}`), 'a given back');
    assert.equal((await store.get(B))?.sweepAt?.length, 2, 'left to the node that holds it');
    cluster.other.delete(B);
    pool.wake();
    await until(async () => (await store.get(B))?.sweepAt?.length === 1, 'b swept once free');
    assert.deepEqual(s.sweeps, [`pw-${A}`, `pw-${B}`]);
    await until(async () => cluster.held.size === 0, 'no claim kept');
    assert.ok((store.calls.get('dueSweeps') ?? 0) > 0, 'asked the store for due sweeps');
    const migratedScans = store.lists.filter((f) => JSON.stringify(f ?? {}).includes('migrated'));
    assert.deepEqual(migratedScans, [], 'no scan of the migrated accounts');
  });

  it('losing the cluster aborts a sweep; its time stays for whichever node claims it', async (t) => {
    const s = await setup(t);
    t.after(() => s.store.close());
    const cluster = new FakeCluster();
    const store = withCluster(s.store, cluster);
    await store.upsert(A, {
      state: 'migrated',
      credentials: seal(s.keyring, 'pw', A),
      sweepAt: TIMES,
    });
    s.at(61_000);
    let aborted = false;
    s.answer(
      (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ messages: 0, bytes: 0, errors: ['aborted'] });
          }),
        ),
    );
    const pool = s.pool(store);
    await pool.start();
    await until(async () => s.sweeps.length === 1, 'sweeping');
    cluster.lose();
    await until(async () => cluster.held.size === 0, 'claim given back');
    assert.ok(aborted);
    assert.deepEqual((await store.get(A))?.sweepAt, TIMES, 'the sweep is still due');
    assert.equal(s.events.filter((e) => e.type === 'transfer.swept').length, 0);
  });
});
