/**
 * The worker pool's late-mail sweeps with a stand-in copy engine over a real JSON store:
 * a switch puts the sweep times on the record, a restart (a new pool on the same store)
 * resumes them when due, each sweep takes its time off and the last clears them, a failing
 * sweep is reported and retried at the next time, and the account stays migrated.
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
import type { SweepFn, SweepOutcome } from '../../src/core/workers/late-mail.js';
import { WorkerPool } from '../../src/core/workers/worker-pool.js';

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
  let next: () => SweepOutcome = () => ({ messages: 0, bytes: 0, errors: [] });
  const sweep: SweepFn = async (req) => {
    sweeps.push(req.password);
    return next();
  };
  const pools: WorkerPool[] = [];
  const pool = (s = store): WorkerPool => {
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
    answer: (f: () => SweepOutcome) => (next = f),
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
