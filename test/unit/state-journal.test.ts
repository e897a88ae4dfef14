/**
 * The JSON store's journal (issue #13 item 1): a change costs one fsynced append, concurrent
 * flushes share it, a torn batch is ignored, damage is refused, old files load, compaction
 * folds the journal in, readers without the lock see it, and the store refuses to open past
 * its size limit.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OperatorError } from '../../src/core/errors.js';
import { JournalCorruptError, StateError } from '../../src/core/state/errors.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { StoreFileAdapter, type StoreData } from '../../src/core/state/store-file.js';
import { readStateSync } from '../support/state-file.js';
import { defer, tempDir } from '../support/state-helpers.js';

const journals = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.startsWith('state.json.journal.'))
    .sort();

const journalLines = (dir: string): string[] =>
  journals(dir).flatMap((n) =>
    readFileSync(join(dir, n), 'utf8')
      .split('\n')
      .filter((l) => l !== ''),
  );

/** The real adapter, counting writes and holding the next one while `gate` is set. */
class GatedAdapter extends StoreFileAdapter {
  writes: number[] = [];
  gate: Promise<void> | undefined;
  override async write(data: StoreData): Promise<void> {
    this.writes.push(data.changes.size);
    const p = super.write(data); // the changes are taken here, synchronously
    if (this.gate) await this.gate;
    await p;
  }
}

test('flush() makes a change durable with one journal append, not a new snapshot', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  defer(t, () => store.close());
  assert.equal(existsSync(file), false, 'an owner that changed nothing wrote nothing');
  await store.upsert('a@x', { state: 'captured', attempts: 1 });
  await store.flush();
  const snapshot = readFileSync(file, 'utf8');
  assert.match(snapshot, /"version"/, 'the first change made an empty snapshot, then appended');
  assert.deepEqual(
    journalLines(dir).map((l) => JSON.parse(l) as { address?: string; commit?: number }),
    [{ ...(await store.get('a@x')) }, { commit: 1 }],
  );
  // a reader without the lock, while the owner runs, sees it
  const reader = await openJsonStore(file, { readOnly: true });
  defer(t, () => reader.close());
  assert.equal((await reader.get('a@x'))?.attempts, 1);
  await store.remove('a@x');
  await store.flush();
  const again = await openJsonStore(file, { readOnly: true });
  defer(t, () => again.close());
  assert.equal(await again.get('a@x'), undefined, 'a removal is journaled too');
});

test('concurrent flushes share one append; a flush does not wait for later changes', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const adapter = new GatedAdapter(file);
  const store = await openJsonStore(file, { saveDelayMs: 60_000, adapter });
  defer(t, () => store.close());
  let open!: () => void;
  adapter.gate = new Promise((r) => (open = r));
  await store.upsert('first@x', {});
  const first = store.flush(); // held in its write
  const storm = Array.from({ length: 50 }, async (_, i) => {
    await store.upsert(`u${i}@x`, { state: 'captured' });
    await store.flush();
  });
  await sleep(20);
  assert.deepEqual(adapter.writes, [1], 'one write in flight, the others wait for it');
  adapter.gate = undefined;
  open();
  await Promise.all([first, ...storm]);
  assert.deepEqual(adapter.writes, [1, 50], 'the 50 share the next write');
  assert.equal(Object.keys(readStateSync(file).accounts).length, 51);

  // a flush returns once its own changes are durable, even if others keep changing
  await store.upsert('mine@x', {});
  const mine = store.flush(); // its write starts now, ungated
  let release!: () => void;
  adapter.gate = new Promise((r) => (release = r)); // the next write hangs until released
  await store.upsert('later@x', {}); // made after the call: not waited for
  void store.flush();
  await mine;
  assert.ok(readStateSync(file).accounts['mine@x']);
  assert.equal(readStateSync(file).accounts['later@x'], undefined, 'still held');
  adapter.gate = undefined;
  release();
});

test('a torn last batch is ignored and cut before the next append', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  const a = await store.upsert('a@x', { attempts: 1 });
  await store.close();
  // what a writer killed in the middle of its second batch leaves behind
  const journal = join(dir, journals(dir)[0] as string);
  const line = (attempts: number): string => `${JSON.stringify({ ...a, attempts })}\n`;
  appendFileSync(journal, `${line(2)}{"commit":1}\n${line(3)}{"comm`);
  const good = readFileSync(journal, 'utf8').indexOf(line(3));

  const reopened = await openJsonStore(file, { saveDelayMs: 60_000 });
  defer(t, () => reopened.close());
  assert.equal(
    (await reopened.get('a@x'))?.attempts,
    2,
    'the committed batch counts, the torn one not',
  );
  await reopened.upsert('b@x', {});
  await reopened.flush();
  const text = readFileSync(journal, 'utf8');
  assert.equal(text.indexOf(line(3)), -1, 'the torn batch was cut before the append');
  assert.equal(text.slice(good, good + 14), '{"address":"b@');
  const reader = await openJsonStore(file, { readOnly: true });
  defer(t, () => reader.close());
  assert.deepEqual(
    (await reader.list()).map((r) => [r.address, r.attempts]),
    [
      ['a@x', 2],
      ['b@x', undefined],
    ],
  );
});

