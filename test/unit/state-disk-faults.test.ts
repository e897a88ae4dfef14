/**
 * The pieces that write beside the state when its disk fails (issue #10 item 6), each on
 * its own: the logger whose stdout is a full disk, the event logs (reported once per
 * episode, rotation that fails, nothing lost), the relay log after close, and the store's
 * flush() and episode reporting. The same faults against the real gateway on a real
 * tmpfs are in test/integration/state-disk-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { relayLogOf, type RelayLogEntry } from '../../src/core/smtp/relay-log.js';
import { StateError } from '../../src/core/state/errors.js';
import { openEventLog, readEventLog } from '../../src/core/state/event-log.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { StoreFileAdapter, type StoreData } from '../../src/core/state/store-file.js';
import { readStateSync } from '../support/state-file.js';
import { defer, tempDir } from '../support/state-helpers.js';

const LOGGER = new URL('../../src/core/log/logger.ts', import.meta.url).pathname;
const EVENT_LOG = new URL('../../src/core/state/event-log.ts', import.meta.url).pathname;

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    errno: -28,
  });
}

/** The real file adapter, failing every write while `fault` is set. */
class FaultyDisk extends StoreFileAdapter {
  fault: (() => Error) | undefined;
  override async write(data: StoreData): Promise<void> {
    if (this.fault) throw this.fault();
    await super.write(data);
  }
}

test('a logger whose stdout is a full disk does not kill the process', () => {
  // /dev/full fails every write with ENOSPC, for any user, like stdout redirected to a
  // file on the full state disk. The stream reports it as an 'error' event.
  const out = openSync('/dev/full', 'w');
  try {
    const script =
      `const { createLogger } = await import(${JSON.stringify(LOGGER)});` +
      `const log = createLogger({ sink: process.stdout, format: 'json' });` +
      `for (let i = 0; i < 3; i++) log.error('saving the state failed', { i });` +
      `setTimeout(() => { log.info('still here'); process.stderr.write('alive\\n'); }, 100);`;
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { stdio: ['ignore', out, 'pipe'], encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^alive$/m);
  } finally {
    closeSync(out);
  }
});

test('warnings about a failing log do not kill the process when stderr is full too', () => {
  const err = openSync('/dev/full', 'w');
  try {
    // the event log's default reporter is process.emitWarning, which writes to stderr
    const script =
      `const { createLogger } = await import(${JSON.stringify(LOGGER)});` +
      `const { openEventLog } = await import(${JSON.stringify(EVENT_LOG)});` +
      `createLogger({ sink: { write: () => undefined } });` +
      `const log = await openEventLog('/dev/full', { flushDelayMs: 1 });` +
      `log.append({ seq: 1 });` +
      `process.emitWarning('and one more');` +
      // the log retries forever: leave once the warnings had their chance to kill us
      `setTimeout(() => process.stdout.write('alive\\n', () => process.exit(0)), 300);`;
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', err],
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 0, `exit ${r.status}`);
    assert.match(r.stdout, /^alive$/m);
  } finally {
    closeSync(err);
  }
});

test('an event log that cannot write reports once per episode and keeps retrying', async (t) => {
  const errors: string[] = [];
  const log = await openEventLog<{ seq: number }>('/dev/full', {
    flushDelayMs: 5,
    onError: (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message),
  });
  defer(t, () => log.close().catch(() => undefined));
  // three retries at one a second, more lines appended meanwhile
  for (let i = 0; i < 6; i++) {
    log.append({ seq: i });
    await sleep(450);
  }
  assert.deepEqual(errors, ['ENOSPC'], 'one report for the whole episode');
  await assert.rejects(log.flush(), /ENOSPC/, 'flush() still says the lines are not written');
});

