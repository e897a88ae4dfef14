import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventLogFiles, openEventLog, readEventLog } from '../../src/core/state/event-log.js';
import { defer, tempDir } from '../support/state-helpers.js';

type Ev = { ts?: string; seq: number; pad?: string };

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

test('append is buffered, adds ts, and is written promptly without flush', async (t) => {
  const path = join(tempDir(t), 'logs', 'sessions.jsonl');
  const log = await openEventLog<Ev>(path, { flushDelayMs: 10 });
  defer(t, () => log.close());
  log.append({ seq: 1 });
  log.append({ seq: 2, ts: '2025-01-01T00:00:00.000Z' });
  assert.equal(statSync(path).size, 0, 'append does not write synchronously');
  await sleep(100);
  const lines = readFileSync(path, 'utf8').split('\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[2], '');
  const first = JSON.parse(lines[0] ?? '') as Ev;
  assert.match(first.ts ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(lines[0]?.startsWith('{"ts":'), 'ts comes first for people reading the file');
  assert.deepEqual(JSON.parse(lines[1] ?? ''), { seq: 2, ts: '2025-01-01T00:00:00.000Z' });
});

test('flush and close write everything; append after close throws', async (t) => {
  const path = join(tempDir(t), 'x.jsonl');
  const log = await openEventLog<Ev>(path, { flushDelayMs: 60_000 });
  for (let i = 0; i < 1000; i++) log.append({ seq: i });
  await log.flush();
  assert.equal(readFileSync(path, 'utf8').split('\n').length, 1001);
  log.append({ seq: 1000 });
  await log.close();
  assert.throws(() => log.append({ seq: 1001 }), /closed/);
  const seqs = (await collect(readEventLog<Ev>(path))).map((e) => e.seq);
  assert.deepEqual(
    seqs,
    Array.from({ length: 1001 }, (_, i) => i),
  );
});

test('rotates by size, keeps `keep` files, reads rotated files oldest first', async (t) => {
  const path = join(tempDir(t), 'relay.jsonl');
  const log = await openEventLog<Ev>(path, { maxBytes: 2000, keep: 2, flushDelayMs: 1 });
  defer(t, () => log.close());
  for (let i = 0; i < 200; i++) {
    log.append({ seq: i, pad: 'p'.repeat(40) });
    if (i % 10 === 9) await log.flush();
  }
  await log.flush();
  assert.deepEqual(await eventLogFiles(path), [`${path}.2`, `${path}.1`, path]);
  assert.equal(existsSync(`${path}.3`), false);
  for (const f of await eventLogFiles(path)) assert.ok(statSync(f).size <= 2000, `${f} too big`);

  const all = (await collect(readEventLog<Ev>(path, { includeRotated: true }))).map((e) => e.seq);
  assert.equal(all.at(-1), 199);
  assert.deepEqual(
    all,
    Array.from({ length: all.length }, (_, i) => 200 - all.length + i),
    'contiguous, in order',
  );
  const current = (await collect(readEventLog<Ev>(path))).map((e) => e.seq);
  assert.ok(current.length < all.length && current.at(-1) === 199);
});

test('keep: 0 truncates on rotation', async (t) => {
  const path = join(tempDir(t), 'x.jsonl');
  const log = await openEventLog<Ev>(path, { maxBytes: 500, keep: 0 });
  defer(t, () => log.close());
  for (let i = 0; i < 50; i++) {
    log.append({ seq: i, pad: 'q'.repeat(30) });
    await log.flush();
  }
  assert.deepEqual(await eventLogFiles(path), [path]);
  assert.ok(statSync(path).size <= 500);
});

test('a torn last line is skipped by readers and closed off by the next writer', async (t) => {
  const path = join(tempDir(t), 'ledger.jsonl');
  writeFileSync(path, '{"seq":1}\n{"seq":2}\n{"seq":3,"pa');
  const skipped: { line: number; torn: boolean }[] = [];
  const read = await collect(
    readEventLog<Ev>(path, { onSkip: ({ line, torn }) => skipped.push({ line, torn }) }),
  );
  assert.deepEqual(
    read.map((e) => e.seq),
    [1, 2],
  );
  assert.deepEqual(skipped, [{ line: 3, torn: true }]);

  const log = await openEventLog<Ev>(path);
  log.append({ seq: 4, ts: 't' });
  await log.close();
  skipped.length = 0;
  const after = await collect(
    readEventLog<Ev>(path, { onSkip: ({ line, torn }) => skipped.push({ line, torn }) }),
  );
  assert.deepEqual(
    after.map((e) => e.seq),
    [1, 2, 4],
    'the new line is intact',
  );
  assert.deepEqual(skipped, [{ line: 3, torn: false }]);
});

test('unparsable lines in the middle are skipped; missing logs read as empty', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'x.jsonl');
  writeFileSync(path, '{"seq":1}\nnot json\n\n{"seq":2}\n');
  assert.deepEqual(
    (await collect(readEventLog<Ev>(path))).map((e) => e.seq),
    [1, 2],
  );
  assert.deepEqual(
    await collect(readEventLog(join(dir, 'none.jsonl'), { includeRotated: true })),
    [],
  );
});

test('two writers appending to one file never interleave lines', async (t) => {
  const path = join(tempDir(t), 'shared.jsonl');
  const a = await openEventLog<Ev>(path, { flushDelayMs: 0, batchBytes: 512 });
  const b = await openEventLog<Ev>(path, { flushDelayMs: 0, batchBytes: 512 });
  for (let i = 0; i < 2000; i++) {
    a.append({ seq: i, pad: 'a'.repeat(i % 300) });
    b.append({ seq: i, pad: 'b'.repeat(i % 300) });
    if (i % 50 === 0) await sleep(0);
  }
  await Promise.all([a.close(), b.close()]);
  let bad = 0;
  const seen = await collect(readEventLog<Ev>(path, { onSkip: () => bad++ }));
  assert.equal(bad, 0);
  assert.equal(seen.length, 4000);
  for (const e of seen) assert.ok(/^(a*|b*)$/.test(e.pad ?? ''), 'a line holds one writer only');
});
