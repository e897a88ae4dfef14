/**
 * The journal beside the snapshot: one JSON line per changed account, appended and fsynced
 * in batches, so a change costs one small durable append instead of a rewrite of the whole
 * store. Every line is an assignment, so replaying a line the snapshot already contains
 * changes nothing:
 *
 *   {"address":"a@x","state":"captured",...}   the account's whole new record
 *   {"remove":"a@x"}                            the account was removed
 *   {"commit":2}                                end of a batch of 2 lines
 *
 * A batch counts only with its commit line, so a batch is all or nothing, as a whole-file
 * save was: changes made together (a group of accounts set in one go) are never half
 * replayed. Files are numbered generations, `state.json.journal.<n>`; the snapshot's header
 * names the first one to replay (compaction.ts says how they move on).
 *
 * What a crash can leave is the end of a file only: a batch is appended after the previous
 * one was fsynced, and a failed append is cut off again before the next (store-file.ts).
 * Lines after the last commit are ignored (and cut by the next owner); a bad line with a
 * commit after it is damage and stops the load.
 */
import { statfs } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { syncDir } from './atomic-file.js';
import { LineTooLongError, readLineBatches } from './line-reader.js';
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
  let n = 0;
  for (const [key, rec] of changes) {
    buf += rec ? `${JSON.stringify(rec)}\n` : `${JSON.stringify({ remove: key })}\n`;
    n++;
    if (buf.length >= chunkBytes) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}{"commit":${n}}\n`;
}

export interface ReplayResult {
  bytes: number;
  /** bytes up to the end of the last commit line: where the next append must start */
  validBytes: number;
  /** committed batches */
  batches: number;
}

type Parsed = [string, AccountRecord | null];

export async function replayJournal(
  fh: FileHandle,
  accounts: Map<string, AccountRecord>,
  corrupt: (detail: string, validBytes: number, cause?: unknown) => Error,
): Promise<ReplayResult> {
  let validBytes = 0;
  let batches = 0;
  let batch: Parsed[] = [];
  let bad: { at: number; detail: string; cause?: unknown } | undefined;
  try {
    for await (const chunk of readLineBatches(fh)) {
      let next = chunk.start;
      for (const text of chunk.lines) {
        const at = next;
        next += Buffer.byteLength(text, 'utf8') + 1;
        let line: Parsed | { commit: number } | undefined;
        try {
          line = parseLine(text);
        } catch (err) {
          bad ??= { at, detail: (err as Error).message, cause: err };
          continue;
        }
        if (!line) continue;
        if (Array.isArray(line)) {
          batch.push(line);
          continue;
        }
        // a commit after a bad line: the damage is inside a batch that counts
        if (bad) throw corrupt(`line at byte ${bad.at}: ${bad.detail}`, validBytes, bad.cause);
        if (line.commit !== batch.length) {
          throw corrupt(
            `line at byte ${at} commits ${line.commit} lines, not ${batch.length}`,
            validBytes,
          );
        }
        for (const [key, rec] of batch) {
          if (rec) accounts.set(key, rec);
          else accounts.delete(key);
        }
        batch = [];
        batches++;
        validBytes = next;
      }
    }
  } catch (err) {
    if (err instanceof LineTooLongError) throw corrupt(err.message, validBytes, err);
    throw err;
  }
  return { bytes: (await fh.stat()).size, validBytes, batches };
}

function parseLine(text: string): Parsed | { commit: number } | undefined {
  if (text === '') return undefined;
  const v = JSON.parse(text) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
  const { remove, address, commit } = v as {
    remove?: unknown;
    address?: unknown;
    commit?: unknown;
  };
  if (typeof commit === 'number' && address === undefined) return { commit };
  if (typeof remove === 'string' && address === undefined) return [remove, null];
  if (typeof address !== 'string') throw new Error('neither a record, a removal nor a commit');
  const one = new Map<string, AccountRecord>();
  addLoadedRecord(one, address, v, { corrupt: (detail) => new Error(detail) });
  return [address, one.get(address) as AccountRecord];
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
