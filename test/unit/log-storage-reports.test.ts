/**
 * The gateway's log tells when saving the state or writing a log file fails, and when it
 * works again (storage-reports.ts, wired in service.ts), as structured lines rather than
 * process warnings on stderr.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventLogReports, storeReports } from '../../src/core/gateway/storage-reports.js';
import { createLogger, memorySink } from '../../src/core/log/index.js';
import { openEventLog } from '../../src/core/state/event-log.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { StoreFileAdapter, type StoreData } from '../../src/core/state/store-file.js';
import { defer, tempDir } from '../support/state-helpers.js';

class FaultyDisk extends StoreFileAdapter {
  fault = false;
  override async write(data: StoreData): Promise<void> {
    if (this.fault)
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    await super.write(data);
  }
}

function logged(sink: ReturnType<typeof memorySink>): Array<Record<string, unknown>> {
  return sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('saving the state: the failure and the recovery are log lines', async (t) => {
  const file = join(tempDir(t), 'state.json');
  const disk = new FaultyDisk(file);
  const sink = memorySink();
  let failedCalls = 0;
  const store = await openJsonStore(file, {
    saveDelayMs: 5,
    adapter: disk,
    ...storeReports(createLogger({ sink, format: 'json' }), () => failedCalls++),
  });
  defer(t, () => store.close());
  disk.fault = true;
  await store.upsert('a@x', { attempts: 1 });
  await store.flush().catch(() => undefined);
  for (let waited = 0; store.status().failures < 2; waited += 50) {
    assert.ok(waited < 10_000, 'the store stopped retrying');
    await sleep(50);
  }
  disk.fault = false;
  await store.flush();
  const lines = logged(sink);
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      ['error', 'saving the state failed; retrying'],
      ['info', 'saving the state works again'],
    ],
  );
  assert.equal((lines[0]!.err as { code: string }).code, 'ENOSPC');
  assert.ok((lines[1]!.failures as number) >= 2);
  assert.equal(typeof lines[1]!.since, 'string');
  assert.equal(failedCalls, 1, 'the metrics hook, once per episode');
});

test('an event log that cannot be written says so in the log, naming the file', async () => {
  const sink = memorySink();
  const log = await openEventLog('/dev/full', {
    flushDelayMs: 1,
    ...eventLogReports(createLogger({ sink, format: 'json' }), '/dev/full'),
  });
  log.append({ type: 'x' });
  await log.flush().catch(() => undefined);
  await log.close().catch(() => undefined);
  const lines = logged(sink);
  assert.equal(lines.length, 1, sink.text());
  assert.equal(lines[0]!.level, 'error');
  assert.equal(lines[0]!.msg, 'writing a log file failed; retrying');
  assert.equal(lines[0]!.file, '/dev/full');
});
