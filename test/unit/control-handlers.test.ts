/**
 * The proxy's control handlers over a real JSON store (saved before they answer), with a
 * recording stand-in for the worker pool; and the pool's own "first in line".
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { EventBus } from '../../src/core/bus.js';
import { makeControlHandlers, makeHello } from '../../src/core/control/handlers.js';
import type { MonitorSnapshot } from '../../src/core/control/protocol.js';
import { OperatorError } from '../../src/core/errors.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import { WorkerPool } from '../../src/core/workers/worker-pool.js';
import { resolveLimits } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import type { Keyring } from '../../src/core/state/crypto.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import type { StateStore } from '../../src/core/state/types.js';

const SEALED = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'c2VjcmV0' };

async function fixture(t: TestContext, opts: { workers?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ap-control-h-'));
  const path = join(dir, 'state.json');
  const store = await openJsonStore(path, { saveDelayMs: 60_000 });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.upsert('ex@example.org', {
    state: 'excluded',
    credentials: SEALED,
    reason: 'by hand',
  });
  await store.upsert('fail@example.org', { state: 'failed', credentials: SEALED, attempts: 5 });
  await store.upsert('cap@example.org', { state: 'captured', credentials: SEALED });
  await store.upsert('done@example.org', { state: 'migrated' });
  await store.flush();
  const calls: string[] = [];
  const workers =
    opts.workers === false
      ? undefined
      : {
          wake: () => void calls.push('wake'),
          prioritize: (a: string) => void calls.push(`prioritize ${a}`),
        };
  const hello = makeHello({ configFile: '/x.yaml', listeners: {} });
  const handlers = makeControlHandlers({
    store,
    workers,
    live: { snapshot: async () => ({ at: 'now' }) as MonitorSnapshot },
    hello: () => hello,
  });
  /** what another process would read from the file right now */
  const onDisk = async (address: string) => {
    const ro = await openJsonStore(path, { readOnly: true });
    try {
      return await ro.get(address);
    } finally {
      await ro.close();
    }
  };
  return { store, handlers, calls, onDisk };
}

const code = (c: string) => (err: unknown) => err instanceof OperatorError && err.code === c;

