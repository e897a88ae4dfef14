/**
 * The worker pool inside `autoport proxy`: captured accounts are moved by the copy engine,
 * N at a time (transfer.concurrency), preferably once their user has no open session (the
 * white paper's "just finished checking their email"); failed ones are retried with
 * exponential backoff. A move has two phases (transfer/migrate-account.ts): a pre-copy
 * while the source still serves the account, then a short switch for which the account is
 * locked (state transferring); when the lock starts (onLocked) its sessions still open to
 * the source are closed, so nothing changes on the source behind the final pass's back.
 * An account the operator excludes during its pre-copy has its move aborted. After a
 * switch, late-mail sweeps (late-mail.ts) copy what still reached the source; they share
 * the pool's slots with the moves.
 */
import type { EventBus, TransferProgress } from '../bus.js';
import type { GatewayLimits } from '../limits.js';
import type { Logger } from '../log/logger.js';
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountRecord, StateStore, TransferLock } from '../state/types.js';
import { isHandedOver } from '../transfer/handover.js';
import type { TransferNowResult } from '../login/login-service.js';
import type { SessionRegistry } from '../sessions/registry.js';
import { LateMailSweeper, type SweepFn } from './late-mail.js';

export interface MigrateOutcome {
  ok: boolean;
  detail?: string;
  /** the switch, when the move got that far */
  lock?: TransferLock;
}

export interface MigrateHooks {
  onProgress?: (p: TransferProgress) => void;
  /** the account was just locked for the switch: close its source sessions now */
  onLocked?: () => void | Promise<void>;
}

/** Moves one account (the copy engine's migrateAccount, wrapped by the gateway). */
export type MigrateFn = (
  req: { address: string; password: string },
  signal: AbortSignal,
  hooks?: MigrateHooks,
) => Promise<MigrateOutcome>;

/** copy progress reaches the bus at most this often per account (phase changes always do) */
const PROGRESS_EVERY_MS = 250;

export interface WorkerDeps {
  store: StateStore;
  keyring: Keyring;
  bus: EventBus;
  logger: Logger;
  sessions: SessionRegistry;
  migrate: MigrateFn;
  /** late-mail sweeps after a switch (none without it) */
  sweep?: SweepFn;
  concurrency: () => number;
  limits: GatewayLimits;
  now?: () => number;
}

interface Running {
  controller: AbortController;
  done: Promise<MigrateOutcome>;
  /** why we aborted it, if we did */
  aborted?: 'stop' | 'timeout' | 'excluded';
}

