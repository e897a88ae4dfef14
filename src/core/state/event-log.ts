/**
 * Append-only JSON-lines logs (sessions, SMTP relays, transfers, the copy ledger).
 *
 * append() is synchronous and cheap; lines are batched and written shortly after (20 ms by
 * default) with one write(2) per batch on an O_APPEND descriptor, so a line is never
 * interleaved with another writer's. A kill -9 can still cut the last line short: the
 * writer starts a fresh line when it reopens such a file, and the reader skips torn or
 * unparsable lines instead of failing. Files rotate by size: `x.jsonl` -> `x.jsonl.1` ->
 * ... -> `x.jsonl.<keep>` (one writer per log rotates; readers tolerate a rotation).
 *
 * A disk that fills up, turns read-only or fails (ENOSPC, EROFS, EIO) never throws at
 * append(): the lines wait in memory and the batch is retried every second, so nothing
 * is lost once the disk has room again. The failure is reported once per episode.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { EventLog } from './types.js';

export interface EventLogOptions {
  /** rotate when the file would grow past this (default 10 MiB) */
  maxBytes?: number;
  /** rotated files kept (default 5; 0 = truncate on rotation) */
  keep?: number;
  /** how long appended lines wait to be batched (default 20 ms) */
  flushDelayMs?: number;
  /** write at once when this much is buffered (default 64 KiB) */
  batchBytes?: number;
  /** fdatasync after every batch: for the copy ledger, whose entries must survive a power cut */
  fsync?: boolean;
  /**
   * Writing failed after working: called once per episode, not for every retry (default:
   * process.emitWarning). Also called when a rotation fails (the file then grows on).
   */
  onError?: (err: Error) => void;
  /** a write worked again after onError */
  onRecovered?: () => void;
}

const RETRY_AFTER_ERROR_MS = 1000;

export async function openEventLog<T extends object = Record<string, unknown>>(
  path: string,
  options: EventLogOptions = {},
): Promise<EventLog<T>> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const fh = await open(path, 'a+', 0o600);
  const { size } = await fh.stat();
  const log = new JsonLinesLog<T>(path, fh, size, options);
  if (size > 0) {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] !== 0x0a) log.startFreshLine(); // torn by a crash: keep the next line intact
  }
  return log;
}

class JsonLinesLog<T extends object> implements EventLog<T> {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDelay = 0;
  private writing: Promise<void> | undefined;
  private closed = false;
  private failing = false;
  /** after a failed rotation, the next one is tried at this size, not at every batch */
  private rotateAt: number;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly flushDelayMs: number;
  private readonly batchBytes: number;
  private readonly onError: (err: Error) => void;

  constructor(
    readonly path: string,
    /** undefined between a rotation and the next write, which opens the new file */
    private fh: FileHandle | undefined,
    private size: number,
    private readonly options: EventLogOptions,
  ) {
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
    this.keep = options.keep ?? 5;
    this.flushDelayMs = options.flushDelayMs ?? 20;
    this.batchBytes = options.batchBytes ?? 64 * 1024;
    this.rotateAt = this.maxBytes;
    this.onError =
      options.onError ??
      ((err) => process.emitWarning(`writing ${path} failed, will retry: ${err.message}`));
  }

  startFreshLine(): void {
    this.enqueue(Buffer.from('\n'));
  }

  append(event: T): void {
    if (this.closed) throw new Error(`event log ${this.path} is closed`);
    const withTs = 'ts' in event ? event : { ts: new Date().toISOString(), ...event };
    this.enqueue(Buffer.from(`${JSON.stringify(withTs)}\n`, 'utf8'));
    this.schedule(this.pendingBytes >= this.batchBytes ? 0 : this.flushDelayMs);
  }

  async flush(): Promise<void> {
    for (;;) {
      if (this.writing) {
        await this.writing;
        continue;
      }
      if (this.pendingBytes === 0) return;
      await this.drain();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      await this.fh?.close();
    }
  }

  private enqueue(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
  }

