import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

/** Wait for a condition a timer brings about; a loaded machine may take a while. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
import {
  InvalidAddressError,
  StoreClosedError,
  StoreCorruptError,
  StoreFileAdapter,
  openJsonStore,
  type StoreData,
} from '../../src/core/state/index.js';
import { readStateSync } from '../support/state-file.js';
import { defer, tempDir } from '../support/state-helpers.js';

/** The real file adapter, counting writes and optionally holding or failing them. */
class CountingAdapter extends StoreFileAdapter {
  writes = 0;
  gate: Promise<void> | undefined;
  failNext: Error | undefined;
  override async write(data: StoreData): Promise<void> {
    this.writes++;
    const p = super.write(data); // snapshot taken here, synchronously
    if (this.gate) await this.gate;
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      await p;
      throw err;
    }
    await p;
  }
}

/** What is durable: the snapshot with its journal replayed. */
const readDoc = readStateSync;

test('upsert creates a record keyed by the lower-cased address and merges patches', async (t) => {
  const file = join(tempDir(t), 'state.json');
  let now = new Date('2025-03-01T10:00:00Z');
  const store = await openJsonStore(file, { saveDelayMs: 10_000, now: () => now });
  defer(t, () => store.close());

  const rec = await store.upsert('Alice@Example.ORG', { lastSeen: '2025-03-01T09:00:00Z' });
  assert.equal(rec.address, 'alice@example.org');
  assert.equal(rec.state, 'unknown');
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.folders, {});
  assert.equal(rec.updatedAt, '2025-03-01T10:00:00.000Z');
  assert.equal(await store.get('ALICE@example.org'), rec);

  now = new Date('2025-03-01T11:00:00Z');
  const same = await store.upsert('alice@example.org', { lastLogin: 'x' });
  assert.equal(same.updatedAt, '2025-03-01T10:00:00.000Z', 'updatedAt moves only with the state');
  assert.equal(same.lastSeen, '2025-03-01T09:00:00Z');
  const moved = await store.upsert('alice@example.org', { state: 'captured', lastSeen: undefined });
  assert.equal(moved.updatedAt, '2025-03-01T11:00:00.000Z');
  assert.equal(moved.lastSeen, undefined, 'an undefined patch field clears it');
  assert.equal(moved.lastLogin, 'x');
  assert.equal(await store.count(), 1);
});

test('records are copy-on-write snapshots and refuse mutation', async (t) => {
  const store = await openJsonStore(join(tempDir(t), 'state.json'), { saveDelayMs: 10_000 });
  defer(t, () => store.close());
  const before = await store.upsert('bob@x', { state: 'captured', attempts: 1 });
  const after = await store.update('bob@x', (r) => {
    r.attempts = 2;
    r.folders.INBOX = {
      source: 'INBOX',
      destination: 'INBOX',
      messages: 1,
      bytes: 1,
      copied: 0,
      skipped: 0,
      failed: 0,
      updatedAt: 'now',
    };
  });
  assert.equal(before.attempts, 1, 'a record handed out earlier does not change');
  assert.equal(after.attempts, 2);
  assert.throws(() => {
    (after as { attempts: number }).attempts = 3;
  }, TypeError);
  assert.throws(() => {
    (after.folders.INBOX as { copied: number }).copied = 9;
  }, TypeError);

  await assert.rejects(
    async () =>
      await store.update('bob@x', () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  await assert.rejects(
    async () => await store.update('bob@x', (r) => void (r.address = 'eve@x')),
    /address/,
  );
  await assert.rejects(
    async () => await store.update('bob@x', (async () => undefined) as () => void),
    /synchronous/,
  );
  await assert.rejects(
    async () => await store.update('bob@x', (r) => void (r.state = 'bogus' as 'failed')),
    /state/,
  );
  assert.equal(await store.get('bob@x'), after, 'failed updates change nothing');

  const created = await store.update('new@x', (r) => void (r.reason = 'made by update'));
  assert.equal(created.state, 'unknown');
  assert.equal(created.reason, 'made by update');
});

test('list filters by state; remove and count', async (t) => {
  const store = await openJsonStore(join(tempDir(t), 'state.json'), { saveDelayMs: 10_000 });
  defer(t, () => store.close());
  await store.upsert('a@x', { state: 'captured' });
  await store.upsert('b@x', { state: 'migrated' });
  await store.upsert('c@x', { state: 'failed' });
  await store.upsert('d@x', {});
  assert.deepEqual(
    (await store.list()).map((r) => r.address),
    ['a@x', 'b@x', 'c@x', 'd@x'],
  );
  assert.deepEqual(
    (await store.list({ state: 'migrated' })).map((r) => r.address),
    ['b@x'],
  );
  assert.deepEqual(
    (await store.list({ state: ['failed', 'unknown'] })).map((r) => r.address),
    ['c@x', 'd@x'],
  );
  assert.equal(await store.remove('B@X'), true);
  assert.equal(await store.remove('b@x'), false);
  assert.equal(await store.remove(''), false);
  assert.equal(await store.count(), 3);
  assert.equal(await store.get('b@x'), undefined);
});

test('hostile addresses: prototype names are plain keys, control characters are refused', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 10_000 });
  for (const a of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
    await store.upsert(a, { state: 'captured' });
  await assert.rejects(async () => await store.upsert('', {}), InvalidAddressError);
  await assert.rejects(async () => await store.upsert('a\r\nb', {}), InvalidAddressError);
  await assert.rejects(async () => await store.upsert('a\u0000b', {}), InvalidAddressError);
  await assert.rejects(async () => await store.upsert('x'.repeat(321), {}), InvalidAddressError);
  assert.equal(await store.get('a\r\nb'), undefined);
  await store.close();
  const again = await openJsonStore(file);
  defer(t, () => again.close());
  assert.equal(await again.count(), 4);
  assert.equal((await again.get('__proto__'))?.state, 'captured');
  assert.equal(Object.getPrototypeOf(await again.get('constructor')), Object.prototype);
});

