/**
 * The StateStore contract, the same tests against both backends: the JSON store and a
 * real PostgreSQL (test/support/postgres.ts, or AUTOPORT_TEST_PG_URL).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { openPgStore } from '../../src/core/state/pg-store.js';
import { StoreReadOnlyError } from '../../src/core/state/errors.js';
import type { SealedSecret, StateStore } from '../../src/core/state/types.js';
import { startPostgres, type PostgresInstance } from '../support/postgres.js';

const SEALED: SealedSecret = { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };

interface Backend {
  name: string;
  /**
   * a new, empty store; `reopen` opens the same one again after close, `readOnly` opens it
   * read-only beside the open one (as reports and `accounts list` do while a gateway runs)
   */
  open(): Promise<{
    store: StateStore;
    reopen: () => Promise<StateStore>;
    readOnly: () => Promise<StateStore>;
  }>;
}

let server: PostgresInstance | undefined;
const dirs: string[] = [];

const backends: Backend[] = [
  {
    name: 'json',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'ap-contract-'));
      dirs.push(dir);
      const file = join(dir, 'state.json');
      return {
        store: await openJsonStore(file),
        reopen: () => openJsonStore(file),
        readOnly: () => openJsonStore(file, { readOnly: true }),
      };
    },
  },
  {
    name: 'postgresql',
    async open() {
      const db = await startPostgres();
      const prev = server;
      server = db;
      await prev?.stop();
      return {
        store: await openPgStore(db.url),
        reopen: () => openPgStore(db.url),
        readOnly: () => openPgStore(db.url, { readOnly: true }),
      };
    },
  },
];

