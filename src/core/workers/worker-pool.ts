/**
 * The worker pool inside `autoport proxy`: captured accounts are moved by the copy engine,
 * N at a time (transfer.concurrency), preferably once their user has no open session (the
 * white paper's "just finished checking their email"); failed ones are retried with
 * exponential backoff. A move has two phases (transfer/migrate-account.ts): a pre-copy
 * while the source still serves the account, then a short switch for which the account is
 * locked (state transferring); when the lock starts (onLocked) its sessions still open to
 * the source are closed, so nothing changes on the source behind the final pass's back.
 * An account the operator excludes during its pre-copy has its move aborted.
 */
import type { EventBus, TransferProgress } from '../bus.js';
import type { GatewayLimits } from '../limits.js';
import type { Logger } from '../log/logger.js';
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountRecord, StateStore, TransferLock } from '../state/types.js';
import { isHandedOver } from '../transfer/handover.js';
import type { TransferNowResult } from '../login/login-service.js';
import type { SessionRegistry } from '../sessions/registry.js';

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

  constructor(private readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Moves a crash interrupted are ours to resume (the store lock says so): one in its
   * pre-copy was never locked and only loses its phase; one locked for its switch goes
   * back to captured (the pool moves it again), or to migrated when it had already been
   * handed over to the user (transfer/handover.ts).
   */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const r of this.deps.store.list())
      if (r.transferPhase)
        this.deps.store.update(r.address, (rec) => void (rec.transferPhase = undefined));
    const locked = this.deps.store.list({ state: 'transferring' });
    for (const r of locked)
      this.deps.store.update(r.address, (rec) => void (rec.state = 'captured'));
    void this.unlockHandedOver(locked.map((r) => r.address));
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
        this.deps.store.update(address, (rec) => {
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
    setImmediate(() => this.tick());
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.deps.limits.workerPollMs);
    this.timer.unref?.();
  }

  /**
   * Who is next: what the operator put first, then captured before failed, quiet accounts
   * before busy ones, oldest first.
   */
  candidates(): AccountRecord[] {
    const now = this.now();
    const lim = this.deps.limits;
    const out: Array<{ rec: AccountRecord; rank: number; at: number }> = [];
    const firsts = [...this.first];
    for (const a of firsts) {
      const state = this.deps.store.get(a)?.state;
      if (state !== 'captured') this.first.delete(a);
    }
    for (const rec of this.deps.store.list({ state: ['captured', 'failed'] })) {
      if (this.running.has(rec.address) || !rec.credentials) continue;
      if (this.first.has(rec.address)) {
        out.push({ rec, rank: -1, at: firsts.indexOf(rec.address) });
        continue;
      }
      if (rec.state === 'failed') {
        if ((rec.attempts ?? 0) >= lim.maxTransferAttempts) continue;
        if (rec.nextAttemptAt && Date.parse(rec.nextAttemptAt) > now) continue;
      }
      if (this.deps.sessions.count(rec.address) > 0) {
        const since = Date.parse(rec.lastLogin ?? rec.updatedAt);
        if (now - since < lim.sessionQuietMaxWaitMs) continue;
      }
      const rank = rec.state === 'captured' ? 0 : 1;
      out.push({ rec, rank, at: Date.parse(rec.updatedAt) || 0 });
    }
    return out.sort((a, b) => a.rank - b.rank || a.at - b.at).map((x) => x.rec);
  }

  private tick(): void {
    if (this.stopped) return;
    this.abortExcluded();
    const free = this.deps.concurrency() - this.running.size;
    if (free <= 0) return;
    for (const rec of this.candidates().slice(0, free)) {
      let password: string;
      try {
        password = openText(this.deps.keyring, rec.credentials!, rec.address);
      } catch (err) {
        this.deps.logger.error('cannot open captured credentials; account left failed', {
          address: rec.address,
          err,
        });
        this.deps.store.update(rec.address, (r) => {
          r.state = 'failed';
          r.reason = (err as Error).message;
          r.attempts = this.deps.limits.maxTransferAttempts;
        });
        continue;
      }
      void this.run(rec.address, password);
    }
  }

  /** `accounts exclude` during a pre-copy: the move stops, the account stays on the source. */
  private abortExcluded(): void {
    for (const [address, r] of this.running) {
      if (r.aborted || this.deps.store.get(address)?.state !== 'excluded') continue;
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
    const startedAt = this.now();
    const attempt = (this.deps.store.get(address)?.attempts ?? 0) + 1;
    this.deps.bus.emit({
      type: 'transfer.started',
      at: new Date().toISOString(),
      address,
      attempt,
    });
    entry.done = (async (): Promise<MigrateOutcome> => {
      let outcome: MigrateOutcome;
      try {
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
        outcome = await this.deps.migrate({ address, password }, controller.signal, {
          onProgress,
          onLocked: () => this.locked(address),
        });
      } catch (err) {
        // a move that failed after its switch carries its lock on the error (migrate.ts)
        const lock = (err as { lock?: TransferLock }).lock;
        outcome = { ok: false, detail: (err as Error).message, ...(lock ? { lock } : {}) };
      }
      const rec = this.deps.store.get(address);
      if (entry.aborted) {
        // Our own abort (shutdown, immediate timeout, exclude): not the account's fault;
        // the copy resumes from its checkpoints next time. An excluded account stays so; a
        // migrated one (the abort came after its switch) stays migrated.
        this.deps.store.update(address, (r) => {
          r.transferPhase = undefined;
          if (r.state !== 'excluded' && r.state !== 'migrated') r.state = 'captured';
          r.attempts = Math.max(0, (r.attempts ?? 1) - 1);
        });
        outcome = { ok: false, detail: `aborted (${entry.aborted})`, lock: outcome.lock };
      } else if (outcome.ok) {
        if (rec?.state !== 'migrated')
          this.deps.store.update(address, (r) => void (r.state = 'migrated'));
      } else if (rec?.state === 'excluded' || rec?.state === 'migrated') {
        // excluded at the switch, or a re-run of an account already handed over to the
        // user (record() kept it migrated): neither goes back in the retry queue
      } else {
        const attempts = rec?.attempts ?? attempt;
        const wait = Math.min(
          this.deps.limits.retryMaxMs,
          this.deps.limits.retryBaseMs * 2 ** Math.max(0, attempts - 1),
        );
        this.deps.store.update(address, (r) => {
          r.state = 'failed';
          r.reason ??= outcome.detail;
          r.nextAttemptAt = new Date(this.now() + wait).toISOString();
        });
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
      await this.deps.store
        .flush()
        .catch((err: unknown) =>
          this.deps.logger.error('saving the transfer result failed', { address, err }),
        );
      this.running.delete(address);
      this.wake();
      return outcome;
    })();
    return entry.done;
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
    await Promise.all(all.map((r) => r.done));
  }
}
