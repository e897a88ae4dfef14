/**
 * The lowdb adapter of the JSON store: the snapshot (snapshot.ts) plus its journal
 * (journal.ts) on disk.
 *
 * read() loads the snapshot record by record and replays the journals over it. write()
 * appends what changed since the last write (StoreData.changes) to the journal and fsyncs
 * it: one small append per batch of changes, whatever the size of the store. compact()
 * folds the journal into a new snapshot (compaction.ts). Appends and the journal switch of
 * a compaction run one at a time; the snapshot itself is written beside the appends.
 */
import { existsSync } from 'node:fs';
import { open, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Adapter } from 'lowdb';
import { OperatorError } from '../errors.js';
import { syncDir, writeFileAtomic } from './atomic-file.js';
import { compact, type StepHook } from './compaction.js';
import {
  JournalCorruptError,
  JournalMissingError,
  StateError,
  StoreCorruptError,
} from './errors.js';
import {
  appendDurably,
  createJournal,
  journalChunks,
  journalPath,
  listJournals,
  replayJournal,
  type Change,
} from './journal.js';
import { readSnapshot, snapshotChunks, SNAPSHOT_VERSION } from './snapshot.js';
import { CHUNK_BYTES, MAX_JSON_ACCOUNTS, SNAPSHOT_SYNC_BYTES } from './store-limits.js';
import type { AccountRecord } from './types.js';

export const STORE_VERSION = SNAPSHOT_VERSION;

/** The document in memory. A Map, not an object: addresses come from untrusted logins. */
export interface StoreData {
  version: typeof STORE_VERSION;
  accounts: Map<string, AccountRecord>;
  /** changes not yet handed to write(); write() takes them and leaves an empty map */
  changes: Map<string, Change>;
}

export function emptyStoreData(): StoreData {
  return { version: STORE_VERSION, accounts: new Map(), changes: new Map() };
}

export interface StoreFileOptions {
  chunkBytes?: number;
  /** refuse to load more accounts than this (default MAX_JSON_ACCOUNTS) */
  maxAccounts?: number;
  /** a reader without the lock: retries when a compaction replaces the files under it */
  readOnly?: boolean;
  /** called between the steps of a compaction (tests crash there) */
  compactionStep?: StepHook;
}

/** The snapshot was replaced while we read it (readers only): read again. */
class SnapshotReplaced extends Error {}

const READ_ATTEMPTS = 10;

