/**
 * update() on PostgreSQL writes a row only if it is still the version it read (pg-batch.ts).
 * Two nodes change the same rows at once here, so their batches lose races to each other:
 * every change must still land exactly once, a function must see what the one before it
 * left, and the other nodes must hear of a change only when it was written.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { PgStore } from '../../src/core/state/pg-store.js';
import type { ClusterChange } from '../../src/core/state/types.js';
import { twoPgNodes, type TwoNodes } from '../support/pg-nodes.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

let server: PostgresInstance;
let nodes: TwoNodes;
let a: PgStore;
let b: PgStore;

before(async () => {
  server = await startPostgres();
  nodes = await twoPgNodes(server.url, ['a', 'b']);
  ({ a, b } = nodes);
});
after(async () => {
  await nodes?.close();
  await server?.stop();
});

describe('update() on PostgreSQL when another writer gets in between', () => {
  it('two nodes counting on the same rows: no increment lost, none counted twice', async () => {
    const rows = ['race0@x.org', 'race1@x.org', 'race2@x.org'];
    for (const r of rows) await a.upsert(r, { attempts: 0 });
    let runs = 0;
    const bump = (store: PgStore, address: string) =>
      store.update(address, (r) => {
        runs++;
        r.attempts = (r.attempts ?? 0) + 1;
      });
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 120; i++) for (const r of rows) calls.push(bump(i % 2 ? a : b, r));
    await Promise.all(calls);
    for (const r of rows) assert.equal((await b.get(r))?.attempts, 120, r);
    // the race was run: some functions ran again on a newer record
    assert.ok(runs > calls.length, `${runs} runs for ${calls.length} changes`);
  });

  it('two nodes making the same new rows at once: each row made once, both changes in it', async () => {
    const fresh = Array.from({ length: 40 }, (_, i) => `new${i}@x.org`);
    const results = await Promise.all(
      fresh.flatMap((addr) => [
        a.update(addr, (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
        b.update(addr, (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
      ]),
    );
    assert.equal(results.length, 80);
    for (const addr of fresh) assert.equal((await a.get(addr))?.attempts, 2, addr);
  });

  it('a row changed by someone else between the read and the write: the change runs again on it', async () => {
    await a.upsert('between@x.org', { state: 'unknown', reason: 'first' });
    const side = new pg.Client({ connectionString: server.url });
    await side.connect();
    try {
      // another writer holds the row, so the batch reads it but cannot write it yet
      await side.query('BEGIN');
      await side.query(
        "SELECT 1 FROM autoport_accounts WHERE address = 'between@x.org' FOR UPDATE",
      );
      const seen: string[] = [];
      const done = a.update('between@x.org', (r) => {
        seen.push(r.reason ?? '');
        r.reason = `${r.reason} then mine`;
      });
      while (seen.length === 0) await sleep(5);
      await sleep(100);
      await side.query(
        `UPDATE autoport_accounts SET record = json_build_object('address', address,
           'state', state, 'updatedAt', updated_at, 'errors', '[]'::json, 'folders', '{}'::json,
           'reason', 'second') WHERE address = 'between@x.org'`,
      );
      await side.query('COMMIT');
      const rec = await done;
      assert.deepEqual(seen, ['first', 'second'], 'ran on the read, then again on the newer row');
      assert.equal(rec.reason, 'second then mine');
      assert.equal((await b.get('between@x.org'))?.reason, 'second then mine');
    } finally {
      await side.end();
    }
  });

  it('a deadlock PostgreSQL breaks on a batch: its changes go again, locked, and land', async () => {
    await a.upsert('dl-a@x.org', { attempts: 0 });
    const side = new pg.Client({ connectionString: server.url });
    await side.connect();
    try {
      // the side waits longer before it checks for a deadlock: the batch is the one broken
      await side.query("SET deadlock_timeout = '20s'");
      await side.query('BEGIN');
      await side.query(
        `INSERT INTO autoport_accounts (address, state, has_credentials, updated_at, record)
         VALUES ('dl-b@x.org', 'unknown', false, '2026-01-01T00:00:00.000Z',
           json_build_object('address', 'dl-b@x.org', 'state', 'unknown',
             'updatedAt', '2026-01-01T00:00:00.000Z', 'errors', '[]'::json,
             'folders', '{}'::json, 'reason', 'side'))`,
      );
      // two changes in flight take both slots, so the next two share one batch
      const busy = [
        a.update('dl-x@x.org', () => undefined),
        a.update('dl-y@x.org', () => undefined),
      ];
      let runsB = 0;
      const both = Promise.all([
        a.update('dl-a@x.org', (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
        a.update('dl-b@x.org', (r) => {
          runsB++;
          r.reason = `${r.reason ?? 'none'} then mine`;
        }),
      ]);
      await Promise.all(busy);
      // the batch holds dl-a and waits for the side's dl-b; the side now wants dl-a
      await sleep(300);
      await side.query("SELECT 1 FROM autoport_accounts WHERE address = 'dl-a@x.org' FOR UPDATE");
      await side.query('COMMIT');
      const [recA, recB] = await both;
      assert.equal(recA.attempts, 1);
      assert.equal(recB.reason, 'side then mine');
      assert.ok(runsB >= 2, `the change ran again after the deadlock (${runsB} runs)`);
      assert.equal((await b.get('dl-a@x.org'))?.attempts, 1);
    } finally {
      await side.end();
    }
  });

  it('the other node hears of each state change once, only when it was written', async () => {
    const heard: ClusterChange[] = [];
    const off = b.cluster.onChange((c) => {
      if (c.address.startsWith('heard')) heard.push(c);
    });
    try {
      const addrs = Array.from({ length: 10 }, (_, i) => `heard${i}@x.org`);
      for (const addr of addrs) await a.upsert(addr, { state: 'unknown', attempts: 0 });
      // both nodes touch every row at once; only a's changes change the state
      await Promise.all(
        addrs.flatMap((addr) => [
          a.update(addr, (r) => void (r.state = 'captured')),
          b.update(addr, (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
          b.update(addr, (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
        ]),
      );
      await sleep(500);
      for (const addr of addrs) {
        const rec = await a.get(addr);
        assert.equal(rec?.state, 'captured');
        assert.equal(rec?.attempts, 2);
      }
      const captured = heard.filter((c) => c.state === 'captured').map((c) => c.address);
      assert.deepEqual(captured.sort(), addrs.sort());
    } finally {
      off();
    }
  });
});
