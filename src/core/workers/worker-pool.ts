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
 *
 * Several gateway nodes may share the store (state/types.ts Cluster): a move or a sweep
 * starts only once this node has claimed the account (claims.ts), and the claim is given
 * back when it is over. Moves a dead node left are repaired by whichever node claims them
 * first (orphans.ts); a node that loses the cluster aborts what it runs, since the others
 * may take it over; an account another node excludes stops here too.
 */
import { openText } from '../state/crypto.js';
import { DEFAULT_CLUSTER_TIMING, type AccountRecord, type ClusterChange } from '../state/types.js';
import type { TransferNowResult } from '../login/login-service.js';
import { Claims } from './claims.js';
import { LateMailSweeper } from './late-mail.js';
import { copy, isDue, recordOutcome } from './move.js';
import { repairOrphans } from './orphans.js';
import type { AbortReason, MigrateOutcome, Running, WorkerDeps } from './worker-types.js';

export type { MigrateFn, MigrateHooks, MigrateOutcome, WorkerDeps } from './worker-types.js';

export class WorkerPool {
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private orphanTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly now: () => number;
  private unsubscribe: Array<() => void> = [];
  /** accounts the operator asked to move now (control transfer.start), in asking order */
  private readonly first = new Set<string>();
  private ticking = false;
  private repairing: Promise<void> | undefined;
  /** after losing the cluster, nothing new starts before this (ms) */
  private pausedUntil = 0;
  private readonly leaseMs: number;
  private readonly claims: Claims;
  private readonly sweeper: LateMailSweeper | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.leaseMs = deps.leaseMs ?? DEFAULT_CLUSTER_TIMING.leaseMs;
    this.claims = new Claims(deps.store.cluster, deps.logger);
    this.sweeper = deps.sweep
      ? new LateMailSweeper({
          ...deps,
          sweep: deps.sweep,
          claims: this.claims,
          delaysMs: deps.limits.lateMailSweepMs,
          now: this.now,
        })
      : undefined;
  }

  /**
   * Repair the moves no node runs (orphans.ts; with the JSON store, all a crash
   * interrupted), then take work, and listen to the other nodes.
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.repair();
    const cluster = this.deps.store.cluster;
    this.unsubscribe.push(
      this.deps.bus.on('account.captured', () => this.wake()),
      this.deps.sessions.onQuiet(() => this.wake()),
      cluster.onChange((c) => this.changed(c)),
      cluster.onLost(() => this.lost()),
    );
    this.schedule();
    this.scheduleOrphans();
    this.wake();
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
   * The orphans phase, every few seconds: a node that dies leaves its moves behind once
   * its lease runs out, so looking more often than half a lease gains nothing.
   */
  private scheduleOrphans(): void {
    if (this.orphanTimer) clearTimeout(this.orphanTimer);
    if (this.stopped) return;
    const every =
      this.deps.orphansEveryMs ?? Math.max(this.deps.limits.workerPollMs, this.leaseMs / 2);
    this.orphanTimer = setTimeout(() => {
      // a node that lost the cluster claims nothing for a lease (see lost())
      const phase = Date.now() < this.pausedUntil ? Promise.resolve() : this.repair();
      void phase.then(() => this.scheduleOrphans());
    }, every);
    this.orphanTimer.unref?.();
  }

  /** One orphans phase at a time; what it repaired to captured is work: wake the pool. */
  private repair(): Promise<void> {
    this.repairing ??= repairOrphans({
      store: this.deps.store,
      logger: this.deps.logger,
      claims: this.claims,
      stopped: () => this.stopped,
    })
      .then((n) => void (n > 0 && this.wake()))
      .catch((err) =>
        this.deps.logger.error('cannot look for interrupted moves; will retry', { err }),
      )
      .finally(() => (this.repairing = undefined));
    return this.repairing;
  }

  /** Another node changed an account: its captures are work, its excludes stop moves here. */
  private changed(c: ClusterChange): void {
    if (c.state === 'captured') this.wake();
    if (c.state === 'excluded') this.abort(c.address, 'excluded');
  }

  /**
   * This node could not heartbeat for a lease: the other nodes may take its claims now.
   * What it runs stops (not the accounts' fault: no failure is counted), and nothing new
   * starts for a lease: a claim this node made meanwhile could be taken over at once.
   */
  private lost(): void {
    this.pausedUntil = Date.now() + this.leaseMs;
    const moves = [...this.running.keys()];
    this.deps.logger.warn('this node lost the cluster: aborting its moves and sweeps', {
      moves,
      sweeps: this.sweeper?.active ?? 0,
    });
    for (const address of moves) this.abort(address, 'lost');
    void this.sweeper?.stop();
  }

  private abort(address: string, why: AbortReason): void {
    const r = this.running.get(address.toLowerCase());
    if (!r || r.aborted) return;
    r.aborted = why;
    r.controller.abort(new Error(`${address}: move aborted (${why})`));
  }

  /**
   * Who is next: what the operator put first, then captured before failed, quiet accounts
   * before busy ones, oldest first. The store answers from its index (StateStore.due), at
   * most `limit` records: those running or with their user online are passed over, hence
   * the margin the caller gives. One with a move phase is being moved by another node (or
   * is an orphan the orphans phase repairs).
   */
  async candidates(limit = 1000): Promise<AccountRecord[]> {
    const now = this.now();
    const lim = this.deps.limits;
    const asked: AccountRecord[] = [];
    for (const a of [...this.first]) {
      const rec = await this.deps.store.get(a);
      if (rec?.state !== 'captured') this.first.delete(a);
      else if (rec.credentials && !this.busyHere(a)) asked.push(rec);
    }
    const due = await this.deps.store.due({
      now: new Date(now),
      maxAttempts: lim.maxTransferAttempts,
      limit: limit + this.running.size + asked.length,
    });
    const rest: AccountRecord[] = [];
    for (const rec of due) {
      if (this.busyHere(rec.address) || this.first.has(rec.address) || rec.transferPhase) continue;
      if (this.deps.sessions.count(rec.address) > 0) {
        const since = Date.parse(rec.lastLogin ?? rec.updatedAt);
        if (now - since < lim.sessionQuietMaxWaitMs) continue;
      }
      rest.push(rec);
    }
    return [...asked, ...rest];
  }

  private busyHere(address: string): boolean {
    return this.running.has(address) || this.claims.has(address);
  }

  /** One tick at a time: a second one would pick the accounts the first is starting. */
  private async tick(): Promise<void> {
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      await this.abortExcluded();
      if (Date.now() < this.pausedUntil) return;
      const free = this.deps.concurrency() - this.running.size - (this.sweeper?.active ?? 0);
      if (free <= 0) return;
      // candidates other nodes hold are passed over: hence more than `free` are asked for
      let started = 0;
      for (const cand of await this.candidates(free * 4 + 100)) {
        if (this.stopped) return;
        if (started >= free) break;
        if (await this.startClaimed(cand.address)) started++;
      }
      // moves first; the slots they leave free go to due sweeps
      if (!this.stopped) await this.sweeper?.startDue(free - started);
    } catch (err) {
      this.deps.logger.error('the worker pool could not read the store; will retry', { err });
    } finally {
      this.ticking = false;
    }
  }

  /** Claim the account and start its move if it is still due; false when it did not start. */
  private async startClaimed(address: string): Promise<boolean> {
    if (this.running.has(address) || !(await this.claims.take(address))) return false;
    let password: string | undefined;
    try {
      const rec = await this.deps.store.get(address);
      if (rec && isDue(rec, this.deps.limits, this.now()) && !this.stopped)
        password = await this.openPassword(rec);
    } catch (err) {
      this.deps.logger.error('the worker pool could not read the store; will retry', {
        address,
        err,
      });
    }
    if (password === undefined) {
      await this.claims.give(address);
      return false;
    }
    void this.run(address, password);
    return true;
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

  /** Pre-copy, lock, switch, record, on a claimed account; never leaves it `transferring`. */
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
      const deps = { ...this.deps, sweeper: this.sweeper, now: this.now };
      outcome = await copy(deps, entry, { address, password }, () => this.locked(address));
      outcome = await recordOutcome(deps, entry, address, outcome, attempt);
      await this.deps.store.flush();
    } catch (err) {
      this.deps.logger.error('saving the transfer result failed', { address, err });
    }
    // whatever happened, the account is free for the next move (here or on another node)
    await this.claims.give(address);
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

  /**
   * Strategy immediate: move this account now while its user waits, at most `waitMs`.
   * On timeout the transfer is aborted (it resumes later from its checkpoints) and the
   * caller proxies the session to the source. 'busy' when it is moving already, here or
   * on another node.
   */
  async transferNow(address: string, password: string, waitMs: number): Promise<TransferNowResult> {
    const key = address.toLowerCase();
    if (Date.now() < this.pausedUntil) return 'busy';
    if (this.running.has(key) || !(await this.claims.take(key))) return 'busy';
    let state: string | undefined;
    try {
      state = (await this.deps.store.get(key))?.state;
    } catch (err) {
      this.deps.logger.error('the worker pool could not read the store', { address: key, err });
    }
    // another node may have moved it since the login read it
    if (state !== 'captured' && state !== 'failed') {
      await this.claims.give(key);
      return state === 'migrated' ? 'migrated' : 'busy';
    }
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

  /** Abort what runs (state back to captured, claims given back) and stop taking work. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.orphanTimer);
    this.claims.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const all = [...this.running.values()];
    for (const r of all) {
      r.aborted = 'stop';
      r.controller.abort();
    }
    await Promise.all([...all.map((r) => r.done), this.sweeper?.stop(), this.repairing]);
  }
}
