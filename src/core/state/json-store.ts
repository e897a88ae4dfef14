/**
 * The account store as one JSON document (lowdb with our own crash-safe adapter), held in
 * memory and written back in coalesced saves.
 *
 * Why coalesced: a busy gateway touches accounts many times a second (lastSeen, folder
 * checkpoints); rewriting a 100,000-account file for each would be absurd. A change marks
 * the store dirty and schedules one save `saveDelayMs` later; at most one save runs at a
 * time, and changes made during it trigger the next one. Saves are also spaced by four
 * times the last save's duration, which bounds the disk bandwidth a large store can use.
 * A crash loses at most the changes of the last save interval; a caller that needs a
 * change on disk before it answers (captured credentials, a state change) awaits flush().
 *
 * Records are copy-on-write and frozen: update() works on a clone and swaps it in, so
 * records handed out earlier stay consistent snapshots. Never mutate a returned record;
 * use update().
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { removeStaleTemps } from './atomic-file.js';
import { StoreClosedError, StoreReadOnlyError, StoreUnavailableError } from './errors.js';
import { acquireLock, lockPathFor, type StoreLock } from './lock.js';
import { deepFreeze, isAccountState, newRecord, normalizeAddress } from './records.js';
import { emptyStoreData, StoreFileAdapter, type StoreData } from './store-file.js';
import type { AccountFilter, AccountPatch, AccountRecord, StateStore } from './types.js';

export interface JsonStoreOptions {
  /** delay between the first unsaved change and its save (default 100 ms) */
  saveDelayMs?: number;
  /** replaces the file adapter (tests count writes or inject failures with it) */
  adapter?: Adapter<StoreData>;
  /**
   * Read a store another process may own (reports, `accounts list` while the gateway runs):
   * no lock is taken and every change throws. The snapshot is as of the last save.
   */
  readOnly?: boolean;
  /** stale lock takeover and similar (default: process.emitWarning) */
  onWarning?: (message: string) => void;
  /**
   * Saving failed after working (or since open): called once per episode, not for every
   * retry, so a full disk does not flood the log. Saves are retried every second.
   * Default: process.emitWarning.
   */
  onSaveError?: (err: Error) => void;
  /** a save worked again after onSaveError; `failures` failed saves in that episode */
  onSaveRecovered?: (info: { failures: number; since: Date }) => void;
  now?: () => Date;
}

export interface StoreStatus {
  accounts: number;
  dirty: boolean;
  saving: boolean;
  /** completed saves since open */
  saves: number;
  lastSavedAt?: string;
  lastSaveMs?: number;
  /** message of the last failed save, cleared by the next successful one */
  lastError?: string;
  /** failed saves since open, retries included */
  failures: number;
  /** when the current run of failed saves began (absent while saving works) */
  failingSince?: string;
}

export interface JsonStore extends StateStore {
  /** for health checks: a store that cannot save should make the gateway fail closed */
  status(): StoreStatus;
}

const RETRY_AFTER_ERROR_MS = 1000;
const SPACING_FACTOR = 4;

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
    const db = new Low<StoreData>(options.adapter ?? new StoreFileAdapter(file), emptyStoreData());
    await db.read();
    return new JsonStoreImpl(file, db, lock, options);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

class JsonStoreImpl implements JsonStore {
  private readonly accounts: Map<string, AccountRecord>;
  private readonly saveDelayMs: number;
  private readonly now: () => Date;
  private readonly onSaveError: (err: Error) => void;
  private readonly onSaveRecovered: JsonStoreOptions['onSaveRecovered'];
  private dirty = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  private notBefore = 0;
  private saves = 0;
  private lastSavedAt: string | undefined;
  private lastSaveMs: number | undefined;
  private lastError: Error | undefined;
  private failures = 0;
  private failingSince: Date | undefined;
  private failuresInEpisode = 0;

  constructor(
    readonly location: string,
    private readonly db: Low<StoreData>,
    private readonly lock: StoreLock | undefined,
    options: JsonStoreOptions,
  ) {
    this.accounts = db.data.accounts;
    this.saveDelayMs = options.saveDelayMs ?? 100;
    this.now = options.now ?? (() => new Date());
    this.onSaveError =
      options.onSaveError ??
      ((err) => process.emitWarning(`saving ${location} failed, will retry: ${err.message}`));
    this.onSaveRecovered = options.onSaveRecovered;
  }

