/**
 * The snapshot file: the accounts as one JSON document, laid out one account per line.
 *
 *   {"version":2,"journal":7,"accounts":{
 *   "alice@example.org":{"address":"alice@example.org","state":"captured",...},
 *   "bob@example.org":{"address":"bob@example.org","state":"migrated",...}
 *   }}
 *
 * It stays valid JSON (jq, an operator's eyes), but it is written and read record by record,
 * never as one string (see line-reader.ts for why). "journal" is the first journal generation
 * to replay over it (journal.ts). Version 1 files, written before the journal, have the
 * same layout without it and are read the same way; a version 1 document in another layout
 * (edited by hand) is read whole, up to WHOLE_DOCUMENT_MAX_BYTES. The first compaction
 * rewrites either as version 2, which older autoport refuses rather than ignoring the journal.
 */
import type { FileHandle } from 'node:fs/promises';
import { LineTooLongError, offsetOf, readLineBatches } from './line-reader.js';
import { checkLoadedRecord, normalizeAddress } from './records.js';
import { CHUNK_BYTES, WHOLE_DOCUMENT_MAX_BYTES } from './store-limits.js';
import type { AccountRecord } from './types.js';

export const SNAPSHOT_VERSION = 2;

const HEADER = /^\{"version":(\d+)(?:,"journal":(\d+))?,"accounts":\{$/;
const HEADER_PEEK_BYTES = 256;

export interface Snapshot {
  accounts: Map<string, AccountRecord>;
  /** first journal generation to replay; undefined for a version 1 file (none, or 0) */
  journal: number | undefined;
  bytes: number;
}

export interface SnapshotReadContext {
  corrupt: (detail: string, cause?: unknown) => Error;
  /** called with the count so far; throws when the store is over its limit */
  checkCount: (count: number) => void;
}

export async function readSnapshot(fh: FileHandle, ctx: SnapshotReadContext): Promise<Snapshot> {
  const size = (await fh.stat()).size;
  const head = Buffer.alloc(Math.min(size, HEADER_PEEK_BYTES));
  await fh.read(head, 0, head.length, 0);
  const nl = head.indexOf(10);
  const m = nl < 0 ? null : HEADER.exec(head.subarray(0, nl).toString('utf8'));
  if (!m) return readWholeDocument(fh, size, ctx);
  checkVersion(Number(m[1]), ctx);
  const accounts = new Map<string, AccountRecord>();
  let ended = false;
  try {
    for await (const batch of readLineBatches(fh, { from: nl + 1 })) {
      for (let i = 0; i < batch.lines.length; i++) {
        const text = batch.lines[i] as string;
        if (ended) {
          if (text.trim() !== '')
            throw ctx.corrupt(`text after the end of the document at byte ${offsetOf(batch, i)}`);
          continue;
        }
        if (text === '}}') {
          ended = true;
          continue;
        }
        let entry: Record<string, unknown>;
        try {
          // one account per line: "key":{record}, then a comma unless it is the last
          entry = JSON.parse(`{${text.endsWith(',') ? text.slice(0, -1) : text}}`) as Record<
            string,
            unknown
          >;
        } catch (err) {
          throw ctx.corrupt(
            `invalid JSON at byte ${offsetOf(batch, i)}: ${(err as Error).message}`,
            err,
          );
        }
        const keys = Object.keys(entry);
        if (keys.length !== 1)
          throw ctx.corrupt(`the line at byte ${offsetOf(batch, i)} is not one account`);
        const key = keys[0] as string;
        addLoadedRecord(accounts, key, entry[key], ctx);
      }
      ctx.checkCount(accounts.size);
    }
  } catch (err) {
    if (err instanceof LineTooLongError) throw ctx.corrupt(err.message, err);
    throw err;
  }
  if (!ended) throw ctx.corrupt('truncated: the document does not end');
  ctx.checkCount(accounts.size);
  return { accounts, journal: m[2] === undefined ? undefined : Number(m[2]), bytes: size };
}

/** Check a record read from disk (snapshot or journal) and add it (the store freezes it on its way out). */
export function addLoadedRecord(
  accounts: Map<string, AccountRecord>,
  key: string,
  rec: unknown,
  ctx: Pick<SnapshotReadContext, 'corrupt'>,
): void {
  let problem = checkLoadedRecord(key, rec);
  if (!problem && normalizeKey(key) !== key) problem = 'key is not a normalised address';
  if (problem) throw ctx.corrupt(`account ${JSON.stringify(key)}: ${problem}`);
  accounts.set(key, rec as AccountRecord);
}

async function readWholeDocument(
  fh: FileHandle,
  size: number,
  ctx: SnapshotReadContext,
): Promise<Snapshot> {
  if (size > WHOLE_DOCUMENT_MAX_BYTES) {
    throw ctx.corrupt(
      `not in the one-account-per-line layout autoport writes, and at ${size} bytes too large ` +
        `to read as one document (limit ${WHOLE_DOCUMENT_MAX_BYTES})`,
    );
  }
  const text = await fh.readFile('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw ctx.corrupt(
      text.length === 0 ? 'empty file' : `invalid JSON: ${(err as Error).message}`,
      err,
    );
  }
  if (doc === null || typeof doc !== 'object') throw ctx.corrupt('not a JSON object');
  const { version, journal, accounts } = doc as {
    version?: unknown;
    journal?: unknown;
    accounts?: unknown;
  };
  checkVersion(version, ctx);
  if (accounts === null || typeof accounts !== 'object' || Array.isArray(accounts)) {
    throw ctx.corrupt('"accounts" is not an object');
  }
  const map = new Map<string, AccountRecord>();
  for (const [key, rec] of Object.entries(accounts)) addLoadedRecord(map, key, rec, ctx);
  ctx.checkCount(map.size);
  return {
    accounts: map,
    journal: Number.isSafeInteger(journal) ? (journal as number) : undefined,
    bytes: size,
  };
}

function checkVersion(version: unknown, ctx: SnapshotReadContext): void {
  if (typeof version === 'number' && version > SNAPSHOT_VERSION) {
    throw ctx.corrupt(
      `format version ${version} was written by a newer autoport; upgrade autoport`,
    );
  }
  if (version !== 1 && version !== SNAPSHOT_VERSION)
    throw ctx.corrupt(`unknown format version ${String(version)}`);
}

/**
 * The document in chunks of about `chunkBytes`, one record serialised at a time: the
 * snapshot of a million accounts never exists as one string.
 */
export function* snapshotChunks(
  records: readonly AccountRecord[],
  journal: number,
  chunkBytes = CHUNK_BYTES,
): Generator<string> {
  let buf = `{"version":${SNAPSHOT_VERSION},"journal":${journal},"accounts":{`;
  for (let i = 0; i < records.length; i++) {
    const rec = records[i] as AccountRecord;
    buf += `${i === 0 ? '\n' : ',\n'}${JSON.stringify(rec.address)}:${JSON.stringify(rec)}`;
    if (buf.length >= chunkBytes) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}\n}}\n`;
}

function normalizeKey(key: string): string | undefined {
  try {
    return normalizeAddress(key);
  } catch {
    return undefined;
  }
}
