/**
 * What an import carries beside the records: side files (under the store's side folder)
 * and side data (store.side: files, or rows in PostgreSQL). Each is compared with what the
 * target holds before anything is written, written, and read back.
 */
import type { StateStore } from '../state/types.js';
import { canonicalJson } from './dump-format.js';
import type { DumpEntry } from './reader.js';
import { readSideBytes, writeSideBytes } from './side-tree.js';

export type ExtraEntry = Exclude<DumpEntry, { kind: 'record' }>;

/** What the target holds under the entry's name now. */
export async function compareExtra(
  store: StateStore,
  side: string,
  e: ExtraEntry,
): Promise<'absent' | 'same' | 'differs'> {
  if (e.kind === 'side') {
    const have = await readSideBytes(side, e.file.path);
    return have === undefined ? 'absent' : have.equals(e.file.data) ? 'same' : 'differs';
  }
  const have = await store.side.read(e.entry.address, e.entry.key);
  if (have === undefined) return 'absent';
  return canonicalJson(have) === canonicalJson(e.entry.data) ? 'same' : 'differs';
}

export async function writeExtra(store: StateStore, side: string, e: ExtraEntry): Promise<void> {
  if (e.kind === 'side') await writeSideBytes(side, e.file);
  else await store.side.write(e.entry.address, e.entry.key, e.entry.data);
}

/** Unique per entry of a dump. */
export function entryKey(e: DumpEntry): string {
  if (e.kind === 'side') return `side:${e.file.path}`;
  if (e.kind === 'sideData') return `data:${e.entry.address}\u0000${e.entry.key}`;
  return `record:${e.record.address}`;
}

/** The entry in a message. */
export function entryLabel(e: DumpEntry): string {
  if (e.kind === 'side') return `side file ${e.file.path}`;
  if (e.kind === 'sideData') return `side data "${e.entry.key}" of ${e.entry.address}`;
  return e.record.address;
}