test('damage inside a committed batch is refused with what to do', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 60_000 });
  await store.upsert('a@x', {});
  await store.flush();
  const journal = join(dir, journals(dir)[0] as string);
  const good = statSync(journal).size;
  appendFileSync(journal, `{"address":"b@x","sta\n{"commit":1}\n`);
  await assert.rejects(openJsonStore(file, { readOnly: true }), (err: unknown) => {
    assert.ok(err instanceof JournalCorruptError, String(err));
    assert.equal(err.code, 'ESTORECORRUPT');
    assert.ok(err.message.includes(`truncate -s ${good} ${journal}`), err.message);
    return true;
  });
  writeFileSync(journal, readFileSync(journal).subarray(0, good));
  const reader = await openJsonStore(file, { readOnly: true });
  assert.equal(await reader.count(), 1);
  await reader.close();
  await store.close();
});

test('version 1 files load, laid out by line or as one document, and become version 2', async (t) => {
  const dir = tempDir(t);
  const rec = (a: string): string =>
    JSON.stringify({ address: a, state: 'migrated', updatedAt: 'x', errors: [], folders: {} });
  const byLine = join(dir, 'lines.json');
  // what autoport wrote before the journal
  writeFileSync(
    byLine,
    `{"version":1,"accounts":{\n"a@x":${rec('a@x')},\n"b\u00e9@x":${rec('b\u00e9@x')}\n}}\n`,
  );
  const whole = join(dir, 'whole.json');
  writeFileSync(whole, `{"version":1,"accounts":{"c@x":${rec('c@x')}}}`);
  for (const [file, want] of [
    [byLine, ['a@x', 'b\u00e9@x']],
    [whole, ['c@x']],
  ] as const) {
    const store = await openJsonStore(file, { saveDelayMs: 60_000 });
    assert.deepEqual(
      (await store.list()).map((r) => r.address),
      want,
    );
    await store.upsert('new@x', {});
    await store.flush();
    const reader = await openJsonStore(file, { readOnly: true });
    assert.equal(
      await reader.count(),
      want.length + 1,
      'the journal replays over a version 1 file',
    );
    await reader.close();
    await store.close(); // compacts
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; journal: number };
    assert.equal(doc.version, 2);
    assert.equal(typeof doc.journal, 'number');
    const again = await openJsonStore(file, { readOnly: true });
    assert.deepEqual(
      (await again.list()).map((r) => r.address),
      [...want, 'new@x'],
    );
    await again.close();
  }
});

test('past its threshold the journal is compacted in the background', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 1, compactMinBytes: 2000 });
  defer(t, () => store.close());
  const before = journals(dir);
  for (let i = 0; store.status().compactions === 0; i++) {
    assert.ok(i < 2000, 'no compaction after 2000 changes');
    await store.upsert(`u${i % 7}@x`, { attempts: i, reason: 'x'.repeat(200) });
    await store.flush();
  }
  await store.flush();
  while (store.status().compacting) await sleep(5);
  const after = journals(dir);
  assert.equal(after.length, 1);
  assert.notDeepEqual(after, before, 'the old journal is gone, a new generation took over');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    journal: number;
    accounts: Record<string, unknown>;
  };
  assert.equal(`state.json.journal.${doc.journal}`, after[0]);
  assert.equal(Object.keys(doc.accounts).length, 7, 'the snapshot holds the journal');
  assert.ok(store.status().journalBytes < 2000);
});

test('a reader without the lock never sees a half state while compactions run', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const store = await openJsonStore(file, { saveDelayMs: 1, compactMinBytes: 1 });
  defer(t, () => store.close());
  const GROUP = 10;
  let stop = false;
  const writer = (async () => {
    for (let n = 1; !stop; n++) {
      for (let i = 0; i < GROUP; i++) await store.upsert(`g${i}@x`, { attempts: n });
      await store.flush();
    }
  })();
  let reads = 0;
  try {
    while (store.status().compactions < 20 || reads < 20) {
      const reader = await openJsonStore(file, { readOnly: true });
      const values = new Set((await reader.list()).map((r) => r.attempts));
      await reader.close();
      assert.ok(values.size <= 1, `a mixed state: ${[...values].join(',')}`);
      reads++;
    }
  } finally {
    stop = true;
    await writer;
  }
  assert.ok(reads >= 20);
});

test('the owner refuses a snapshot whose journal is missing', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file);
  await store.upsert('a@x', {});
  await store.close();
  const [name] = journals(dir);
  unlinkSync(join(dir, name as string));
  await assert.rejects(openJsonStore(file), (err: unknown) => {
    assert.ok(err instanceof StateError);
    assert.equal(err.code, 'ESTOREMISSING');
    assert.match(err.message, /touch /);
    return true;
  });
});

test('more accounts than the limit: refuses to start and says to move to PostgreSQL', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'state.json');
  const store = await openJsonStore(file);
  for (let i = 0; i < 4; i++) await store.upsert(`u${i}@x`, {});
  await store.close(); // all four in the snapshot
  const small = (): StoreFileAdapter => new StoreFileAdapter(file, { maxAccounts: 3 });
  const refused = (err: unknown): boolean => {
    assert.ok(err instanceof OperatorError, String(err));
    assert.equal(err.code, 'ESTORETOOLARGE');
    assert.match(err.message, /more than 3 accounts/);
    assert.match(err.hint, /PostgreSQL/);
    return true;
  };
  await assert.rejects(openJsonStore(file, { adapter: small() }), refused);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.lock')),
    [],
    'the lock is released',
  );
  // the same when the accounts come from the journal
  const three = await openJsonStore(file, { adapter: new StoreFileAdapter(file) });
  await three.remove('u3@x');
  await three.close();
  const grow = await openJsonStore(file, {
    adapter: new StoreFileAdapter(file, { maxAccounts: 4 }),
  });
  await grow.upsert('u3@x', {});
  await grow.upsert('u4@x', {});
  await grow.flush();
  await assert.rejects(openJsonStore(file, { readOnly: true, adapter: small() }), refused);
  await grow.close();
});
