/**
 * The worker pool's side of a two-phase move, with a stand-in copy engine over a real
 * JSON store: the lock starts only at the switch (onLocked), the finished event carries
 * it, an exclude during the pre-copy aborts the move and leaves the account excluded, and
 * a restart clears what a crash left (phases; a switch already handed over is migrated).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { excludeAccount } from '../../src/core/accounts/change.js';
import type { StateStore, TransferLock } from '../../src/core/state/types.js';
import { markHandedOver } from '../../src/core/transfer/handover.js';
import type { MigrateFn } from '../../src/core/workers/worker-pool.js';
import { poolSetup, until } from './worker-fixtures.js';

const LOCK: TransferLock = {
  at: '2026-12-01T00:00:00.000Z',
  ms: 420,
  passes: 2,
  copied: 3,
  bytes: 3000,
  flags: 1,
  expunged: 0,
};

const setup = (t: TestContext, migrate: MigrateFn, concurrency = 1) =>
  poolSetup(t, { migrate, concurrency });

describe('WorkerPool: two-phase moves', () => {
  it('locks nothing before the switch; the switch is announced and its lock reported', async (t) => {
    let stateBeforeSwitch: string | undefined;
    const { store, events, pool, capture, finished } = await setup(
      t,
      async (req, _signal, hooks) => {
        stateBeforeSwitch = (await store.get(req.address))?.state;
        await store.update(req.address, (r) => void (r.state = 'transferring'));
        await hooks?.onLocked?.();
        await store.update(req.address, (r) => void (r.state = 'migrated'));
        return { ok: true, lock: LOCK };
      },
    );
    await capture('a@example.org');
    await pool.start();
    await until('the move', () => finished('a@example.org') !== undefined);
    assert.equal(stateBeforeSwitch, 'captured', 'the pre-copy runs on an unlocked account');
    const types = events.filter((e) => e.type.startsWith('transfer.')).map((e) => e.type);
    assert.deepEqual(types, ['transfer.started', 'transfer.switching', 'transfer.finished']);
    assert.deepEqual(finished('a@example.org')?.lock, LOCK);
    assert.equal((await store.get('a@example.org'))?.state, 'migrated');
  });

  it('an exclude during the pre-copy aborts the move; the account stays excluded', async (t) => {
    let aborted = false;
    const { store, pool, capture, finished } = await setup(
      t,
      (_req, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ ok: false, detail: 'aborted' });
          }),
        ),
    );
    await capture('b@example.org');
    await pool.start();
    await until('the pre-copy', () => pool.active.includes('b@example.org'));
    await excludeAccount(store, 'b@example.org', 'shared mailbox');
    pool.wake();
    await until('the abort', () => finished('b@example.org') !== undefined);
    assert.ok(aborted);
    const fin = finished('b@example.org');
    assert.equal(fin?.ok, false);
    assert.equal(fin?.aborted, true, 'not counted as a failure');
    assert.equal(fin?.lock, undefined, 'never locked');
    const rec = await store.get('b@example.org');
    assert.equal(rec?.state, 'excluded');
    assert.equal(rec?.reason, 'shared mailbox');
    assert.equal(rec?.transferPhase, undefined);
  });

  it('a restart clears the phases a crash left; a switch already handed over is migrated', async (t) => {
    const { store, pool } = await setup(t, () => Promise.resolve({ ok: true }), 0);
    const s = store as StateStore;
    await s.upsert('pre@example.org', { state: 'captured', transferPhase: 'pre-copying' });
    await s.upsert('mid@example.org', { state: 'transferring', transferPhase: 'switching' });
    await s.upsert('rerun@example.org', { state: 'transferring', transferPhase: 'switching' });
    await markHandedOver(s, 'rerun@example.org', '2026-11-01T00:00:00.000Z');
    await pool.start();
    assert.equal((await s.get('pre@example.org'))?.state, 'captured');
    assert.equal((await s.get('pre@example.org'))?.transferPhase, undefined);
    assert.equal((await s.get('mid@example.org'))?.state, 'captured', 'moved again by the pool');
    assert.equal((await s.get('mid@example.org'))?.transferPhase, undefined);
    await until(
      'the handed-over account',
      async () => (await s.get('rerun@example.org'))?.state === 'migrated',
    );
    assert.equal((await s.get('mid@example.org'))?.state, 'captured');
  });
});
