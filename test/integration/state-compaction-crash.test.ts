/**
 * A crash at each step of a compaction (compaction.ts) loses nothing that was acknowledged:
 * a child process acknowledges changes before and during a compaction and kills itself
 * with SIGKILL at one step; the store must then open with every acknowledged change, no
 * leftover temp file, and the files of the interrupted compaction sorted out.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CompactionStep } from '../../src/core/state/compaction.js';
import { openJsonStore } from '../../src/core/state/json-store.js';
import { ACCOUNTS } from '../support/state-compactor.js';
import { readStateSync } from '../support/state-file.js';
import { tempDir } from '../support/state-helpers.js';

const CHILD = new URL('../support/state-compactor.ts', import.meta.url).pathname;

function runChild(
  file: string,
  step: CompactionStep,
): Promise<{ out: string; signal: string | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, step], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${err}`));
      else resolve({ out, signal });
    });
  });
}

const STEPS: { step: CompactionStep; onDisk: (names: string[]) => void }[] = [
  {
    step: 'rotated',
    onDisk: (n) => assert.equal(n.filter((x) => x.includes('.journal.')).length, 2),
  },
  {
    step: 'snapshot-synced',
    onDisk: (n) =>
      assert.ok(
        n.some((x) => x.includes('.tmp-')),
        `a temp snapshot: ${n}`,
      ),
  },
  {
    step: 'renamed',
    onDisk: (n) => assert.equal(n.filter((x) => x.includes('.journal.')).length, 2),
  },
  {
    step: 'done',
    onDisk: (n) => assert.equal(n.filter((x) => x.includes('.journal.')).length, 1),
  },
];

for (const { step, onDisk } of STEPS) {
  test(`kill -9 at compaction step "${step}" loses nothing`, { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'state.json');
    const { out } = await runChild(file, step);
    assert.match(out, new RegExp(`^killed at ${step}$`, 'm'));
    const acked = new Map<string, number>();
    for (const m of out.matchAll(/^acked (\S+) (\d+)$/gm)) acked.set(m[1]!, Number(m[2]));
    assert.equal(acked.get('late@test.example'), 1, 'a change acknowledged mid-compaction');
    onDisk(readdirSync(dir));

    const store = await openJsonStore(file, { onWarning: () => {} });
    try {
      for (const [address, attempts] of acked) {
        if (address === 'removed@test.example') continue;
        assert.equal((await store.get(address))?.attempts, attempts, `${address} after the crash`);
      }
      assert.equal(await store.get('removed@test.example'), undefined, 'the removal holds');
      assert.equal(await store.count(), ACCOUNTS + 1);
      const names = readdirSync(dir);
      assert.deepEqual(
        names.filter((n) => n.includes('.tmp-')),
        [],
        'temp files removed at open',
      );
      const first = readStateSync(file).journal ?? 0;
      const gens = names
        .filter((n) => n.includes('.journal.'))
        .map((n) => Number(n.split('.').pop()));
      assert.ok(
        gens.every((g) => g >= first),
        `journals older than the snapshot's (${first}) removed: ${gens.join()}`,
      );
    } finally {
      await store.close();
    }
    const again = await openJsonStore(file, { readOnly: true });
    assert.equal(await again.count(), ACCOUNTS + 1, 'and after the next compaction too');
    await again.close();
    assert.equal(
      readdirSync(dir).filter((n) => n.includes('.journal.')).length,
      1,
      'a clean close leaves one journal',
    );
  });
}
