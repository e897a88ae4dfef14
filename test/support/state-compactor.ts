/**
 * Child process for the compaction crash test: kills itself with SIGKILL at one step of a
 * compaction, after acknowledging changes before and during it.
 *
 *   node --import tsx test/support/state-compactor.ts <state> <step>
 *
 * Prints "acked <address> <attempts>" for every change whose flush() resolved: those must
 * all be there after the crash.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompactionStep } from '../../src/core/state/compaction.js';
import { openJsonStore, type JsonStore } from '../../src/core/state/json-store.js';
import { StoreFileAdapter } from '../../src/core/state/store-file.js';

export const ACCOUNTS = 300;

async function main(): Promise<void> {
  const [path, target] = process.argv.slice(2) as [string, CompactionStep];
  const holder: { store?: JsonStore } = {};
  const ack = async (address: string, attempts: number): Promise<void> => {
    await holder.store!.upsert(address, { attempts, reason: 'r'.repeat(100) });
    await holder.store!.flush();
    process.stdout.write(`acked ${address} ${attempts}\n`);
  };
  const adapter = new StoreFileAdapter(path, {
    compactionStep: async (step) => {
      // changes acknowledged while the compaction runs go to the new journal
      if (step === 'rotated') await ack('late@test.example', 1);
      if (step === 'snapshot-synced') await ack('u0@test.example', 2);
      if (step === target) {
        process.stdout.write(`killed at ${step}\n`, () => process.kill(process.pid, 'SIGKILL'));
        await new Promise(() => undefined);
      }
    },
  });
  holder.store = await openJsonStore(path, {
    adapter,
    saveDelayMs: 5,
    compactMinBytes: Infinity,
  });
  for (let i = 0; i < ACCOUNTS; i++) await ack(`u${i}@test.example`, 1);
  await ack('removed@test.example', 1);
  await holder.store.remove('removed@test.example');
  await holder.store.flush();
  await holder.store.compact();
  await holder.store.close();
  process.stdout.write('done\n');
}

// Run only as a script: the test imports the constants above.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
