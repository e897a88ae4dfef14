/**
 * `autoport state import`: a dump (dump-format.ts) into the configured store.
 *
 * Verify before commit, in three reads of the dump:
 * 1. check it whole (every line, the counts and digests of its end line) and the target:
 *    empty (or --merge), room for the accounts, no record or side file that differs from
 *    the dump's. A dump cut short or damaged, or a conflict, changes nothing.
 * 2. write what the target lacks: each record whole and exactly (insertMany, a batch in
 *    one transaction where the store has it, else upsert of a new record, which keeps its
 *    updatedAt; credentials stay sealed as they are), each side file and side data
 *    entry (extras.ts).
 * 3. read every record, side file and side data entry back and compare with the dump.
 * A failure in 2 (the database went away, the disk is full) leaves part written; the same
 * import with --merge then finishes it, skipping what is already there and identical.
 *
 * The records' uidMap paths start with the side folder's name; when the target's is named
 * otherwise they are re-based onto it, the one change made to a record.
 */
import { basename, sep } from 'node:path';
import { OperatorError } from '../errors.js';
import { sideDataDir } from '../state/side-files.js';
import { isStateUrl } from '../state/state-url.js';
import { MAX_JSON_ACCOUNTS } from '../state/store-limits.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import { canonicalJson, recordDigestText, SetDigest } from './dump-format.js';
import { readDump, type CheckedDump } from './reader.js';
import { sideFilePaths } from './side-tree.js';
import { compareExtra, entryKey, entryLabel, writeExtra } from './extras.js';

export interface ImportOptions {
  /** import into a store that already holds accounts (identical ones are skipped) */
  merge?: boolean;
  /** the dump's name in messages (default its path) */
  name?: string;
  /** writes in flight at once */
  concurrency?: number;
}

export interface ImportSummary {
  source: string;
  exportedAt: string;
  target: string;
  records: number;
  written: number;
  unchanged: number;
  sideFiles: number;
  sideWritten: number;
  sideUnchanged: number;
  /** side data entries (store.side): the handover marker, POP3 UIDL maps */
  sideData: number;
  sideDataWritten: number;
  /** of the records as read back from the target (the dump's, unless uidMaps were re-based) */
  recordsDigest: string;
  rebased: boolean;
}

interface Plan {
  conflicts: string[];
  /** records and side files the target already holds, identical */
  same: Set<string>;
}

const SHOW = 10;

export async function importState(
  store: StateStore,
  path: string,
  options: ImportOptions = {},
): Promise<ImportSummary> {
  const name = options.name ?? path;
  const dump = await readDump(path, name);
  const side = sideDataDir(store);
  const rebase = rebaser(dump.header.sideFolder, basename(side));
  await checkTarget(store, dump, options.merge ?? false);
  const plan = await planImport(store, path, name, side, rebase, dump, options.merge ?? false);
  if (plan.conflicts.length > 0) throw conflictError(plan.conflicts, store.location);
  const limit = options.concurrency ?? 16;
  let written = 0;
  let sideWritten = 0;
  let sideDataWritten = 0;
  try {
    await readDump(path, name, async (entries) => {
      const todo = entries.filter((e) => !plan.same.has(entryKey(e)));
      const records = todo.flatMap((e) => (e.kind === 'record' ? [rebase(e.record)] : []));
      if (store.insertMany) {
        await store.insertMany(records);
        written += records.length;
      } else
        await forEachLimit(records, limit, async ({ address, ...rest }) => {
          await store.upsert(address, rest);
          written++;
        });
      await forEachLimit(todo, limit, async (e) => {
        if (e.kind === 'record') return;
        await writeExtra(store, side, e);
        if (e.kind === 'side') sideWritten++;
        else sideDataWritten++;
      });
    });
    await store.flush();
  } catch (err) {
    throw new OperatorError(
      `the import stopped after writing ${written} of ${dump.end.records} records and ` +
        `${sideWritten} side files: ${(err as Error).message}`,
      'fix the cause above, then run the same import again with --merge: what is written ' +
        'already is identical and skipped',
      'EIMPORTPARTIAL',
      { cause: err },
    );
  }
  const recordsDigest = await verifyImport(store, path, name, side, rebase, dump, options);
  return {
    source: dump.header.source,
    exportedAt: dump.header.exportedAt,
    target: store.location,
    records: dump.end.records,
    written,
    unchanged: dump.end.records - written,
    sideFiles: dump.end.sideFiles,
    sideWritten,
    sideUnchanged: dump.end.sideFiles - sideWritten,
    sideData: dump.end.sideData,
    sideDataWritten,
    recordsDigest,
    rebased: dump.header.sideFolder !== basename(side),
  };
}

