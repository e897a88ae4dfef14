/**
 * The worker pool among several gateway nodes, with a stand-in cluster (FakeCluster) over a
 * real JSON store: a move starts only on a granted claim and gives it back when over, on
 * every path; orphans are repaired only once claimed; losing the cluster aborts what runs
 * without counting a failure; another node's captures wake the pool and its excludes abort
 * a move here; another node's switch closes this node's sessions of the account; stop()
 * unsubscribes.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { closeSessionsOnRemoteLock } from '../../src/core/gateway/cluster-locks.js';
import { silentLogger } from '../../src/core/log/logger.js';
import { SessionRegistry } from '../../src/core/sessions/registry.js';
import type { Splice } from '../../src/core/sessions/splice.js';
import type { SessionInfo } from '../../src/core/sessions/types.js';
import type { MigrateFn } from '../../src/core/workers/worker-pool.js';
import { FakeCluster, withCluster } from '../support/fake-cluster.js';
import { poolSetup, until } from './worker-fixtures.js';

const A = 'a@example.org';
const B = 'b@example.org';
const C = 'c@example.org';

interface Setup {
  migrate?: MigrateFn;
  concurrency?: number;
  workerPollMs?: number;
  leaseMs?: number;
}

async function setup(t: TestContext, opts: Setup = {}) {
  const cluster = new FakeCluster();
  const moved: string[] = [];
  const migrate: MigrateFn =
    opts.migrate ??
    (async (req) => {
      moved.push(req.address);
      return { ok: true };
    });
  const s = await poolSetup(t, {
    migrate,
    concurrency: opts.concurrency ?? 2,
    workerPollMs: opts.workerPollMs ?? 20,
    store: (json) => withCluster(json, cluster),
    deps: { orphansEveryMs: 30, leaseMs: opts.leaseMs ?? 60_000 },
  });
  return { ...s, cluster, moved };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WorkerPool among several nodes', () => {
  it('moves an account only on a granted claim, and gives every claim back', async (t) => {
    const s = await setup(t, {
      migrate: async (req) => {
        s.moved.push(req.address);
        if (req.address === C) throw new Error('source said no');
        return { ok: true };
      },
    });
    s.cluster.other.add(B);
    await s.capture(A);
    await s.capture(B);
    await s.capture(C);
    await s.pool.start();
    await until('a and c', () => !!s.finished(A) && !!s.finished(C));
    await sleep(100); // a few more ticks: b stays another node's
    assert.deepEqual(s.moved.sort(), [A, C]);
    assert.ok(s.cluster.log.includes(`claim ${B} refused`));
    assert.equal((await s.store.get(B))?.state, 'captured');
    assert.equal((await s.store.get(A))?.state, 'migrated');
    assert.equal((await s.store.get(C))?.state, 'failed', 'a failed move gave its claim back too');
    assert.deepEqual([...s.cluster.held], [], 'no claim kept');
    assert.equal(await s.pool.transferNow(B, 'pw', 1000), 'busy', 'immediate: held elsewhere');
    assert.deepEqual(s.moved.sort(), [A, C]);
    // the other node let go of b without moving it: this one takes it
    s.cluster.other.delete(B);
    s.pool.wake();
    await until('b', () => !!s.finished(B));
    assert.equal((await s.store.get(B))?.state, 'migrated');
    assert.deepEqual([...s.cluster.held], []);
  });

  it('immediate: another node moved the account meanwhile: migrated, not moved again', async (t) => {
    const s = await setup(t, { concurrency: 0 });
    await s.store.upsert(A, { state: 'migrated' });
    await s.pool.start();
    assert.equal(await s.pool.transferNow(A, 'pw', 1000), 'migrated');
    assert.deepEqual(s.moved, []);
    assert.deepEqual([...s.cluster.held], []);
  });

  it('repairs an orphan only once it has claimed it', async (t) => {
    const s = await setup(t, { concurrency: 0 });
    await s.store.upsert(A, { state: 'captured', transferPhase: 'pre-copying' });
    await s.store.upsert(B, { state: 'transferring', transferPhase: 'switching' });
    await s.store.upsert(C, { state: 'transferring', transferPhase: 'switching' });
    s.cluster.other.add(C); // its node is alive after all, or took it first
    await s.pool.start();
    assert.equal((await s.store.get(A))?.transferPhase, undefined);
    assert.equal((await s.store.get(A))?.state, 'captured');
    assert.equal((await s.store.get(B))?.state, 'captured');
    assert.equal((await s.store.get(B))?.transferPhase, undefined);
    assert.equal((await s.store.get(C))?.state, 'transferring', 'not ours to repair');
    assert.equal((await s.store.get(C))?.transferPhase, 'switching');
    // its node died: the next orphans phase repairs it
    s.cluster.other.delete(C);
    await until('c repaired', async () => (await s.store.get(C))?.state === 'captured');
    assert.equal((await s.store.get(C))?.transferPhase, undefined);
    assert.deepEqual([...s.cluster.held], []);
  });

  it('losing the cluster aborts the moves; no failure counted; a record taken over is left alone', async (t) => {
    const s = await setup(t, {
      leaseMs: 500,
      migrate: async (req, signal) => {
        await s.store.update(req.address, (r) => {
          r.attempts = (r.attempts ?? 0) + 1;
          r.transferPhase = 'pre-copying';
        });
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        return { ok: false, detail: 'aborted' };
      },
    });
    await s.capture(A);
    await s.capture(B);
    await s.pool.start();
    await until('both pre-copying', () => s.pool.active.length === 2);
    await until('phases', async () => (await s.store.get(B))?.transferPhase === 'pre-copying');
    s.cluster.other.add(B); // another node took b over already
    s.cluster.held.delete(B);
    s.cluster.lose();
    await until('both ended', () => !!s.finished(A) && !!s.finished(B));
    assert.equal(s.finished(A)?.aborted, true);
    assert.equal(s.finished(B)?.aborted, true);
    const a = await s.store.get(A);
    assert.equal(a?.state, 'captured', 'still ours: put back, not failed');
    assert.equal(a?.attempts, 0, 'the attempt is not counted');
    assert.equal(a?.transferPhase, undefined);
    const b = await s.store.get(B);
    assert.equal(b?.state, 'captured');
    assert.equal(b?.transferPhase, 'pre-copying', 'left to the node that holds it');
    assert.equal(b?.attempts, 1);
    // nothing new for a lease: a claim made now could be taken over at once
    await sleep(100);
    assert.deepEqual(s.pool.active, [], 'paused');
    assert.equal(await s.pool.transferNow(A, 'pw', 1000), 'busy');
    await until('a taken again after the lease', () => s.pool.active.includes(A));
  });

  it("another node's capture wakes the pool; its exclude aborts a move here", async (t) => {
    let abortedBy: unknown;
    const s = await setup(t, {
      workerPollMs: 60_000,
      migrate: async (req, signal) => {
        s.moved.push(req.address);
        if (req.address !== B) return { ok: true };
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        abortedBy = signal.reason;
        return { ok: false, detail: 'aborted' };
      },
    });
    await s.pool.start();
    await sleep(50);
    await s.capture(A); // written by another node: no bus event here
    await sleep(50);
    assert.deepEqual(s.moved, [], 'nothing woke the pool yet');
    s.cluster.change({ address: A, state: 'captured' });
    await until('a moved', () => !!s.finished(A));
    await s.capture(B);
    s.cluster.change({ address: B, state: 'captured' });
    await until('b moving', () => s.pool.active.includes(B));
    await s.store.upsert(B, { state: 'excluded', reason: 'shared mailbox' });
    s.cluster.change({ address: B, state: 'excluded' });
    await until('b aborted', () => !!s.finished(B));
    assert.match(String(abortedBy), /excluded/);
    assert.equal(s.finished(B)?.aborted, true);
    assert.equal((await s.store.get(B))?.state, 'excluded');
  });

  it('stop() unsubscribes from the cluster and takes no more work', async (t) => {
    const s = await setup(t, { workerPollMs: 10 });
    await s.pool.start();
    assert.equal(s.cluster.listeners, 2);
    await s.pool.stop();
    assert.equal(s.cluster.listeners, 0);
    await s.capture(A);
    s.pool.wake();
    await sleep(100);
    assert.deepEqual(s.moved, []);
  });
});

describe("another node's switch", () => {
  it("closes this node's sessions of the account, and only for a lock", () => {
    const cluster = new FakeCluster();
    const sessions = new SessionRegistry();
    const closed: string[] = [];
    const open = (user: string, id: string): void =>
      void sessions.add(
        user,
        { id } as SessionInfo,
        {
          close: (reason: string) => closed.push(`${id} ${reason}`),
          bytesIn: 0,
          bytesOut: 0,
        } as unknown as Splice,
      );
    open(A, 's1');
    open(A, 's2');
    open(B, 's3');
    const unwatch = closeSessionsOnRemoteLock(cluster, sessions, silentLogger);
    cluster.change({ address: A, state: 'captured', phase: 'pre-copying' });
    assert.deepEqual(closed, [], 'a pre-copy leaves the sessions alone');
    cluster.change({ address: A, state: 'transferring', phase: 'switching' });
    assert.deepEqual(closed.sort(), ['s1 account-locked', 's2 account-locked']);
    unwatch();
    assert.equal(cluster.listeners, 0);
    cluster.change({ address: B, state: 'transferring', phase: 'switching' });
    assert.equal(closed.length, 2);
  });
});
