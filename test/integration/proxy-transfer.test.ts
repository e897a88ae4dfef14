/**
 * Phase 2 end to end with real Dovecots and the real copy engine: a first login through
 * the gateway captures the account, the worker pool moves it once the user is gone, a
 * login during the pre-copy is served by the source, one during the switch gets
 * UNAVAILABLE, an open source session is closed when the lock starts, and afterwards the same client with the same password is served by the
 * destination with the same mail. Strategy immediate: moved while the client waits, or
 * proxied to the source when that takes too long.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MigrateFn } from '../../src/core/gateway/gateway.js';
import { loadCorpus, standardCorpus } from '../support/index.js';
import { assertSameMail } from './migrate-support.js';
import {
  FAST_BRAKES,
  gatewayImap,
  nextEvent,
  type ProxyLab,
  RawClient,
  startProxyLab,
} from './proxy-support.js';

const users = [
  { user: 'alice@example.org', password: 'alice-secret' },
  { user: 'bob@example.org', password: 'bob-secret' },
  { user: 'carol@example.org', password: 'carol-secret' },
];

/**
 * Holds every transfer at its start (before the pre-copy) and at its switch (once the
 * account is locked and its source sessions closed) until each is released, and says
 * when one is waiting there.
 */
class Gate {
  private readonly holds = { start: new Hold(), switch: new Hold() };
  waiting: string[] = [];
  switching: string[] = [];
  private onWait: Array<() => void> = [];
  open(): void {
    this.holds.start.open();
    this.holds.switch.open();
  }
  openStart(): void {
    this.holds.start.open();
  }
  wrap(real: MigrateFn): MigrateFn {
    return async (req, signal, hooks = {}) => {
      this.arrive(this.waiting, req.address);
      await this.holds.start.wait(signal);
      return real(req, signal, {
        ...hooks,
        onLocked: async () => {
          await hooks.onLocked?.();
          this.arrive(this.switching, req.address);
          await this.holds.switch.wait(signal);
        },
      });
    };
  }
  private arrive(list: string[], address: string): void {
    list.push(address);
    for (const f of this.onWait.splice(0)) f();
  }
  async reached(address: string, at: 'start' | 'switch' = 'start'): Promise<void> {
    const list = at === 'start' ? this.waiting : this.switching;
    while (!list.includes(address)) await new Promise<void>((r) => this.onWait.push(r));
  }
}

class Hold {
  private release: (() => void) | undefined;
  private readonly held: Promise<void> = new Promise((r) => (this.release = r));
  open(): void {
    this.release?.();
  }
  wait(signal: AbortSignal): Promise<unknown> {
    return Promise.race([
      this.held,
      new Promise((_, rej) => signal.addEventListener('abort', () => rej(new Error('aborted')))),
    ]);
  }
}