test('a rotation that fails keeps the log writable and loses no line', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'sessions.jsonl');
  // rename(2) onto a non-empty directory fails (EISDIR/ENOTEMPTY) for any user
  mkdirSync(`${path}.1`);
  writeFileSync(join(`${path}.1`, 'in-the-way'), '');
  const errors: string[] = [];
  let recovered = 0;
  const log = await openEventLog<{ seq: number; pad: string }>(path, {
    maxBytes: 300,
    keep: 1,
    flushDelayMs: 60_000,
    onError: (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message),
    onRecovered: () => recovered++,
  });
  defer(t, () => log.close());
  const pad = 'x'.repeat(100);
  for (let i = 0; i < 3; i++) log.append({ seq: i, pad });
  await log.flush();
  for (let i = 3; i < 6; i++) log.append({ seq: i, pad });
  await log.flush(); // would rotate here: the rename fails, the file grows on
  assert.equal(errors.length, 1, `the failed rotation is reported: ${errors.join()}`);
  assert.match(errors[0] ?? '', /^E(ISDIR|NOTEMPTY|EXIST)$/);
  rmSync(`${path}.1`, { recursive: true });
  log.append({ seq: 6, pad });
  await log.flush(); // the way is clear: this batch rotates
  const seqs = async (file: string): Promise<number[]> => {
    const out: number[] = [];
    for await (const e of readEventLog<{ seq: number }>(file)) out.push(e.seq);
    return out;
  };
  assert.deepEqual(await seqs(`${path}.1`), [0, 1, 2, 3, 4, 5], 'nothing lost, rotated whole');
  assert.deepEqual(await seqs(path), [6]);
  assert.equal(errors.length, 1);
  assert.equal(recovered, 0, 'appending never failed, only the rotation');
});

test('recording a relayed message never throws, even after the log closed', async (t) => {
  const log = await openEventLog<RelayLogEntry>(join(tempDir(t), 'smtp-relay.jsonl'));
  const relay = relayLogOf(log);
  await relay.close();
  const entry = { time: new Date().toISOString(), session: 's1' } as unknown as RelayLogEntry;
  // called after the backend said 250: an exception here would make the client resend
  assert.doesNotThrow(() => relay.record(entry));
});

test('closing the relay log on a full disk does not stop the shutdown', async () => {
  const relay = relayLogOf(await openEventLog<RelayLogEntry>('/dev/full', { onError: () => {} }));
  relay.record({ time: new Date().toISOString(), session: 's1' } as unknown as RelayLogEntry);
  await assert.rejects(relay.flush(), /ENOSPC/, 'flush() still tells');
  await relay.close();
});

test('a store that cannot save: flush() rejects with a StateError, reported once per episode', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const disk = new FaultyDisk(file);
  const failed: string[] = [];
  const recovered: Array<{ failures: number }> = [];
  const store = await openJsonStore(file, {
    saveDelayMs: 5,
    adapter: disk,
    onSaveError: (e) => failed.push((e as NodeJS.ErrnoException).code ?? e.message),
    onSaveRecovered: (i) => recovered.push({ failures: i.failures }),
  });
  defer(t, () => store.close());
  disk.fault = enospc;
  await store.upsert('a@x', { attempts: 1 });
  const err = await store.flush().then(
    () => assert.fail('flush() resolved while nothing could be written'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof StateError, String(err));
  assert.equal(err.code, 'ESTOREUNAVAILABLE');
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.match(err.message, /Free space/);
  // the background retries, one a second
  for (let waited = 0; store.status().failures < 3; waited += 50) {
    assert.ok(waited < 10_000, `retries stopped at ${store.status().failures} failures`);
    await sleep(50);
  }
  const during = store.status();
  assert.ok(during.failures >= 3, `every failed save is counted: ${during.failures}`);
  assert.equal(typeof during.failingSince, 'string');
  assert.deepEqual(failed, ['ENOSPC'], 'reported once, not once per retry');

  disk.fault = undefined;
  await store.flush();
  const after = store.status();
  assert.equal(after.lastError, undefined);
  assert.equal(after.failingSince, undefined);
  assert.deepEqual(recovered, [{ failures: after.failures }], 'the end of the episode is told');
  assert.equal(readStateSync(file).accounts['a@x']?.attempts, 1);

  // a second episode is reported again
  disk.fault = () => Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
  await store.upsert('a@x', { attempts: 2 });
  await assert.rejects(store.flush(), /Make its folder writable/);
  assert.deepEqual(failed, ['ENOSPC', 'EROFS']);
  disk.fault = undefined;
});