export class WorkerPool {
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly now: () => number;
  private unsubscribe: Array<() => void> = [];
  /** accounts the operator asked to move now (control transfer.start), in asking order */
  private readonly first = new Set<string>();
  private ticking = false;
  private readonly sweeper: LateMailSweeper | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.sweeper = deps.sweep
      ? new LateMailSweeper({
          ...deps,
          sweep: deps.sweep,
          delaysMs: deps.limits.lateMailSweepMs,
          now: this.now,
        })
      : undefined;
  }

  /**
   * Moves a crash interrupted are ours to resume (the store lock says so): one in its
   * pre-copy was never locked and only loses its phase; one locked for its switch goes
   * back to captured (the pool moves it again), or to migrated when it had already been
   * handed over to the user (transfer/handover.ts).
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    for (const r of await this.deps.store.list({ moving: true }))
      await this.deps.store.update(r.address, (rec) => void (rec.transferPhase = undefined));
    const locked = await this.deps.store.list({ state: 'transferring' });
    for (const r of locked)
      await this.deps.store.update(r.address, (rec) => {
        if (rec.state === 'transferring') rec.state = 'captured';
      });
    void this.unlockHandedOver(locked.map((r) => r.address));
    await this.sweeper?.load();
    this.unsubscribe.push(
      this.deps.bus.on('account.captured', () => this.wake()),
      this.deps.sessions.onQuiet(() => this.wake()),
    );
    this.schedule();
    this.wake();
  }

  private async unlockHandedOver(addresses: string[]): Promise<void> {
    for (const address of addresses) {
      try {
        if (!(await isHandedOver(this.deps.store, address, undefined))) continue;
        await this.deps.store.update(address, (rec) => {
          if (rec.state === 'captured') rec.state = 'migrated';
        });
      } catch (err) {
        this.deps.logger.error('cannot tell whether an interrupted move was handed over', {
          address,
          err,
        });
      }
    }
  }

  get active(): string[] {
    return [...this.running.keys()];
  }

  /**
   * Put a captured account first in line and stop waiting for its user to go quiet: the
   * operator asked for it now. It still waits for a free slot.
   */
  prioritize(address: string): void {
    this.first.add(address.toLowerCase());
  }

  wake(): void {
    if (this.stopped) return;
    setImmediate(() => void this.tick());
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick();
      this.schedule();
    }, this.deps.limits.workerPollMs);
    this.timer.unref?.();
  }

  /**
   * Who is next: what the operator put first, then captured before failed, quiet accounts
   * before busy ones, oldest first. The store answers from its index (StateStore.due), at
   * most `limit` records: those running or with their user online are passed over, hence
   * the margin the caller gives.
   */
  async candidates(limit = 1000): Promise<AccountRecord[]> {
    const now = this.now();
    const lim = this.deps.limits;
    const asked: AccountRecord[] = [];
    for (const a of [...this.first]) {
      const rec = await this.deps.store.get(a);
      if (rec?.state !== 'captured') this.first.delete(a);
      else if (rec.credentials && !this.running.has(a)) asked.push(rec);
    }
    const due = await this.deps.store.due({
      now: new Date(now),
      maxAttempts: lim.maxTransferAttempts,
      limit: limit + this.running.size + asked.length,
    });
    const rest: AccountRecord[] = [];
    for (const rec of due) {
      if (this.running.has(rec.address) || this.first.has(rec.address)) continue;
      if (this.deps.sessions.count(rec.address) > 0) {
        const since = Date.parse(rec.lastLogin ?? rec.updatedAt);
        if (now - since < lim.sessionQuietMaxWaitMs) continue;
      }
      rest.push(rec);
    }
    return [...asked, ...rest];
  }

  /** One tick at a time: a second one would pick the accounts the first is starting. */
  private async tick(): Promise<void> {
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      await this.abortExcluded();
      const free = this.deps.concurrency() - this.running.size - (this.sweeper?.active ?? 0);
      if (free <= 0) return;
      const moves = (await this.candidates(free * 4 + 100)).slice(0, free);
      // moves first; the slots they leave free go to due sweeps
      await this.sweeper?.startDue(free - moves.length);
      for (const rec of moves) {
        if (this.stopped) return;
        const password = await this.openPassword(rec);
        if (password !== undefined) void this.run(rec.address, password);
      }
    } catch (err) {
      this.deps.logger.error('the worker pool could not read the store; will retry', { err });
    } finally {
      this.ticking = false;
    }
  }

  private async openPassword(rec: AccountRecord): Promise<string | undefined> {
    try {
      return openText(this.deps.keyring, rec.credentials!, rec.address);
    } catch (err) {
      this.deps.logger.error('cannot open captured credentials; account left failed', {
        address: rec.address,
        err,
      });
      await this.deps.store.update(rec.address, (r) => {
        r.state = 'failed';
        r.reason = (err as Error).message;
        r.attempts = this.deps.limits.maxTransferAttempts;
      });
      return undefined;
    }
  }

  /** `accounts exclude` during a pre-copy: the move stops, the account stays on the source. */
  private async abortExcluded(): Promise<void> {
    for (const [address, r] of this.running) {
      if (r.aborted || (await this.deps.store.get(address))?.state !== 'excluded') continue;
      r.aborted = 'excluded';
      r.controller.abort(new Error(`${address} was excluded during its pre-copy`));
    }
  }

  /** The switch began: the account is locked; its sessions on the source are closed. */
  private locked(address: string): void {
    const kicked = this.deps.sessions.kick(address, 'account-locked');
    if (kicked)
      this.deps.logger.info('closed open source sessions for the switch', {
        address,
        sessions: kicked,
      });
    this.deps.bus.emit({ type: 'transfer.switching', at: new Date().toISOString(), address });
  }

  /** Pre-copy, lock, switch, record; never leaves the account `transferring`. */
  private run(address: string, password: string): Promise<MigrateOutcome> {
    const controller = new AbortController();
    const entry: Running = { controller, done: Promise.resolve({ ok: false }) };
    this.running.set(address, entry);
    this.first.delete(address);
    entry.done = this.move(entry, address, password);
    return entry.done;
  }

  private async move(entry: Running, address: string, password: string): Promise<MigrateOutcome> {
    const startedAt = this.now();
    let outcome: MigrateOutcome = { ok: false };
    try {
      const attempt = ((await this.deps.store.get(address))?.attempts ?? 0) + 1;
      this.deps.bus.emit({
        type: 'transfer.started',
        at: new Date().toISOString(),
        address,
        attempt,
      });
      outcome = await this.copy(entry, address, password);
      outcome = await this.record(entry, address, outcome, attempt);
      await this.deps.store.flush();
    } catch (err) {
      this.deps.logger.error('saving the transfer result failed', { address, err });
    }
    this.deps.bus.emit({
      type: 'transfer.finished',
      at: new Date().toISOString(),
      address,
      ok: outcome.ok,
      ...(entry.aborted ? { aborted: true } : {}),
      durationMs: this.now() - startedAt,
      detail: outcome.detail,
      ...(outcome.lock ? { lock: outcome.lock } : {}),
    });
    this.running.delete(address);
    this.wake();
    return outcome;
  }

  private async copy(entry: Running, address: string, password: string): Promise<MigrateOutcome> {
    let lastProgress = 0;
    let lastPhase = '';
    const onProgress = (p: TransferProgress): void => {
      const t = this.now();
      const key = `${p.folder}\0${p.phase}`;
      if (key === lastPhase && t - lastProgress < PROGRESS_EVERY_MS) return;
      lastProgress = t;
      lastPhase = key;
      this.deps.bus.emit({
        type: 'transfer.progress',
        at: new Date(t).toISOString(),
        address,
        ...p,
      });
    };
    try {
      return await this.deps.migrate({ address, password }, entry.controller.signal, {
        onProgress,
        onLocked: () => this.locked(address),
      });
    } catch (err) {
      // a move that failed after its switch carries its lock on the error (migrate.ts)
      const lock = (err as { lock?: TransferLock }).lock;
      return { ok: false, detail: (err as Error).message, ...(lock ? { lock } : {}) };
    }
  }

  /** The outcome on the record, decided inside the update (the operator may act meanwhile). */
  private async record(
    entry: Running,
    address: string,
    outcome: MigrateOutcome,
    attempt: number,
  ): Promise<MigrateOutcome> {
    if (entry.aborted) {
      // Our own abort (shutdown, immediate timeout, exclude): not the account's fault;
      // the copy resumes from its checkpoints next time. An excluded account stays so; a
      // migrated one (the abort came after its switch) stays migrated.
      await this.deps.store.update(address, (r) => {
        r.transferPhase = undefined;
        if (r.state !== 'excluded' && r.state !== 'migrated') r.state = 'captured';
        r.attempts = Math.max(0, (r.attempts ?? 1) - 1);
      });
      return { ok: false, detail: `aborted (${entry.aborted})`, lock: outcome.lock };
    }
    if (outcome.ok) await this.sweeper?.schedule(address);
    await this.deps.store.update(address, (r) => {
      if (outcome.ok) {
        r.state = 'migrated';
        return;
      }
      // excluded at the switch, or a re-run of an account already handed over to the
      // user (record() kept it migrated): neither goes back in the retry queue
      if (r.state === 'excluded' || r.state === 'migrated') return;
      const wait = Math.min(
        this.deps.limits.retryMaxMs,
        this.deps.limits.retryBaseMs * 2 ** Math.max(0, (r.attempts ?? attempt) - 1),
      );
      r.state = 'failed';
      r.reason ??= outcome.detail;
      r.nextAttemptAt = new Date(this.now() + wait).toISOString();
    });
    return outcome;
  }

  /**
   * Strategy immediate: move this account now while its user waits, at most `waitMs`.
   * On timeout the transfer is aborted (it resumes later from its checkpoints) and the
   * caller proxies the session to the source.
   */
  async transferNow(address: string, password: string, waitMs: number): Promise<TransferNowResult> {
    const key = address.toLowerCase();
    if (this.running.has(key)) return 'busy';
    const entry = { p: this.run(key, password) };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), waitMs)),
    );
    const r = await Promise.race([entry.p, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      const running = this.running.get(key);
      if (running) {
        running.aborted = 'timeout';
        running.controller.abort();
        await running.done;
      }
      return 'timeout';
    }
    return r.ok ? 'migrated' : 'failed';
  }

  /** Abort what runs (state back to captured) and stop taking work. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const all = [...this.running.values()];
    for (const r of all) {
      r.aborted = 'stop';
      r.controller.abort();
    }
    await Promise.all([...all.map((r) => r.done), this.sweeper?.stop()]);
  }
}
