/**
 * `autoport state export`: every account record of a store, then every side file, as a
 * dump (dump-format.ts). Records are read page by page in address order (list with
 * `after`), so a PostgreSQL store of a million accounts is never held in memory, and
 * written exactly as the store hands them out: sealed credentials are copied as they
 * are, never opened. Each page's side data (store.side: files, or rows in PostgreSQL)
 * follows its records; the side files (UID maps) come last.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { OperatorError } from '../errors.js';
import { syncDir } from '../state/atomic-file.js';
import { sideDataDir, sideFilePath } from '../state/side-files.js';
import { isStateUrl } from '../state/state-url.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import {
  canonicalJson,
  DUMP_FORMAT,
  DUMP_VERSION,
  recordDigestText,
  SetDigest,
  sideDigestText,
  type DumpEnd,
  type DumpHeader,
  type SideDataEntry,
} from './dump-format.js';
import { SIDE_DATA_KEYS } from './side-data-keys.js';
import { readSideBytes, sideFilePaths } from './side-tree.js';

const PAGE = 500;

export interface ExportSummary extends DumpEnd {
  source: string;
  bytes: number;
}

export interface ExportOptions {
  now?: () => Date;
  pageSize?: number;
}

/** Write the dump of `store` to `out` (a file's stream, or stdout), minding backpressure. */
export async function exportState(
  store: StateStore,
  out: NodeJS.WritableStream,
  options: ExportOptions = {},
): Promise<ExportSummary> {
  const body = createHash('sha256');
  let bytes = 0;
  const put = async (value: unknown, hashed = true): Promise<void> => {
    const line = `${JSON.stringify(value)}\n`;
    if (hashed) body.update(line);
    bytes += Buffer.byteLength(line);
    if (!out.write(line)) await once(out, 'drain');
  };
  const side = sideDataDir(store);
  const header: DumpHeader = {
    format: DUMP_FORMAT,
    version: DUMP_VERSION,
    source: store.location,
    backend: isStateUrl(store.location) ? 'postgresql' : 'json',
    sideFolder: basename(side),
    exportedAt: (options.now?.() ?? new Date()).toISOString(),
  };
  await put(header);
  const records = new SetDigest();
  const sideData = new SetDigest();
  let recordCount = 0;
  let sideDataCount = 0;
  /** where a file-backed store.side keeps its data: carried as side data, not as files */
  const sideDataFiles = new Set<string>();
  const accountDirs = await listAccountDirs(side);
  for (let after = ''; ;) {
    const page = await store.list({ after, limit: options.pageSize ?? PAGE });
    if (page.length === 0) break;
    for (const record of page) {
      await put({ record });
      records.add(recordDigestText(record));
      recordCount++;
    }
    for (const entry of await readSideData(store, page, sideDataFiles, accountDirs)) {
      await put({ sideData: entry });
      sideData.add(canonicalJson(entry));
      sideDataCount++;
    }
    after = page.at(-1)!.address;
  }
  const sides = new SetDigest();
  let sideCount = 0;
  for await (const path of sideFilePaths(side)) {
    if (sideDataFiles.has(path)) continue;
    const data = await readSideBytes(side, path);
    if (data === undefined) continue; // removed since the listing
    await put({ side: path, data: data.toString('base64') });
    sides.add(sideDigestText({ path, data }));
    sideCount++;
  }
  const end: DumpEnd = {
    records: recordCount,
    sideFiles: sideCount,
    recordsDigest: records.hex(),
    sideDigest: sides.hex(),
    sideData: sideDataCount,
    sideDataDigest: sideData.hex(),
    digest: body.digest('hex'),
  };
  await put({ end }, false);
  return { ...end, source: store.location, bytes };
}

/**
 * The side data of a page of accounts under every known key: one query where the store
 * can answer for many accounts (PostgreSQL); else one read per account and key, only for
 * accounts that have a folder of side files at all (`accountDirs`: the file-backed store
 * keeps side data there, and most accounts have none).
 */
async function readSideData(
  store: StateStore,
  page: readonly AccountRecord[],
  files: Set<string>,
  accountDirs: ReadonlySet<string>,
): Promise<SideDataEntry[]> {
  const side = sideDataDir(store);
  const withFiles = page.filter((r) => accountDirs.has(accountDirName(store, r.address)));
  for (const r of withFiles)
    for (const key of SIDE_DATA_KEYS)
      files.add(
        relative(side, sideFilePath(store, r.address, key).absolute)
          .split(sep)
          .join('/'),
      );
  if (store.side.readMany) {
    const addresses = page.map((r) => r.address);
    const found = await store.side.readMany(addresses, SIDE_DATA_KEYS);
    return found.sort((a, b) => cmp(a.address, b.address) || cmp(a.key, b.key));
  }
  const asks = withFiles.flatMap((r) => SIDE_DATA_KEYS.map((key) => ({ address: r.address, key })));
  const out: SideDataEntry[] = [];
  for (const { address, key } of asks) {
    const data = await store.side.read(address, key);
    if (data !== undefined) out.push({ address, key, data });
  }
  return out;
}

function accountDirName(store: StateStore, address: string): string {
  return basename(dirname(sideFilePath(store, address, 'x').absolute));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The names in the side folder (one folder per account with side files). */
async function listAccountDirs(side: string): Promise<Set<string>> {
  return new Set(await readdir(side).catch(() => []));
}

/**
 * exportState into a new file: written beside it under a temporary name and renamed when
 * complete, so `path` is only ever a whole dump. An existing file is not replaced.
 */
export async function exportStateToFile(
  store: StateStore,
  path: string,
  options: ExportOptions = {},
): Promise<ExportSummary> {
  if (await exists(path))
    throw new OperatorError(
      `${path} already exists`,
      'name a new file with --file, or remove the old dump first',
      'EEXPORTEXISTS',
    );
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  try {
    await once(out, 'open');
    const summary = await exportState(store, out, options);
    out.end();
    await once(out, 'finish');
    const fh = await open(tmp, 'r');
    await fh.sync().finally(() => fh.close());
    await rename(tmp, path);
    await syncDir(dirname(path));
    return summary;
  } catch (err) {
    out.on('error', () => undefined); // a write still under way when it is destroyed
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