test('several changes are coalesced into one write; flush writes now', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const adapter = new CountingAdapter(file);
  const store = await openJsonStore(file, { saveDelayMs: 30, adapter });
  defer(t, () => store.close());
  for (let i = 0; i < 50; i++) await store.update('c@x', (r) => void (r.attempts = i));
  await store.upsert('d@x', { state: 'captured' });
  assert.equal(adapter.writes, 0, 'nothing written synchronously');
  await until(() => adapter.writes > 0, 'the coalesced write');
  await sleep(100); // time for a second write, if the changes were not coalesced
  assert.equal(adapter.writes, 1);
  assert.equal(readDoc(file).accounts['c@x']?.attempts, 49);
  await store.flush();
  assert.equal(adapter.writes, 1, 'flush with nothing dirty does not write');

  const slow = await openJsonStore(join(tempDir(t), 'slow.json'), { saveDelayMs: 60_000 });
  defer(t, () => slow.close());
  await slow.upsert('e@x', { attempts: 7 });
  assert.equal(existsSync(slow.location), false, 'not written before flush');
  await slow.flush();
  assert.equal(readDoc(slow.location).accounts['e@x']?.attempts, 7);
  assert.equal(slow.status().saves, 1);
  assert.equal(slow.status().dirty, false);
});

test('changes made during a write are saved by the next write', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const adapter = new CountingAdapter(file);
  const store = await openJsonStore(file, { saveDelayMs: 5, adapter });
  defer(t, () => store.close());
  let open!: () => void;
  adapter.gate = new Promise((r) => (open = r));
  await store.upsert('a@x', { attempts: 1 });
  const first = store.flush();
  await until(() => adapter.writes === 1, 'the first write');
  await store.upsert('a@x', { attempts: 2 }); // while the first write is held
  await sleep(30);
  assert.equal(adapter.writes, 1, 'at most one write in flight');
  adapter.gate = undefined;
  open();
  await first;
  await store.flush();
  assert.equal(adapter.writes, 2);
  assert.equal(readDoc(file).accounts['a@x']?.attempts, 2);
});

test('a failed save is reported, retried, and flush() rejects with it', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const adapter = new CountingAdapter(file);
  const errors: string[] = [];
  const store = await openJsonStore(file, {
    saveDelayMs: 5,
    adapter,
    onSaveError: (e) => errors.push(e.message),
  });
  defer(t, () => store.close());
  adapter.failNext = new Error('disk full');
  await store.upsert('a@x', { attempts: 1 });
  await until(() => errors.length > 0, 'the save error');
  assert.deepEqual(errors, ['disk full']);
  assert.equal(store.status().lastError, 'disk full');
  assert.equal(store.status().dirty, true);
  await store.flush(); // retried, succeeds
  assert.equal(store.status().lastError, undefined);
  adapter.failNext = new Error('EIO');
  await store.upsert('a@x', { attempts: 2 });
  adapter.failNext = new Error('EIO');
  await assert.rejects(store.flush(), /EIO/);
});