after(async () => {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

for (const backend of backends) {
  describe(`StateStore contract: ${backend.name}`, () => {
    let store: StateStore;
    let reopen: () => Promise<StateStore>;
    let readOnly: () => Promise<StateStore>;
    before(async () => {
      ({ store, reopen, readOnly } = await backend.open());
    });
    after(() => store.close());

    it('creates on first change, normalises the address, freezes what it hands out', async () => {
      const rec = await store.upsert('Alice@Example.org', {
        state: 'captured',
        credentials: SEALED,
      });
      assert.equal(rec.address, 'alice@example.org');
      assert.deepEqual(rec.errors, []);
      assert.deepEqual((await store.get('ALICE@example.org'))?.credentials, SEALED);
      assert.throws(() => ((rec as { state: string }).state = 'migrated'), TypeError);
      assert.equal(await store.get('nobody@example.org'), undefined);
      assert.equal(await store.get('bad\r\naddress'), undefined);
    });

    it('update applies a synchronous function atomically; a throw changes nothing', async () => {
      const before = await store.get('alice@example.org');
      await assert.rejects(
        store.update('alice@example.org', (r) => {
          r.state = 'failed';
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await store.get('alice@example.org'), before);
      await assert.rejects(
        store.update('alice@example.org', (r) => void (r.address = 'eve@x')),
        /address/,
      );
      await assert.rejects(
        store.update('alice@example.org', (r) => void (r.state = 'bogus' as 'failed')),
        /state/,
      );
    });

    it('concurrent updates of one record are serialised (none lost)', async () => {
      await store.upsert('count@example.org', { attempts: 0 });
      await Promise.all(
        Array.from({ length: 40 }, () =>
          store.update('count@example.org', (r) => void (r.attempts = (r.attempts ?? 0) + 1)),
        ),
      );
      assert.equal((await store.get('count@example.org'))?.attempts, 40);
    });

    it('concurrent changes of many records: a function that throws fails only its caller', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          store.update(`storm${i}@example.org`, (r) => {
            if (i % 7 === 3) throw new Error(`refused ${i}`);
            r.state = 'captured';
            r.credentials = SEALED;
          }),
        ),
      );
      for (const [i, r] of results.entries()) {
        if (i % 7 === 3) {
          assert.equal(r.status, 'rejected');
          assert.match(String((r as PromiseRejectedResult).reason), new RegExp(`refused ${i}`));
          assert.equal(await store.get(`storm${i}@example.org`), undefined, 'nothing stored');
        } else {
          assert.equal(r.status, 'fulfilled', String((r as PromiseRejectedResult).reason));
          assert.equal((await store.get(`storm${i}@example.org`))?.state, 'captured');
        }
      }
      for (let i = 0; i < 60; i++) await store.remove(`storm${i}@example.org`);
    });

    it('updatedAt moves when the state changes; a field set to undefined is cleared', async () => {
      const a = await store.upsert('bob@example.org', { state: 'unknown', reason: 'x' });
      await new Promise((r) => setTimeout(r, 5));
      const b = await store.upsert('bob@example.org', { state: 'failed', reason: undefined });
      assert.notEqual(a.updatedAt, b.updatedAt);
      assert.equal(b.reason, undefined);
      assert.equal((await store.get('bob@example.org'))?.reason, undefined);
    });

    it('lists by state with a limit, counts by state, and the queue', async () => {
      await store.upsert('carol@example.org', { state: 'captured' });
      const captured = await store.list({ state: 'captured' });
      assert.deepEqual(captured.map((r) => r.address).sort(), [
        'alice@example.org',
        'carol@example.org',
      ]);
      assert.equal((await store.list({ state: ['captured', 'failed'], limit: 1 })).length, 1);
      const c = await store.counts();
      assert.equal(c.byState.captured, 2);
      assert.equal(c.byState.failed, 1);
      assert.equal(c.queue, 1, 'captured with credentials');
      assert.equal(await store.count(), 4);
    });

    it('due: captured with credentials first, then failed ones whose retry is due', async () => {
      const now = new Date();
      const past = new Date(now.getTime() - 60_000).toISOString();
      const later = new Date(now.getTime() + 60_000).toISOString();
      await store.upsert('f1@example.org', {
        state: 'failed',
        credentials: SEALED,
        nextAttemptAt: past,
        attempts: 1,
      });
      await store.upsert('f2@example.org', {
        state: 'failed',
        credentials: SEALED,
        nextAttemptAt: later,
        attempts: 1,
      });
      await store.upsert('f3@example.org', { state: 'failed', credentials: SEALED, attempts: 9 });
      const due = await store.due({ now, maxAttempts: 5, limit: 10 });
      assert.deepEqual(
        due.map((r) => r.address),
        ['alice@example.org', 'f1@example.org'],
      );
      assert.equal((await store.due({ now, maxAttempts: 5, limit: 1 })).length, 1);
    });

    it('moving lists the records with a transfer phase; remove deletes', async () => {
      await store.upsert('m@example.org', { state: 'captured', transferPhase: 'pre-copying' });
      assert.deepEqual(
        (await store.list({ moving: true })).map((r) => r.address),
        ['m@example.org'],
      );
      assert.equal(await store.remove('m@example.org'), true);
      assert.equal(await store.remove('m@example.org'), false);
      assert.equal(await store.get('m@example.org'), undefined);
    });

    it('pages through every record by address: after + limit, with or without a state', async () => {
      const all = (await store.list()).map((r) => r.address).sort();
      const paged: string[] = [];
      for (let after = ''; ;) {
        const page = (await store.list({ after, limit: 2 })).map((r) => r.address);
        if (page.length === 0) break;
        assert.ok(page.length <= 2);
        assert.deepEqual(page, [...page].sort(), 'a page is in address order');
        paged.push(...page);
        after = page.at(-1)!;
      }
      assert.deepEqual(paged, all, 'each record once, none skipped');
      await store.upsert('aaron@example.org', { state: 'failed' }); // a new key: the order moves
      assert.deepEqual(
        (await store.list({ after: 'alice@example.org', state: 'failed', limit: 2 })).map(
          (r) => r.address,
        ),
        ['bob@example.org', 'f1@example.org'],
      );
      assert.deepEqual(
        (await store.list({ after: '', limit: 1 })).map((r) => r.address),
        ['aaron@example.org'],
      );
      await store.remove('aaron@example.org');
    });

    it('what was acknowledged survives a close and a reopen, sealed secrets byte for byte', async () => {
      await store.flush();
      const all = await store.list();
      await store.close();
      store = await reopen();
      const again = await store.list();
      const sorted = (list: typeof all) =>
        JSON.parse(JSON.stringify(list.sort((a, b) => a.address.localeCompare(b.address))));
      assert.deepEqual(sorted(again), sorted(all));
      assert.equal(
        JSON.stringify((await store.get('alice@example.org'))?.credentials),
        JSON.stringify(SEALED),
      );
    });

    it('a read-only open reads, refuses every change with StoreReadOnlyError, is no node', async () => {
      await store.upsert('reader@example.org', { state: 'captured' });
      await store.side.write('reader@example.org', 'marker', { n: 1 });
      await store.flush();
      const ro = await readOnly();
      try {
        assert.equal((await ro.get('reader@example.org'))?.state, 'captured');
        assert.deepEqual(await ro.side.read('reader@example.org', 'marker'), { n: 1 });
        const rec = (await ro.get('reader@example.org'))!;
        const changes: Array<[string, () => Promise<unknown>]> = [
          ['upsert', () => ro.upsert('reader@example.org', { state: 'failed' })],
          ['upsert new', () => ro.upsert('new@example.org', { state: 'captured' })],
          ['update', () => ro.update('reader@example.org', (r) => void (r.state = 'failed'))],
          ['remove', () => ro.remove('reader@example.org')],
          ['side write', () => ro.side.write('reader@example.org', 'marker', { n: 2 })],
          ['side remove', () => ro.side.remove('reader@example.org')],
        ];
        if (ro.insertMany)
          changes.push([
            'insertMany',
            () => ro.insertMany!([{ ...rec, address: 'other@example.org' }]),
          ]);
        if (ro.cluster.shared)
          changes.push(
            ['join', () => ro.cluster.join()],
            ['claim', () => ro.cluster.claim('reader@example.org')],
            ['release', () => ro.cluster.release('reader@example.org')],
          );
        for (const [what, change] of changes)
          await assert.rejects(
            (async () => change())(),
            (err) => err instanceof StoreReadOnlyError,
            what,
          );
        if (ro.cluster.shared) {
          assert.throws(() => ro.cluster.publish('t', {}), StoreReadOnlyError);
          const nodes = (await store.cluster.nodes()).map((n) => n.node);
          assert.ok(!nodes.includes(ro.cluster.node), 'the reader wrote no heartbeat');
        }
      } finally {
        await ro.close();
      }
      assert.equal((await store.get('reader@example.org'))?.state, 'captured');
      assert.equal(await store.get('new@example.org'), undefined);
      assert.equal(await store.get('other@example.org'), undefined);
      assert.deepEqual(await store.side.read('reader@example.org', 'marker'), { n: 1 });
      await store.remove('reader@example.org');
    });
  });
}