describe(
  'gateway + worker pool: accounts move while clients keep working',
  { timeout: 240_000 },
  () => {
    const gate = new Gate();
    let p: ProxyLab;
    const corpus = standardCorpus();
    before(async () => {
      p = await startProxyLab({
        lab: { users },
        workers: (real) => gate.wrap(real),
        deps: { limits: { ...FAST_BRAKES, workerPollMs: 100, sessionQuietMaxWaitMs: 60_000 } },
      });
      await loadCorpus(p.lab.source, 'alice@example.org', 'alice-secret', corpus);
    });
    after(async () => {
      gate.open();
      await p?.stop();
    });

    it('captured on first login; moved only after the user logged out; served by the source during the pre-copy, UNAVAILABLE during the switch', async () => {
      const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
      await c.connect();
      await c.mailboxOpen('INBOX');
      assert.equal((await p.store.get('alice@example.org'))?.state, 'captured');
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(gate.waiting, [], 'no transfer while the user is online');
      await c.logout();
      await gate.reached('alice@example.org');
      // the pre-copy starts: nothing locked, the user still works on the source
      assert.equal((await p.store.get('alice@example.org'))?.state, 'captured');
      const during = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
      const route = nextEvent(p, 'session.route', (e) => e.user === 'alice@example.org');
      await during.connect();
      assert.equal((await route).target, 'source');
      await during.logout();
      const done = nextEvent(p, 'transfer.finished', (e) => e.address === 'alice@example.org');
      gate.openStart();
      await gate.reached('alice@example.org', 'switch');
      const rec = await p.store.get('alice@example.org');
      assert.equal(rec?.state, 'transferring');
      assert.equal(rec?.transferPhase, 'switching');
      const raw = await RawClient.open(p.imapPort);
      raw.send('T1 LOGIN alice@example.org alice-secret\r\n');
      await raw.waitFor(/^T1 NO \[UNAVAILABLE\] .*try again in a few minutes\.\r\n/m);
      raw.close();
      gate.open();
      const fin = await done;
      assert.equal(fin.ok, true, fin.detail);
      assert.ok(fin.lock && fin.lock.ms >= 0 && fin.lock.passes >= 1, JSON.stringify(fin.lock));
      const after = await p.store.get('alice@example.org');
      assert.equal(after?.state, 'migrated');
      assert.equal(after?.transferPhase, undefined);
      assert.deepEqual(after?.transfer?.lock, fin.lock);
    });

    it('the same client, same password, is then served by the destination with the same mail', async () => {
      await assertSameMail(corpus, p.lab.source, p.lab.destination, users[0]!);
      const route = nextEvent(p, 'session.route', (e) => e.user === 'alice@example.org');
      const c = gatewayImap(p.imapPort, 'alice@example.org', 'alice-secret');
      await c.connect();
      const box = await c.mailboxOpen('INBOX');
      assert.equal(box.exists, corpus.folders.find((f) => f.path === 'INBOX')!.messages.length);
      await c.logout();
      assert.equal((await route).target, 'destination');
    });

    it('a session still open on the source is closed when the lock starts', async () => {
      // bob stays online; his wait for a quiet moment runs out
      const c = gatewayImap(p.imapPort, 'bob@example.org', 'bob-secret');
      const closed = nextEvent(p, 'session.closed', (e) => e.user === 'bob@example.org');
      await c.connect();
      await c.mailboxOpen('INBOX');
      const pool = p.gateway.workers!;
      // make bob's wait run out: pretend he logged in long ago
      await p.store.update(
        'bob@example.org',
        (r) => void (r.lastLogin = new Date(Date.now() - 3_600_000).toISOString()),
      );
      pool.wake();
      const ev = await closed;
      assert.equal(ev.reason, 'account-locked');
      await nextEvent(p, 'transfer.finished', (e) => e.address === 'bob@example.org');
      assert.equal((await p.store.get('bob@example.org'))?.state, 'migrated');
      await c.close();
    });

    it('strategy immediate: the client waits for the move and lands on the destination', async () => {
      p.gateway.reload({ ...p.config, strategy: 'immediate' });
      try {
        const route = nextEvent(p, 'session.route', (e) => e.user === 'carol@example.org');
        const c = gatewayImap(p.imapPort, 'carol@example.org', 'carol-secret');
        await c.connect();
        await c.mailboxOpen('INBOX');
        await c.logout();
        const r = await route;
        assert.equal(r.target, 'destination');
        assert.equal(r.reason, 'transfer-first');
        assert.equal((await p.store.get('carol@example.org'))?.state, 'migrated');
      } finally {
        p.gateway.reload(p.config);
      }
    });
  },
);

describe(
  'strategy immediate: a move that takes too long falls back to the source',
  { timeout: 120_000 },
  () => {
    const gate = new Gate();
    let p: ProxyLab;
    before(async () => {
      p = await startProxyLab({
        lab: { users },
        config: { strategy: 'immediate' },
        workers: (real) => gate.wrap(real),
        deps: { limits: { ...FAST_BRAKES, immediateWaitMs: 400, workerPollMs: 60_000 } },
      });
    });
    after(async () => {
      gate.open();
      await p?.stop();
    });

    it('the client is proxied to the source after the wait; the account stays captured for the pool', async () => {
      const route = nextEvent(p, 'session.route', (e) => e.user === 'bob@example.org');
      const t0 = Date.now();
      const c = gatewayImap(p.imapPort, 'bob@example.org', 'bob-secret');
      await c.connect();
      const waited = Date.now() - t0;
      await c.mailboxOpen('INBOX');
      const r = await route;
      assert.equal(r.target, 'source');
      assert.equal(r.reason, 'immediate-fallback');
      assert.ok(waited >= 350 && waited < 10_000, `waited ${waited} ms`);
      const rec = await p.store.get('bob@example.org');
      assert.equal(rec?.state, 'captured', 'an aborted move is not a failure');
      assert.equal(rec?.attempts ?? 0, 0);
      await c.logout();
    });
  },
);