export class StoreFileAdapter implements Adapter<StoreData> {
  readonly backupPath: string;
  readonly maxAccounts: number;
  private readonly chunkBytes: number;
  private readonly readOnly: boolean;
  private readonly step: StepHook | undefined;
  private snapshotExists = false;
  private snapshotGen: number | undefined;
  private snapshotSize = 0;
  /** the generation appends go to, its durable size, and bytes of older live generations */
  private gen = 0;
  private size = 0;
  private olderBytes = 0;
  /** bytes past `size` may exist (a failed or torn append): cut them before the next */
  private cutTail = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    options: StoreFileOptions = {},
  ) {
    this.backupPath = `${path}.bak`;
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    this.maxAccounts = options.maxAccounts ?? MAX_JSON_ACCOUNTS;
    this.readOnly = options.readOnly ?? false;
    this.step = options.compactionStep;
  }

  /** bytes in the journals, which the next compaction folds into the snapshot */
  get journalBytes(): number {
    return this.olderBytes + this.size;
  }

  get snapshotBytes(): number {
    return this.snapshotSize;
  }

  async read(): Promise<StoreData | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.load();
      } catch (err) {
        if (!(err instanceof SnapshotReplaced)) throw err;
        if (this.readOnly && attempt < READ_ATTEMPTS) {
          // the owner is between two steps (compaction.ts, or creating a new store)
          await sleep(attempt * 10);
          continue;
        }
        throw new JournalMissingError(err.message, this.path);
      }
    }
  }

  private async load(): Promise<StoreData | null> {
    let fh: FileHandle;
    try {
      fh = await open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.checkNothingElse();
      this.snapshotExists = false;
      return null;
    }
    try {
      const snap = await readSnapshot(fh, {
        corrupt: (detail, cause) =>
          new StoreCorruptError(this.path, this.backupPath, detail, {
            cause,
            backupExists: existsSync(this.backupPath),
          }),
        checkCount: (n) => this.checkCount(n),
      });
      const first = snap.journal ?? 0;
      const gens = (await listJournals(this.path)).filter((g) => g >= first);
      if (snap.journal !== undefined && gens[0] !== snap.journal)
        throw new SnapshotReplaced(journalPath(this.path, snap.journal));
      this.snapshotExists = true;
      this.snapshotGen = snap.journal;
      this.snapshotSize = snap.bytes;
      this.gen = first;
      this.size = 0;
      this.olderBytes = 0;
      for (const g of gens) await this.replay(g, snap.accounts);
      this.checkCount(snap.accounts.size);
      return { version: STORE_VERSION, accounts: snap.accounts, changes: new Map() };
    } finally {
      await fh.close();
    }
  }

  private async replay(gen: number, accounts: Map<string, AccountRecord>): Promise<void> {
    const p = journalPath(this.path, gen);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotReplaced(p);
      throw err;
    }
    try {
      const r = await replayJournal(
        fh,
        accounts,
        (detail, valid, cause) => new JournalCorruptError(p, this.path, detail, valid, { cause }),
      );
      this.olderBytes += this.size;
      this.gen = gen;
      this.size = r.validBytes;
      this.cutTail = r.bytes > r.validBytes;
    } finally {
      await fh.close();
    }
  }

  /** No snapshot: refuse if a backup or journal says there was one. */
  private async checkNothingElse(): Promise<void> {
    // Saves never leave the snapshot absent, so someone removed it: do not start empty
    // silently and overwrite the accounts' only remaining copy.
    if (existsSync(this.backupPath)) {
      throw new StateError(
        'ESTOREMISSING',
        `state file ${this.path} is missing but its backup ${this.backupPath} exists. ` +
          `Restore it with: cp ${this.backupPath} ${this.path}, ` +
          `or delete ${this.backupPath} to start with an empty store`,
      );
    }
    const gens = await listJournals(this.path);
    if (gens.length > 0) {
      throw new StateError(
        'ESTOREMISSING',
        `state file ${this.path} is missing but its journal ${journalPath(this.path, gens[0] as number)} exists. ` +
          `Restore ${this.path} from a backup, or move the journal files away to start with an empty store`,
      );
    }
  }

  private checkCount(count: number): void {
    if (count <= this.maxAccounts) return;
    throw new OperatorError(
      `state file ${this.path} holds more than ${this.maxAccounts} accounts, ` +
        `the most the JSON store keeps in memory`,
      'move the state to PostgreSQL, the store for sites of this size; ' +
        'the JSON store refuses to start rather than run out of memory mid-run',
      'ESTORETOOLARGE',
    );
  }

  /**
   * The owner (with the lock) makes the files ready for appends: a snapshot exists (an empty
   * one for a new store, so a journal never exists without the snapshot it continues), the
   * journal to append to exists, and journals a crashed compaction left behind are gone.
   */
  async prepareForWrites(): Promise<void> {
    // Journals a crashed compaction left behind go now; the files for appends come with the
    // first change, so an owner that changes nothing (a dry run) leaves no state behind.
    await this.removeJournalsBefore(this.snapshotGen ?? 0);
  }

  private prepared = false;

  private async createFilesForAppends(): Promise<void> {
    if (this.prepared) return;
    if (!this.snapshotExists) {
      this.gen = 1;
      this.snapshotSize = (
        await writeFileAtomic(this.path, snapshotChunks([], this.gen), {
          backupPath: this.backupPath,
        })
      ).bytes;
      this.snapshotExists = true;
      this.snapshotGen = this.gen;
    }
    await createJournal(journalPath(this.path, this.gen));
    this.prepared = true;
  }

  /** Not async on purpose: the changes must be taken before the caller's next statement. */
  write(data: StoreData): Promise<void> {
    const batch = data.changes;
    data.changes = new Map();
    return this.exclusive(async () => {
      try {
        if (this.cutTail) {
          await truncate(journalPath(this.path, this.gen), this.size);
          this.cutTail = false;
        }
        if (batch.size === 0) return;
        await this.createFilesForAppends();
        this.cutTail = true;
        const p = journalPath(this.path, this.gen);
        this.size += await appendDurably(p, journalChunks(batch, this.chunkBytes));
        this.cutTail = false;
      } catch (err) {
        // Back into the next batch, unless changed again since.
        for (const [key, rec] of batch) if (!data.changes.has(key)) data.changes.set(key, rec);
        throw err;
      }
    });
  }

  /** Fold the journal into a new snapshot (see compaction.ts). */
  async compact(data: StoreData): Promise<{ bytes: number }> {
    await this.exclusive(() => this.createFilesForAppends());
    const out = await compact(
      {
        rotate: () => this.rotate(),
        writeSnapshot: async (records, gen, beforeRename) =>
          (
            await writeFileAtomic(this.path, snapshotChunks(records, gen, this.chunkBytes / 4), {
              backupPath: this.backupPath,
              syncEveryBytes: SNAPSHOT_SYNC_BYTES,
              // appends waiting for their fsync go before the next piece of snapshot
              pace: () => this.queue,
              beforeRename,
            })
          ).bytes,
        removeJournalsBefore: (gen) => this.removeJournalsBefore(gen),
      },
      data.accounts,
      this.step,
    );
    this.snapshotGen = out.gen;
    this.snapshotSize = out.bytes;
    this.olderBytes = 0;
    return out;
  }

  private rotate(): Promise<number> {
    return this.exclusive(async () => {
      const next = this.gen + 1;
      await createJournal(journalPath(this.path, next));
      // The old generation keeps what a failed append left past its end: replay ignores
      // lines after the last commit, and no append goes there again.
      this.olderBytes += this.size;
      this.gen = next;
      this.size = 0;
      this.cutTail = false;
      return next;
    });
  }

  private async removeJournalsBefore(gen: number): Promise<void> {
    const old = (await listJournals(this.path)).filter((g) => g < gen);
    for (const g of old) await unlink(journalPath(this.path, g)).catch(() => undefined);
    if (old.length > 0) await syncDir(dirname(this.path));
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