  get(address: string): AccountRecord | undefined {
    const key = tryNormalize(address);
    return key === undefined ? undefined : this.accounts.get(key);
  }

  list(filter: AccountFilter = {}): AccountRecord[] {
    const all = Array.from(this.accounts.values());
    if (filter.state === undefined) return all;
    const wanted = new Set(Array.isArray(filter.state) ? filter.state : [filter.state]);
    return all.filter((r) => wanted.has(r.state));
  }

  count(): number {
    return this.accounts.size;
  }

  /** Shallow merge: a patch's `folders` replaces the whole map; `undefined` clears a field. */
  upsert(address: string, patch: AccountPatch): AccountRecord {
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

  /** Creates the record (state unknown) when missing, like upsert. `fn` must be synchronous. */
  update(address: string, fn: (rec: AccountRecord) => void): AccountRecord {
    this.assertOpen();
    const key = normalizeAddress(address);
    const old = this.accounts.get(key);
    const nowIso = this.now().toISOString();
    const draft = old ? structuredClone(old) : newRecord(key, nowIso);
    const ret: unknown = fn(draft);
    if (ret && typeof (ret as PromiseLike<unknown>).then === 'function') {
      throw new TypeError('StateStore.update() takes a synchronous function; nothing was changed');
    }
    if (draft.address !== key)
      throw new TypeError('StateStore.update() must not change the address');
    return this.commit(key, old, draft, nowIso);
  }

  remove(address: string): boolean {
    this.assertOpen();
    const key = tryNormalize(address);
    if (key === undefined || !this.accounts.delete(key)) return false;
    this.markDirty();
    return true;
  }

  /** Rejects with StoreUnavailableError when the changes could not be written. */
  async flush(): Promise<void> {
    for (;;) {
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
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
      saves: this.saves,
      lastSavedAt: this.lastSavedAt,
      lastSaveMs: this.lastSaveMs,
      lastError: this.lastError?.message,
      failures: this.failures,
      failingSince: this.failingSince?.toISOString(),
    };
  }

  private commit(
    key: string,
    old: AccountRecord | undefined,
    next: AccountRecord,
    nowIso: string,
  ): AccountRecord {
    if (!isAccountState(next.state))
      throw new TypeError(`unknown account state ${String(next.state)}`);
    if (typeof next.updatedAt !== 'string') next.updatedAt = old?.updatedAt ?? nowIso;
    if (old && next.state !== old.state && next.updatedAt === old.updatedAt)
      next.updatedAt = nowIso;
    if (!Array.isArray(next.errors)) next.errors = [];
    if (next.folders === null || typeof next.folders !== 'object') next.folders = {};
    this.accounts.set(key, deepFreeze(next));
    this.markDirty();
    return next;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.location);
    if (!this.lock) throw new StoreReadOnlyError(this.location);
  }

  private markDirty(): void {
    this.dirty = true;
    this.schedule();
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
    const started = performance.now();
    const run = this.db.write().then(
      () => {
        const ms = performance.now() - started;
        this.saves++;
        this.lastSaveMs = Math.round(ms * 10) / 10;
        this.lastSavedAt = new Date().toISOString();
        this.lastError = undefined;
        this.notBefore = Date.now() + Math.max(this.saveDelayMs, ms * SPACING_FACTOR);
        if (this.failingSince) {
          const info = { failures: this.failuresInEpisode, since: this.failingSince };
          this.failingSince = undefined;
          this.failuresInEpisode = 0;
          this.onSaveRecovered?.(info);
        }
      },
      (err: Error) => {
        this.dirty = true;
        this.lastError = err;
        this.failures++;
        this.failuresInEpisode++;
        this.notBefore = Date.now() + RETRY_AFTER_ERROR_MS;
        if (!this.failingSince) {
          this.failingSince = new Date();
          this.onSaveError(err);
        }
        throw err;
      },
    );
    const tracked = run.finally(() => {
      this.saving = undefined;
      if (this.dirty) this.schedule();
    });
    this.saving = tracked;
    return tracked;
  }
}

function tryNormalize(address: string): string | undefined {
  try {
    return normalizeAddress(address);
  } catch {
    return undefined;
  }
}
