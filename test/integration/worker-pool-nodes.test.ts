/**
 * Two worker pools on two PostgreSQL stores of one database (two gateway nodes), with a
 * stand-in copy engine that counts its calls per account: every captured account is moved
 * exactly once, and no claim is left behind. Then a node dies mid-switch (its heartbeat
 * stops, its claim stays): the other node repairs the orphan once the lease has run out,
 * not before, and moves it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { EventBus } from '../../src/core/bus.js';
import { resolveLimits } from '../../src/core/limits.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import { generateKeyFile, loadKeyring, seal, type Keyring } from '../../src/core/state/crypto.js';
import { openPgStore, type PgStore } from '../../src/core/state/pg-store.js';
import { WorkerPool, type MigrateFn } from '../../src/core/workers/worker-pool.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const TIMING = { heartbeatMs: 200, leaseMs: 2000 };
const N = 40;

let server: PostgresInstance;
let keyring: Keyring;
let dir: string;
const closing: Array<() => Promise<unknown>> = [];

before(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'ap-pool-nodes-'));
  await generateKeyFile(join(dir, 'k.key'));
  keyring = loadKeyring(join(dir, 'k.key'));
});

after(async () => {
  for (const f of closing.reverse()) await f().catch(() => undefined);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A node: its own store (connection pool, cluster membership) and worker pool. */
async function node(name: string, migrate: (store: PgStore) => MigrateFn) {
  const store = await openPgStore(server.url, {
    nodeName: name,
    clusterTiming: TIMING,
    sideDir: join(dir, name),
  });
  closing.push(() => store.close());
  await store.cluster.join();
  const pool = new WorkerPool({
    store,
    keyring,
    bus: new EventBus(),
    logger: silentLogger,
    sessions: new SessionRegistry(),
    migrate: migrate(store),
    concurrency: () => 3,
    limits: resolveLimits({ workerPollMs: 50, sessionQuietMaxWaitMs: 0 }),
    leaseMs: TIMING.leaseMs,
    orphansEveryMs: 100, // often, so that a repair of another node's live move would show
  });
  closing.push(() => pool.stop());
  return { store, pool };
}

/** The copy engine's marks on the record (migrate-record.ts), each move counted by account. */
function counting(calls: Map<string, string[]>, name: string) {
  return (store: PgStore): MigrateFn =>
    async (req, signal, hooks) => {
      calls.set(req.address, [...(calls.get(req.address) ?? []), name]);
      await store.update(req.address, (r) => {
        r.attempts = (r.attempts ?? 0) + 1;
        r.transferPhase = 'pre-copying';
      });
      await sleep(5 + Math.random() * 20);
      await store.update(req.address, (r) => {
        r.state = 'transferring';
        r.transferPhase = 'switching';
      });
      await hooks?.onLocked?.();
      await sleep(Math.random() * 10);
      if (signal.aborted) throw new Error('aborted');
      await store.update(req.address, (r) => {
        r.state = 'migrated';
        r.transferPhase = undefined;
      });
      return { ok: true };
    };
}

async function capture(store: PgStore, address: string): Promise<void> {
  await store.upsert(address, { state: 'captured', credentials: seal(keyring, 'pw', address) });
}

async function claimsLeft(): Promise<number> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    const { rows } = await c.query(
      'SELECT count(*)::int AS n FROM autoport_accounts WHERE claim_node IS NOT NULL',
    );
    return (rows[0] as { n: number }).n;
  } finally {
    await c.end();
  }
}

describe('worker pools on two nodes sharing one PostgreSQL', () => {
  it('move every captured account exactly once', async () => {
    const calls = new Map<string, string[]>();
    const a = await node('node-a', counting(calls, 'a'));
    const b = await node('node-b', counting(calls, 'b'));
    const addresses = Array.from({ length: N }, (_, i) => `u${i}@example.org`);
    for (const address of addresses) await capture(a.store, address);
    await Promise.all([a.pool.start(), b.pool.start()]);
    await until('every account migrated', async () => {
      const counts = await a.store.counts();
      return counts.byState.migrated === N;
    });
    await Promise.all([a.pool.stop(), b.pool.stop()]);
    const twice = [...calls].filter(([, nodes]) => nodes.length !== 1);
    assert.deepEqual(twice, [], 'each account moved once');
    assert.equal(calls.size, N);
    const by = (n: string) => [...calls.values()].filter((v) => v[0] === n).length;
    assert.ok(by('a') > 0 && by('b') > 0, `both nodes moved accounts (a ${by('a')}, b ${by('b')})`);
    for (const address of addresses) {
      const rec = await b.store.get(address);
      assert.equal(rec?.state, 'migrated', address);
      assert.equal(rec?.transferPhase, undefined, address);
      assert.equal(rec?.attempts, 1, address);
    }
    assert.equal(await claimsLeft(), 0, 'no claim left behind');
  });

  it('a node dying mid-switch leaves an orphan the other repairs after the lease, then moves', async () => {
    const calls = new Map<string, string[]>();
    const dead = 'dead@example.org';
    let locked!: () => void;
    const switching = new Promise<void>((resolve) => (locked = resolve));
    // the dying node: its move reaches the switch and never ends
    const c = await node('node-c', (store) => async (req, signal, hooks) => {
      calls.set(req.address, [...(calls.get(req.address) ?? []), 'c']);
      await store.update(req.address, (r) => {
        r.state = 'transferring';
        r.transferPhase = 'switching';
      });
      await hooks?.onLocked?.();
      locked();
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      return { ok: false, detail: 'aborted' };
    });
    await capture(c.store, dead);
    await c.pool.start();
    await switching;
    // death: no more heartbeats, and nothing released (the process is gone)
    clearInterval((c.store.cluster as unknown as { beat: NodeJS.Timeout }).beat);
    const diedAt = Date.now();
    const d = await node('node-d', counting(calls, 'd'));
    await d.pool.start();
    // node-c's heartbeat is younger than the lease yet: its claim holds
    if (Date.now() - diedAt < TIMING.leaseMs - TIMING.heartbeatMs * 2) {
      assert.equal((await d.store.get(dead))?.state, 'transferring', 'not repaired while alive');
      assert.deepEqual(calls.get(dead), ['c']);
    }
    await until('the orphan moved by node-d', async () => {
      return (await d.store.get(dead))?.state === 'migrated';
    });
    assert.ok(Date.now() - diedAt >= TIMING.leaseMs - TIMING.heartbeatMs, 'not before the lease');
    assert.deepEqual(calls.get(dead), ['c', 'd'], 'moved again, once, by the survivor');
    await d.pool.stop();
    assert.equal((await d.store.get(dead))?.transferPhase, undefined);
  });
});