describe('control handlers', () => {
  it('hello names this package version and protocol', async (t) => {
    const { handlers } = await fixture(t);
    const h = await handlers.hello({});
    assert.equal(h.protocol, 1);
    assert.match(h.version, /^\d+\.\d+\.\d+/);
    assert.equal(h.pid, process.pid);
  });

  it('accounts.change applies the change, saves it before answering, and wakes the pool on include and exclude', async (t) => {
    const { handlers, calls, onDisk } = await fixture(t);
    const r = await handlers['accounts.change']({ action: 'include', address: 'EX@example.org' });
    assert.equal(r.before, 'excluded');
    assert.equal(r.after, 'captured');
    assert.equal(
      (await onDisk('ex@example.org'))?.state,
      'captured',
      'saved despite a 60 s save delay',
    );
    assert.deepEqual(calls, ['wake']);

    const x = await handlers['accounts.change']({
      action: 'exclude',
      address: 'new@example.org',
      reason: 'shared mailbox',
    });
    assert.equal(x.after, 'excluded');
    assert.equal((await onDisk('new@example.org'))?.reason, 'shared mailbox');
    // the pool aborts a pre-copy of an account excluded meanwhile at its next tick
    assert.deepEqual(calls, ['wake', 'wake'], 'exclude wakes the pool');
  });

  it('accounts.change refuses what the store path refuses, with the same code', async (t) => {
    const { handlers } = await fixture(t);
    await assert.rejects(
      Promise.resolve().then(() =>
        handlers['accounts.change']({ action: 'exclude', address: 'done@example.org' }),
      ),
      code('EACCOUNTSTATE'),
    );
    await assert.rejects(
      Promise.resolve().then(() =>
        handlers['accounts.change']({ action: 'retry', address: 'zed@example.org' }),
      ),
      code('ENOACCOUNT'),
    );
  });

  it('checks params from the wire', async (t) => {
    const { handlers, store } = await fixture(t);
    const change = (p: unknown) => Promise.resolve().then(() => handlers['accounts.change'](p));
    await assert.rejects(change({ action: 'delete', address: 'a@example.org' }), code('EPARAMS'));
    await assert.rejects(change({ action: 'exclude', address: 42 }), code('EPARAMS'));
    await assert.rejects(change({ action: 'exclude', address: 'a'.repeat(400) }), code('EPARAMS'));
    await assert.rejects(
      change({ action: 'exclude', address: 'a@example.org', reason: 'r'.repeat(501) }),
      code('EPARAMS'),
    );
    // a state error (bad address) arrives as the operator error it is
    await assert.rejects(change({ action: 'exclude', address: 'a\u0000b' }), (err: unknown) => {
      return err instanceof OperatorError && err.code === 'EBADADDRESS';
    });
    const imp = (p: unknown) => Promise.resolve().then(() => handlers['accounts.import'](p));
    await assert.rejects(imp({ addresses: 'a@example.org' }), code('EPARAMS'));
    await assert.rejects(imp({ addresses: ['a@example.org', 7] }), code('EPARAMS'));
    // one entry may not smuggle a second line or a comment
    await assert.rejects(imp({ addresses: ['a@example.org\nb@example.org'] }), code('EPARAMS'));
    await assert.rejects(imp({ addresses: ['a@example.org#x'] }), code('EPARAMS'));
    assert.equal(await store.count(), 4, 'nothing was created');
  });

  it('accounts.import marks all or nothing and counts like the store path', async (t) => {
    const { handlers, store, onDisk } = await fixture(t);
    await assert.rejects(
      Promise.resolve().then(() =>
        handlers['accounts.import']({ addresses: ['ok@example.org', '@example.org'] }),
      ),
      code('EIMPORT'),
    );
    assert.equal(await store.get('ok@example.org'), undefined);
    const r = await handlers['accounts.import']({
      addresses: ['cap@example.org', 'new1@example.org', 'new2@example.org'],
    });
    assert.deepEqual(r, { added: 2, alreadyKnown: 1, total: 3, marked: 1, unchanged: 0 });
    assert.equal((await onDisk('new2@example.org'))?.imported, true);
    const again = await handlers['accounts.import']({ addresses: ['new1@example.org'] });
    assert.deepEqual(again, { added: 0, alreadyKnown: 1, total: 1, marked: 0, unchanged: 1 });
  });

  it('transfer.start retries a failed account and puts it first; a captured one just first', async (t) => {
    const { handlers, calls, onDisk } = await fixture(t);
    const f = await handlers['transfer.start']({ address: 'fail@example.org' });
    assert.equal(f.before, 'failed');
    assert.equal(f.after, 'captured');
    const rec = await onDisk('fail@example.org');
    assert.equal(rec?.state, 'captured');
    assert.equal(rec?.attempts, 0);
    const c = await handlers['transfer.start']({ address: 'cap@example.org' });
    assert.equal(c.changed, true);
    assert.match(c.message, /first in line/);
    assert.deepEqual(calls, [
      'prioritize fail@example.org',
      'wake',
      'prioritize cap@example.org',
      'wake',
    ]);
  });

  it('transfer.start says why it cannot move other states, or without workers', async (t) => {
    const { handlers } = await fixture(t);
    const start = (a: string) =>
      Promise.resolve().then(() => handlers['transfer.start']({ address: a }));
    await assert.rejects(start('done@example.org'), (err: unknown) => {
      return code('EACCOUNTSTATE')(err) && /is migrated/.test((err as Error).message);
    });
    await assert.rejects(start('ex@example.org'), (err: unknown) => {
      return code('EACCOUNTSTATE')(err) && /accounts include/.test((err as OperatorError).hint);
    });
    const none = await fixture(t, { workers: false });
    await assert.rejects(
      Promise.resolve().then(() => none.handlers['transfer.start']({ address: 'cap@example.org' })),
      code('ENOWORKERS'),
    );
  });
});

describe('WorkerPool.prioritize', () => {
  function pool(store: StateStore, now: number): WorkerPool {
    return new WorkerPool({
      store,
      keyring: {} as Keyring,
      bus: new EventBus(),
      logger: silentLogger,
      sessions: new SessionRegistry(),
      migrate: () => Promise.resolve({ ok: true }),
      concurrency: () => 1,
      limits: resolveLimits(),
      now: () => now,
    });
  }

  it('puts the asked account before older captured ones, until it leaves captured', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-control-w-'));
    const store = await openJsonStore(join(dir, 'state.json'), { saveDelayMs: 60_000 });
    t.after(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await store.upsert('old@example.org', { state: 'captured', credentials: SEALED });
    await new Promise((r) => setTimeout(r, 5));
    await store.upsert('new@example.org', { state: 'captured', credentials: SEALED });
    const p = pool(store, Date.now());
    assert.deepEqual(
      (await p.candidates()).map((r) => r.address),
      ['old@example.org', 'new@example.org'],
    );
    p.prioritize('NEW@example.org');
    assert.deepEqual(
      (await p.candidates()).map((r) => r.address),
      ['new@example.org', 'old@example.org'],
    );
    await store.upsert('new@example.org', { state: 'migrated' });
    assert.deepEqual(
      (await p.candidates()).map((r) => r.address),
      ['old@example.org'],
    );
    await store.upsert('new@example.org', { state: 'captured' });
    assert.deepEqual(
      (await p.candidates()).map((r) => r.address),
      ['old@example.org', 'new@example.org'],
      'a request is used up once the account left captured',
    );
  });
});
