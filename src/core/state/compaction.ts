/**
 * Compaction: fold the journal into a new snapshot in the background, while changes go on.
 *
 * Files: the snapshot `state.json`, whose header names journal generation H, and the
 * journals `state.json.journal.<n>`. Loading reads the snapshot, then replays every journal
 * of generation H or later in order (journal.ts); each line is a whole record, so a line the
 * snapshot already contains changes nothing. How a crash at any moment loses nothing that
 * was acknowledged (flush() resolved), step by step:
 *
 *  1. Rotate: wait for the append in flight, create journal G+1 and fsync the directory
 *     (its name must be durable before a line in it is acknowledged); from here on every
 *     append goes to G+1. Crash: the old snapshot replays G then G+1, in order.
 *  2. Take the snapshot: the list of records, synchronously right after the switch. Records
 *     are frozen (records.ts), so the list stays consistent while changes go on. It holds
 *     every change acknowledged in G; a change still on its way goes to G+1, and replaying
 *     it over a snapshot that holds it too is harmless.
 *  3. Stream the snapshot to a temp file, header naming G+1, one record at a time, and
 *     fsync it. Crash: the temp file is removed at the next open; nothing else changed.
 *  4. Keep the old snapshot as `.bak` (a hard link), rename the temp file over the
 *     snapshot, fsync the directory. Crash before the rename: as in 3; after it: the new
 *     snapshot replays G+1, which exists since step 1.
 *  5. Remove the journals older than G+1 and fsync the directory. Crash before: the next
 *     open removes them (older than the snapshot's H), never replays them.
 *
 * A reader without the lock (`accounts list` while the proxy runs) can open the old
 * snapshot and then find journal G gone (step 5): it starts over with the new snapshot
 * (store-file.ts). A journal it opened before step 5 stays readable after the unlink.
 */
import type { AccountRecord } from './types.js';

export type CompactionStep = 'rotated' | 'snapshot-synced' | 'renamed' | 'done';

export interface CompactionTarget {
  /** step 1: returns the new generation */
  rotate(): Promise<number>;
  /** steps 3 and 4; `beforeRename` runs between them. Returns the snapshot's bytes. */
  writeSnapshot(
    records: readonly AccountRecord[],
    gen: number,
    beforeRename: () => Promise<void>,
  ): Promise<number>;
  /** step 5 */
  removeJournalsBefore(gen: number): Promise<void>;
}

/** Tests crash the process at a step through this hook. */
export type StepHook = (step: CompactionStep) => void | Promise<void>;

export async function compact(
  target: CompactionTarget,
  accounts: ReadonlyMap<string, AccountRecord>,
  step: StepHook = () => undefined,
): Promise<{ gen: number; bytes: number }> {
  const gen = await target.rotate();
  const records = Array.from(accounts.values()); // step 2: no await since the switch
  await step('rotated');
  const bytes = await target.writeSnapshot(records, gen, async () => step('snapshot-synced'));
  await step('renamed');
  await target.removeJournalsBefore(gen);
  await step('done');
  return { gen, bytes };
}
