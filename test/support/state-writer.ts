/**
 * Child process for the state store tests: owns a store so the parent can test locking
 * across processes and kill -9 in the middle of writes.
 *
 *   node --import tsx test/support/state-writer.ts hold <state>   open, print "ready", wait
 *   node --import tsx test/support/state-writer.ts exit <state>   open, print "ready", exit without close()
 *   node --import tsx test/support/state-writer.ts loop <state>   update accounts forever (see below)
 *
 * loop: every step sets `attempts` of the counter account and of GROUP accounts to the same
 * next value in one synchronous batch, so any saved snapshot must show them equal; the
 * value continues from what the store holds, so across kills it must never go down.
 */
import { resolve } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openJsonStore } from '../../src/core/state/json-store.js';

export const COUNTER = 'counter@test.example';
export const GROUP = 20;
export const FILLER = 2000;
export const groupAddress = (i: number): string => `group${i}@test.example`;

async function main(): Promise<void> {
  const [mode, path] = process.argv.slice(2);
  if (!path || !['hold', 'exit', 'loop'].includes(mode ?? '')) {
    process.stderr.write('usage: state-writer.ts hold|exit|loop <state.json>\n');
    process.exit(2);
  }
  const store = await openJsonStore(path, {
    saveDelayMs: 5,
    // compact every few hundred steps, so kills land in compactions too
    compactMinBytes: 256 << 10,
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  });
  if (mode === 'exit') {
    await store.upsert('exit@test.example', { state: 'captured' });
    process.stdout.write('ready\n');
    process.exit(0);
  }
  if (mode === 'hold') {
    process.stdout.write('ready\n');
    setInterval(() => undefined, 60_000);
    return;
  }
  // Filler makes each save take a few milliseconds, so kills land inside writes.
  if ((await store.count()) < FILLER) {
    for (let i = 0; i < FILLER; i++) {
      await store.upsert(`filler${i}@test.example`, {
        state: 'migrated',
        lastSeen: new Date().toISOString(),
        reason: 'x'.repeat(200),
      });
    }
    await store.flush();
  }
  let n = (await store.get(COUNTER))?.attempts ?? 0;
  process.stdout.write(`ready ${n}\n`);
  for (let step = 0; ; step++) {
    n++;
    for (let i = 0; i < GROUP; i++)
      await store.update(groupAddress(i), (r) => void (r.attempts = n));
    await store.upsert(COUNTER, { attempts: n, state: 'transferring' });
    if (step % 3 === 0) await store.flush();
    else await tick();
  }
}

// Run only as a script: the tests import the constants above.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
