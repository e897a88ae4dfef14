/**
 * The account store as one JSON document held in memory (lowdb, with our own adapter):
 * a snapshot file plus a journal of changes beside it (store-file.ts).
 *
 * A change costs one durable append, not a rewrite: it marks the store dirty, and a save
 * `saveDelayMs` later (or at once, for a caller awaiting flush()) appends the whole new
 * record of every account changed since the last save as one JSON line each, then fsyncs.
 * At most one save runs at a time, and changes made during it go into the next one, so
 * concurrent callers of flush() share one write and one fsync (group commit). A crash
 * loses at most the changes of the last save interval; a caller that needs a change on
 * disk before it answers (captured credentials, a state change) awaits flush().
 *
 * When the journal has grown past a share of the snapshot, a compaction writes a new
 * snapshot in the background, streaming, and drops the old journal (compaction.ts). A
 * clean close() compacts too, so a store at rest is one file again.
 *
 * Records are copy-on-write and frozen: update() works on a clone and swaps it in, so
 * records handed out earlier stay consistent snapshots. Never mutate a returned record;
 * use update().
 *
 * Size: the store keeps every record in memory and refuses to open more than
 * MAX_JSON_ACCOUNTS (store-limits.ts, with the measurements); past that, PostgreSQL.
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Low } from 'lowdb';
import { removeStaleTemps } from './atomic-file.js';
import { StoreClosedError, StoreReadOnlyError, StoreUnavailableError } from './errors.js';
import { acquireLock, lockPathFor, type StoreLock } from './lock.js';
import {
  applyUpdate,
  deepFreeze,
  settleRecord,
  newRecord,
  normalizeAddress,
  tryNormalize,
} from './records.js';
import { emptyStoreData, StoreFileAdapter, type StoreData } from './store-file.js';
import {
  COMPACT_JOURNAL_SHARE,
  COMPACT_MIN_JOURNAL_BYTES,
  COMPACT_RETRY_MS,
  RETRY_AFTER_ERROR_MS,
  nearLimitWarning,
} from './store-limits.js';
import type { JsonStore, JsonStoreOptions, StoreStatus } from './json-store-options.js';
import { KeyOrder } from './key-order.js';
import { LocalCluster } from './local-cluster.js';
import { FileSideData } from './side-data.js';
import { SaveRecord } from './save-record.js';
import { StateIndex } from './state-index.js';
import type {
  AccountCounts,
  AccountFilter,
  AccountPatch,
  AccountRecord,
  Cluster,
  DueQuery,
  SideData,
  SweepQuery,
} from './types.js';

export type { JsonStore, JsonStoreOptions, StoreStatus } from './json-store-options.js';

export async function openJsonStore(
  path: string,
  options: JsonStoreOptions = {},
): Promise<JsonStore> {
  const file = resolve(path);
  if (!options.readOnly) await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const lock = options.readOnly
    ? undefined
    : acquireLock(lockPathFor(file), { storePath: file, onWarning: options.onWarning });
  try {
    if (lock) await removeStaleTemps(file);
    const adapter = options.adapter ?? new StoreFileAdapter(file, { readOnly: !lock });
    const db = new Low<StoreData>(adapter, emptyStoreData());
    await db.read();
    if (lock) await adapter.prepareForWrites();
    const store = new JsonStoreImpl(file, db, adapter, lock, options);
    store.compactIfDue();
    return store;
  } catch (err) {
    lock?.release();
    throw err;
  }
}

class JsonStoreImpl implements JsonStore {
  readonly cluster: Cluster;
  readonly side: SideData = new FileSideData(this, () => !this.lock);
  private readonly accounts: Map<string, AccountRecord>;
  private readonly index: StateIndex;
  private readonly order: KeyOrder;
  private readonly saveDelayMs: number;
  private readonly now: () => Date;
  private readonly saveRecord: SaveRecord;
  private readonly onWarning: (message: string) => void;
  private readonly compactMinBytes: number;
  private dirty = false;
  /** changes made since open, and how many of them are durable */
  private changeSeq = 0;
  private savedSeq = 0;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  private notBefore = 0;
  private compacting: Promise<void> | undefined;
  private compactNotBefore = 0;
  private warnedSize = false;

  constructor(
    readonly location: string,
    private readonly db: Low<StoreData>,
    private readonly adapter: StoreFileAdapter,
    private readonly lock: StoreLock | undefined,
    options: JsonStoreOptions,
  ) {
    this.accounts = db.data.accounts;
    this.index = new StateIndex(this.accounts.values());
    this.order = new KeyOrder(() => this.accounts.keys());
    this.onWarning = options.onWarning ?? ((m) => process.emitWarning(m));
    this.compactMinBytes = options.compactMinBytes ?? COMPACT_MIN_JOURNAL_BYTES;
    this.saveDelayMs = options.saveDelayMs ?? 100;
    this.now = options.now ?? (() => new Date());
    this.saveRecord = new SaveRecord({
      onSaveError:
        options.onSaveError ??
        ((err) => process.emitWarning(`saving ${location} failed, will retry: ${err.message}`)),
      onSaveRecovered: options.onSaveRecovered,
    });
    this.cluster = new LocalCluster(options.nodeName ?? hostname(), (limit) => this.moving(limit));
  }

  /** Records a move was under way on: a phase, or locked for the switch. */
  private async moving(limit: number): Promise<AccountRecord[]> {
    return this.index.moving((a) => this.handOut(a), limit);
  }

  /**
   * A record as handed out: frozen (StateStore). Records read from disk are frozen here, on
   * their first way out, not at load: freezing 100,000 of them costs a fifth of the load.
   */
  private handOut(key: string): AccountRecord | undefined {
    const rec = this.accounts.get(key);
    return rec && deepFreeze(rec);
  }

  async get(address: string): Promise<AccountRecord | undefined> {
    const key = tryNormalize(address);
    return key === undefined ? undefined : this.handOut(key);
  }

  async list(filter: AccountFilter = {}): Promise<AccountRecord[]> {
    const limit = filter.limit ?? Infinity;
    const out: AccountRecord[] = [];
    const states = filter.state === undefined ? undefined : [filter.state].flat();
    const keys =
      filter.after !== undefined
        ? this.order.after(filter.after)
        : states
          ? states.flatMap((s) => [...this.index.addresses(s)])
          : this.accounts.keys();
    for (const key of keys) {
      if (out.length >= limit) break;
      const rec = this.handOut(key)!;
      if (states && !states.includes(rec.state)) continue;
      if (!filter.moving || rec.transferPhase) out.push(rec);
    }
    return out;
  }

  async due(query: DueQuery): Promise<AccountRecord[]> {
    return this.index.due((a) => this.handOut(a), query);
  }

  async dueSweeps(query: SweepQuery): Promise<AccountRecord[]> {
    return this.index.dueSweeps((a) => this.handOut(a), query);
  }

  /** The store takes changes unless its saves are failing (then the journal is behind). */
  async ping(): Promise<void> {
    if (this.closed) throw new StoreClosedError(this.location);
    const { failingSince, lastError } = this.saveRecord;
    if (failingSince && lastError) throw new StoreUnavailableError(this.location, lastError);
  }

  async counts(): Promise<AccountCounts> {
    return this.index.counts();
  }

  async count(): Promise<number> {
    return this.accounts.size;
  }

  /** Shallow merge: a patch's `folders` replaces the whole map; `undefined` clears a field. */
  async upsert(address: string, patch: AccountPatch): Promise<AccountRecord> {
    this.assertOpen();
    const key = normalizeAddress(address);
    const old = this.accounts.get(key);
    const nowIso = this.now().toISOString();
    const next: AccountRecord = {
      ...(old ?? newRecord(key, nowIso)),
      ...structuredClone(patch),
      address: key,
    };
    return this.commit(key, old, next, nowIso);
  }

  /**
   * Creates the record (state unknown) when missing, like upsert. `fn` must be synchronous:
   * it runs in the same turn of the event loop as the call, so nothing comes in between.
   */
  async update(address: string, fn: (rec: AccountRecord) => void): Promise<AccountRecord> {
    this.assertOpen();
    const key = normalizeAddress(address);
    const old = this.accounts.get(key);
    const nowIso = this.now().toISOString();
    const draft = old ? structuredClone(old) : newRecord(key, nowIso);
    applyUpdate(key, draft, fn);
    return this.commit(key, old, draft, nowIso);
  }

  async remove(address: string): Promise<boolean> {
    this.assertOpen();
    const key = tryNormalize(address);
    const old = key === undefined ? undefined : this.accounts.get(key);
    if (key === undefined || !old) return false;
    this.accounts.delete(key);
    this.order.invalidate();
    this.index.change(old, undefined);
    this.markDirty(key, null);
    return true;
  }

  /**
   * Resolves once every change made before the call is in the journal, fsynced; changes
   * made meanwhile by others do not hold it up (a login storm would otherwise starve it).
   * Rejects with StoreUnavailableError when the changes could not be written.
   */
  async flush(): Promise<void> {
    const target = this.changeSeq;
    for (;;) {
      if (this.savedSeq >= target) return;
      if (this.saving) {
        await this.saving.catch(() => undefined); // a failed save left us dirty: retried below
        continue;
      }
      if (!this.dirty) return;
      try {
        await this.saveNow();
      } catch (err) {
        throw new StoreUnavailableError(this.location, err as Error);
      }
    }
  }

  /** Saves, then compacts so the store at rest is one file; a failed compaction loses nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.compacting?.catch(() => undefined);
      await this.flush();
      if (this.lock && this.adapter.journalBytes > 0) {
        await this.compactNow().catch((err: Error) =>
          this.onWarning(`compacting ${this.location} at close failed: ${err.message}`),
        );
      }
    } finally {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.lock?.release();
    }
  }

  status(): StoreStatus {
    return {
      accounts: this.accounts.size,
      dirty: this.dirty,
      saving: this.saving !== undefined,
      ...this.saveRecord.figures(),
      journalBytes: this.adapter.journalBytes,
      snapshotBytes: this.adapter.snapshotBytes,
      compacting: this.compacting !== undefined,
    };
  }

  /** Start a compaction in the background when the journal is due for one. */
  compactIfDue(): void {
    if (this.compacting || this.closed || !this.lock || this.saveRecord.failingSince) return;
    if (Date.now() < this.compactNotBefore) return;
    const journal = this.adapter.journalBytes;
    if (
      journal < Math.max(this.compactMinBytes, this.adapter.snapshotBytes * COMPACT_JOURNAL_SHARE)
    )
      return;
    this.compactNow().catch((err: Error) => {
      this.compactNotBefore = Date.now() + COMPACT_RETRY_MS;
      // The journal still holds every change: a warning, not a save failure.
      this.onWarning(`compacting ${this.location} failed, will retry: ${err.message}`);
    });
  }

  compact(): Promise<void> {
    this.assertOpen();
    return this.compactNow();
  }

  private compactNow(): Promise<void> {
    if (this.compacting) return this.compacting;
    const started = performance.now();
    const run = this.adapter.compact(this.db.data).then(
      () => this.saveRecord.compacted(performance.now() - started),
      (err: Error) => {
        this.saveRecord.compactionFailed(err);
        throw err;
      },
    );
    const tracked = run.finally(() => (this.compacting = undefined));
    this.compacting = tracked;
    return tracked;
  }

  private commit(
    key: string,
    old: AccountRecord | undefined,
    next: AccountRecord,
    nowIso: string,
  ): AccountRecord {
    settleRecord(old, next, nowIso);
    this.accounts.set(key, deepFreeze(next));
    if (!old) this.order.invalidate();
    this.index.change(old, next);
    this.markDirty(key, next);
    if (!old) this.checkSize();
    return next;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.location);
    if (!this.lock) throw new StoreReadOnlyError(this.location);
  }

  private markDirty(key: string, rec: AccountRecord | null): void {
    const changes = this.db.data.changes;
    changes.delete(key); // keep the map in the order of the last change
    changes.set(key, rec);
    this.changeSeq++;
    this.dirty = true;
    this.schedule();
  }

  private checkSize(): void {
    if (this.warnedSize) return;
    const warning = nearLimitWarning(this.location, this.accounts.size, this.adapter.maxAccounts);
    if (warning) this.onWarning(warning);
    this.warnedSize = warning !== undefined;
  }

  private schedule(): void {
    if (this.timer || this.saving || this.closed) return;
    const wait = Math.max(this.saveDelayMs, this.notBefore - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.saveNow().catch(() => undefined); // reported through onSaveError
    }, wait);
  }

  private saveNow(): Promise<void> {
    if (this.saving) return this.saving;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return Promise.resolve();
    this.dirty = false;
    const upTo = this.changeSeq;
    const started = performance.now();
    const run = this.db.write().then(
      () => {
        this.savedSeq = Math.max(this.savedSeq, upTo);
        this.notBefore = 0;
        this.saveRecord.saved(performance.now() - started);
      },
      (err: Error) => {
        this.dirty = true;
        this.notBefore = Date.now() + RETRY_AFTER_ERROR_MS;
        this.saveRecord.failed(err);
        throw err;
      },
    );
    const tracked = run.finally(() => {
      this.saving = undefined;
      if (this.dirty) this.schedule();
      else this.compactIfDue();
    });
    this.saving = tracked;
    return tracked;
  }
}