test('reload gives back the same records; .bak holds the previous version', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 10_000 });
  await store.upsert('a@x', {
    state: 'failed',
    attempts: 3,
    reason: 'quota',
    errors: [{ at: '2025-01-01T00:00:00Z', cause: 'EQUOTA', detail: 'NO [OVERQUOTA]' }],
    credentials: { kid: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' },
    pop3Uidls: { 'uidl-1': 1, 'uidl-\u00e9': 2 },
  });
  await store.upsert('b@x', {
    state: 'migrated',
    transfer: { messages: 3, bytes: 9, copied: 3, skipped: 0, failed: 0 },
  });
  await store.flush();
  const first = readFileSync(file, 'utf8');
  await store.upsert('c@x', {});
  await store.close();
  assert.equal(readFileSync(`${file}.bak`, 'utf8'), first);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(existsSync(`${file}.lock`), false, 'close releases the lock');

  const again = await openJsonStore(file);
  defer(t, () => again.close());
  assert.deepEqual(await again.list(), await store.list());
  await assert.rejects(async () => await store.upsert('d@x', {}), StoreClosedError);
  assert.equal(readDoc(file).version, 2);
  assert.equal(readFileSync(file, 'utf8').split('\n').length, 6, 'one account per line');
});

test('a missing file is an empty store; leftover temp files are removed at open', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'sub', 'state.json');
  const store = await openJsonStore(file);
  assert.equal(await store.count(), 0);
  await store.upsert('a@x', {});
  await store.close();
  writeFileSync(join(dir, 'sub', '.state.json.tmp-999999-deadbeef'), '{"half');
  writeFileSync(join(dir, 'sub', 'state.json.bak.tmp-999999-deadbeef'), '{');
  const again = await openJsonStore(file);
  defer(t, () => again.close());
  assert.equal(await again.count(), 1);
  assert.deepEqual(
    readdirSync(join(dir, 'sub'))
      .filter((n) => !n.startsWith('state.json.journal.'))
      .sort(),
    ['state.json', 'state.json.bak', 'state.json.lock'],
  );
});

test('a corrupt file is refused with a message naming the file and the backup', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const noBackup = await openJsonStore(file);
  await noBackup.upsert('a@x', {});
  await noBackup.close();
  rmSync(`${file}.bak`);
  writeFileSync(file, '{"version":1,');
  await assert.rejects(
    openJsonStore(file),
    /no backup \(.*state\.json\.bak\); fix the file by hand/,
  );
  writeFileSync(`${file}.bak`, '{"version":1,"accounts":{}}');
  for (const [content, detail] of [
    ['{"version":1,"accounts":{"a@x":{"addr', /invalid JSON/],
    ['', /empty file/],
    ['[]', /format version/],
    ['{"version":3,"accounts":{}}', /newer autoport/],
    ['{"version":1,"accounts":[]}', /"accounts" is not an object/],
    ['{"version":1,"accounts":{"a@x":{"address":"b@x","state":"unknown"}}}', /does not match/],
    ['{"version":1,"accounts":{"a@x":{"address":"a@x","state":"gone"}}}', /unknown state/],
    ['{"version":1,"accounts":{"A@x":{"address":"A@x","state":"unknown"}}}', /normalised/],
  ] as const) {
    writeFileSync(file, content);
    await assert.rejects(openJsonStore(file), (err: unknown) => {
      assert.ok(err instanceof StoreCorruptError, String(err));
      assert.match(err.message, detail);
      assert.ok(
        err.message.includes(file) && err.message.includes(`cp ${file}.bak ${file}`),
        err.message,
      );
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), content, 'a refused file is left as it was');
    assert.equal(existsSync(`${file}.lock`), false, 'a failed open releases the lock');
  }
});

test('a missing file next to a backup is refused rather than started empty', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  writeFileSync(`${file}.bak`, '{"version":1,"accounts":{}}');
  await assert.rejects(openJsonStore(file), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ESTOREMISSING');
    assert.match(err.message, new RegExp(`cp ${file}.bak ${file}`));
    return true;
  });
});