async function checkTarget(store: StateStore, dump: CheckedDump, merge: boolean): Promise<void> {
  const have = await store.count();
  if (have > 0 && !merge)
    throw new OperatorError(
      `${store.location} already holds ${have} accounts`,
      'import into an empty store (a new state file or database), or add --merge to add ' +
        'the dump to what is there (records that differ are refused, identical ones skipped)',
      'EIMPORTNOTEMPTY',
    );
  if (!isStateUrl(store.location) && have + dump.end.records > MAX_JSON_ACCOUNTS)
    throw new OperatorError(
      `${have + dump.end.records} accounts are more than a JSON state file holds (${MAX_JSON_ACCOUNTS})`,
      'import into PostgreSQL: set `state:` to a postgresql:// URL',
      'EIMPORTTOOMANY',
    );
}

/** Read 1 (after the dump's check): what the target holds already, and what conflicts. */
async function planImport(
  store: StateStore,
  path: string,
  name: string,
  side: string,
  rebase: (r: AccountRecord) => AccountRecord,
  dump: CheckedDump,
  merge: boolean,
): Promise<Plan> {
  const plan: Plan = { conflicts: [], same: new Set() };
  // an empty store, no side files there nor side data in the dump: nothing to compare
  if (!merge && dump.end.sideData === 0 && (await sideFilePaths(side).next()).done) return plan;
  await readDump(path, name, (entries) =>
    forEachLimit(entries, 16, async (e) => {
      let found: 'absent' | 'same' | 'differs';
      if (e.kind !== 'record') found = await compareExtra(store, side, e);
      else if (!merge)
        return; // the store is empty
      else {
        const have = await store.get(e.record.address);
        const same = have && canonicalJson(have) === canonicalJson(rebase(e.record));
        found = !have ? 'absent' : same ? 'same' : 'differs';
      }
      if (found === 'same') plan.same.add(entryKey(e));
      if (found === 'differs') plan.conflicts.push(entryLabel(e));
    }),
  );
  return plan;
}

/**
 * Read 3: every record and side file as the target has it now, against the dump. Into an
 * empty store, the target's records are read page by page and their digest and count
 * compared with the dump's; with --merge, each record of the dump is read back by address.
 */
async function verifyImport(
  store: StateStore,
  path: string,
  name: string,
  side: string,
  rebase: (r: AccountRecord) => AccountRecord,
  dump: CheckedDump,
  options: ImportOptions,
): Promise<string> {
  const differ: string[] = [];
  const expected = new SetDigest();
  const got = new SetDigest();
  await readDump(path, name, (entries) =>
    forEachLimit(entries, options.concurrency ?? 16, async (e) => {
      if (e.kind !== 'record') {
        if ((await compareExtra(store, side, e)) !== 'same') differ.push(entryLabel(e));
        return;
      }
      const want = rebase(e.record);
      if (!options.merge) return expected.add(recordDigestText(want));
      const have = await store.get(e.record.address);
      if (have) got.add(recordDigestText(have));
      if (!have || canonicalJson(have) !== canonicalJson(want)) differ.push(e.record.address);
    }),
  );
  if (!options.merge) {
    let count = 0;
    for (let after = ''; ;) {
      const page = await store.list({ after, limit: 500 });
      if (page.length === 0) break;
      for (const r of page) got.add(recordDigestText(r));
      count += page.length;
      after = page.at(-1)!.address;
    }
    if (count !== dump.end.records)
      differ.push(`the store holds ${count} accounts, the dump ${dump.end.records}`);
    else if (got.hex() !== expected.hex()) differ.push('the digest of the records');
  }
  if (differ.length > 0)
    throw new OperatorError(
      `after the import ${differ.length} item(s) of ${store.location} differ from the dump: ` +
        `${differ.slice(0, SHOW).join(', ')}${differ.length > SHOW ? ', ...' : ''}`,
      'something changed the target meanwhile (a gateway using it?): stop every ' +
        '`autoport proxy` on it and run the same import again with --merge',
      'EIMPORTVERIFY',
    );
  return got.hex();
}

function conflictError(conflicts: string[], target: string): OperatorError {
  return new OperatorError(
    `${conflicts.length} record(s) or side file(s) of ${target} differ from the dump's: ` +
      `${conflicts.slice(0, SHOW).join(', ')}${conflicts.length > SHOW ? ', ...' : ''}; nothing was imported`,
    'import into an empty store, or remove those accounts from the target first ' +
      '(the dump is not merged over what differs)',
    'EIMPORTCONFLICT',
  );
}

/** The record with its uidMap paths moved from one side folder's name to another. */
function rebaser(from: string, to: string): (r: AccountRecord) => AccountRecord {
  if (from === to) return (r) => r;
  const prefix = `${from}${sep}`;
  return (r) => {
    const folders = Object.entries(r.folders);
    if (!folders.some(([, f]) => f.uidMap?.startsWith(prefix))) return r;
    const moved = Object.fromEntries(
      folders.map(([k, f]) => [
        k,
        f.uidMap?.startsWith(prefix)
          ? { ...f, uidMap: `${to}${sep}${f.uidMap.slice(prefix.length)}` }
          : f,
      ]),
    );
    return { ...r, folders: moved };
  };
}

async function forEachLimit<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
