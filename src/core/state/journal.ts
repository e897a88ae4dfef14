/**
 * The journal beside the snapshot: one JSON line per changed account, appended and fsynced
 * in batches, so a change costs one small durable append instead of a rewrite of the whole
 * store. Every line is an assignment, so replaying a line the snapshot already contains
 * changes nothing:
 *
 *   {"address":"a@x","state":"captured",...}   the account's whole new record
 *   {"remove":"a@x"}                            the account was removed
 *
 * Files are numbered generations, `state.json.journal.<n>`; the snapshot's header names the
 * first one to replay (compaction.ts says how they move on). A line torn by a crash can only
 * be the last of its file: a batch is appended after the previous one was fsynced, and a
 * failed append is cut off again before the next (store-file.ts). Such a last line is
 * ignored; a bad line with good lines after it is damage and stops the load.
 */
import { statfs } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { syncDir } from './atomic-file.js';
import { LineTooLongError, offsetOf, readLineBatches } from './line-reader.js';
import { addLoadedRecord } from './snapshot.js';
import { CHUNK_BYTES } from './store-limits.js';
import type { AccountRecord } from './types.js';

/** A change not yet in the journal: the record, or null for a removal. */
export type Change = AccountRecord | null;

export function journalPath(file: string, gen: number): string {
  return `${file}.journal.${gen}`;
}

/** Generations present beside `file`, ascending. */
export async function listJournals(file: string): Promise<number[]> {
  const prefix = `${basename(file)}.journal.`;
  const names = await readdir(dirname(file)).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
    .map((n) => Number(n.slice(prefix.length)))
    .filter(Number.isSafeInteger)
    .sort((a, b) => a - b);
}

/** The lines of a batch in chunks of about `chunkBytes`. */
export function* journalChunks(
  changes: Iterable<[string, Change]>,
  chunkBytes = CHUNK_BYTES,
): Generator<string> {
  let buf = '';
  for (const [key, rec] of changes) {
    buf += rec ? `${JSON.stringify(rec)}\n` : `${JSON.stringify({ remove: key })}\n`;
    if (buf.length >= chunkBytes) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}

export interface ReplayResult {
  bytes: number;
  /** bytes up to the end of the last good line: where the next append must start */
  validBytes: number;
  lines: number;
}

export async function replayJournal(
  fh: FileHandle,
  accounts: Map<string, AccountRecord>,
  corrupt: (detail: string, validBytes: number, cause?: unknown) => Error,
): Promise<ReplayResult> {
  let validBytes = 0;
  let lines = 0;
  let bad: { at: number; detail: string; cause?: unknown } | undefined;
  const damaged = (): Error =>
    corrupt(`line at byte ${bad?.at}: ${bad?.detail}`, validBytes, bad?.cause);
  try {
    for await (const batch of readLineBatches(fh)) {
      for (let i = 0; i < batch.lines.length; i++) {
        // good lines after a bad one: not a torn tail but damage
        if (bad) throw damaged();
        try {
          applyLine(batch.lines[i] as string, accounts);
          lines++;
        } catch (err) {
          bad = { at: offsetOf(batch, i), detail: (err as Error).message, cause: err };
          validBytes = bad.at;
        }
      }
      if (!bad) validBytes = batch.end;
      if (batch.tail !== undefined && bad) throw damaged();
    }
  } catch (err) {
    if (err instanceof LineTooLongError) throw corrupt(err.message, validBytes, err);
    throw err;
  }
  return { bytes: (await fh.stat()).size, validBytes, lines };
}

function applyLine(text: string, accounts: Map<string, AccountRecord>): void {
  if (text === '') return;
  const v = JSON.parse(text) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
  const { remove, address } = v as { remove?: unknown; address?: unknown };
  if (typeof remove === 'string' && address === undefined) {
    accounts.delete(remove);
    return;
  }
  if (typeof address !== 'string') throw new Error('neither a record nor a removal');
  addLoadedRecord(accounts, address, v, {
    corrupt: (detail) => new Error(detail),
  });
}

/** Create an empty journal file (if missing) and make its name durable. */
export async function createJournal(path: string): Promise<void> {
  const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT, 0o600);
  await fh.close();
  await syncDir(dirname(path));
}

/**
 * Append the chunks to an existing journal and fdatasync it. The file is opened for each
 * batch, not kept open: a file system with a file open for writing cannot be remounted
 * read-only, which is what an operator does to a failing disk.
 *
 * A file system with no free block fails the append with ENOSPC even when the lines would
 * fit in the slack of the file's last block: living off that slack would make a full disk
 * fail at random moments, and the compaction that follows needs real room anyway.
 */
export async function appendDurably(path: string, chunks: Iterable<string>): Promise<number> {
  const fh = await open(path, fsc.O_WRONLY | fsc.O_APPEND);
  let bytes = 0;
  try {
    for (const chunk of chunks) {
      const buf = Buffer.from(chunk, 'utf8');
      await checkRoom(path, buf.length);
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      bytes += buf.length;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return bytes;
}

async function checkRoom(path: string, need: number): Promise<void> {
  const s = await statfs(dirname(path)).catch(() => undefined);
  if (!s || s.blocks === 0) return; // a file system that does not tell
  if (s.bavail * s.bsize < need) {
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
      path,
    });
  }
}