  private schedule(delay: number): void {
    if (this.writing) return; // the running write reschedules when it ends
    if (this.timer && (delay > 0 || this.timerDelay === 0)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDelay = delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain().catch(() => undefined); // reported through onError
    }, delay);
  }

  private drain(): Promise<void> {
    if (this.writing) return this.writing;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingBytes === 0) return Promise.resolve();
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let retryDelay = this.flushDelayMs;
    this.writing = this.writeBatch(batch)
      .then(
        () => {
          if (!this.failing) return;
          this.failing = false;
          this.options.onRecovered?.();
        },
        (err: Error) => {
          retryDelay = RETRY_AFTER_ERROR_MS;
          if (!this.failing) {
            this.failing = true;
            this.onError(err);
          }
          throw err;
        },
      )
      .finally(() => {
        this.writing = undefined;
        if (this.pendingBytes > 0 && !this.closed) this.schedule(retryDelay);
      });
    return this.writing;
  }

  private async writeBatch(batch: Buffer): Promise<void> {
    let off = 0;
    try {
      if (this.size > 0 && this.size + batch.length > this.rotateAt) await this.rotate();
      this.fh ??= await open(this.path, 'a+', 0o600);
      while (off < batch.length) {
        const { bytesWritten } = await this.fh.write(batch, off, batch.length - off);
        off += bytesWritten;
      }
      if (this.options.fsync) await this.fh.datasync();
    } catch (err) {
      // Requeue exactly what is not in the file yet, so nothing is lost or doubled.
      this.pending.unshift(batch.subarray(off));
      this.pendingBytes += batch.length - off;
      throw err;
    } finally {
      this.size += off;
    }
  }

  /**
   * Renames first, with the old file still open (the descriptor follows the renamed
   * file): when a rename fails the log keeps appending to the file it has, past maxBytes,
   * rather than losing lines or being left without a descriptor.
   */
  private async rotate(): Promise<void> {
    try {
      if (this.keep === 0) {
        await unlink(this.path).catch(ignoreMissing);
      } else {
        for (let i = this.keep - 1; i >= 1; i--) {
          await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
        }
        await rename(this.path, `${this.path}.1`).catch(ignoreMissing);
      }
    } catch (err) {
      this.rotateAt = this.size + this.maxBytes;
      this.onError(err as Error);
      return;
    }
    const old = this.fh;
    this.fh = undefined;
    this.size = 0;
    this.rotateAt = this.maxBytes;
    // The old file is complete and renamed; a failing close loses nothing of it.
    await old?.close().catch(() => undefined);
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

export interface ReadEventLogOptions {
  /** also read `path.N ... path.1` first, oldest first (default false) */
  includeRotated?: boolean;
  /** a line that is not JSON (torn = the file's unfinished last line) */
  onSkip?: (info: { file: string; line: number; torn: boolean }) => void;
}

/** The files of a log, oldest first. */
export async function eventLogFiles(path: string, includeRotated = true): Promise<string[]> {
  if (!includeRotated) return [path];
  const base = basename(path);
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  const rotated = names
    .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : NaN))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b - a)
    .map((n) => join(dirname(path), `${base}.${n}`));
  return [...rotated, path];
}

export async function* readEventLog<T = Record<string, unknown>>(
  path: string,
  options: ReadEventLogOptions = {},
): AsyncGenerator<T> {
  for (const file of await eventLogFiles(path, options.includeRotated ?? false)) {
    yield* readOne<T>(file, options.onSkip);
  }
}

async function* readOne<T>(file: string, onSkip: ReadEventLogOptions['onSkip']): AsyncGenerator<T> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  let rest = '';
  let lineNo = 0;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lineNo++;
        if (line.length === 0) continue;
        let value: T;
        try {
          value = JSON.parse(line) as T;
        } catch {
          onSkip?.({ file, line: lineNo, torn: false });
          continue;
        }
        yield value;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  } finally {
    stream.destroy();
  }
  if (rest.length > 0) onSkip?.({ file, line: lineNo + 1, torn: true });
}
