/**
 * Late-mail sweeps, run by the worker pool after an account's switch: a message the
 * source's MTA accepted just before the lock but delivered after the final pass listed
 * the folder (its queue, LMTP delays, a sieve) would otherwise stay on the source. The
 * times are kept on the record (`sweepAt`), so a restart resumes them; each sweep, done or
 * failed, takes its time off, and the last one clears it. A failed sweep is logged and
 * the next one tries again: the account stays migrated whatever happens
 * (transfer/sweep.ts copies only what is new on the source). The store names the due
 * sweeps from its index (StateStore.dueSweeps); a sweep runs on the node that claims the
 * account (claims.ts), like a move.
 */
import type { EventBus } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import type { Claims } from './claims.js';

/** after the switch: one minute (the MTA's queue, LMTP), ten minutes (a retry of the queue) */
export const DEFAULT_SWEEP_DELAYS_MS = [60_000, 600_000];

export interface SweepOutcome {
  messages: number;
  bytes: number;
  errors: string[];
}

/** Sweeps one migrated account (transfer/sweep.ts, wrapped by the gateway). */
export type SweepFn = (
  req: { address: string; password: string },
  signal: AbortSignal,
) => Promise<SweepOutcome>;

export interface SweeperDeps {
  store: StateStore;
  keyring: Keyring;
  bus: EventBus;
  logger: Logger;
  sweep: SweepFn;
  claims: Claims;
  /** delays after the switch, ascending */
  delaysMs: readonly number[];
  now: () => number;
}

/** The sweep times of an account switched at `at` (ms), as kept on its record. */
export function sweepTimes(at: number, delaysMs: readonly number[]): string[] {
  return delaysMs.map((d) => new Date(at + d).toISOString());
}

export class LateMailSweeper {
  private readonly running = new Map<
    string,
    { controller: AbortController; done: Promise<void> }
  >();

  constructor(private readonly deps: SweeperDeps) {}

  get active(): number {
    return this.running.size;
  }

  /** The account was just switched: its sweeps are due from now on. */
  async schedule(address: string): Promise<void> {
    if (this.deps.delaysMs.length === 0) return;
    const times = sweepTimes(this.deps.now(), this.deps.delaysMs);
    await this.deps.store.update(address, (rec) => void (rec.sweepAt = times));
  }

  /**
   * Start up to `free` due sweeps, earliest first. Those running here, or claimed by
   * another node, are passed over: hence the margin asked of the store.
   */
  async startDue(free: number): Promise<void> {
    if (free <= 0) return;
    const now = this.deps.now();
    const due = await this.deps.store.dueSweeps({
      now: new Date(now),
      limit: free * 4 + this.running.size,
    });
    let started = 0;
    for (const rec of due) {
      if (started >= free) break;
      if (this.running.has(rec.address) || !(await this.deps.claims.take(rec.address))) continue;
      if (await this.startClaimed(rec.address, now)) started++;
      else await this.deps.claims.give(rec.address);
    }
  }

  /** Under the claim: start its sweep if it is still due (true), or say it is not. */
  private async startClaimed(address: string, now: number): Promise<boolean> {
    try {
      // read again under the claim: another node may have swept it since dueSweeps answered
      const rec = await this.deps.store.get(address);
      const at = rec?.sweepAt?.[0];
      // moved back (accounts reset), or its sweeps are gone or done: nothing to sweep
      if (rec?.state !== 'migrated' || at === undefined || Date.parse(at) > now) return false;
      const password = this.password(rec);
      if (password === undefined) {
        await this.takeTime(address, true);
        return false;
      }
      this.run(address, password);
      return true;
    } catch (err) {
      this.deps.logger.error('cannot start a late-mail sweep; will retry', { address, err });
      return false;
    }
  }

  private password(rec: AccountRecord): string | undefined {
    if (!rec.credentials) return undefined;
    try {
      return openText(this.deps.keyring, rec.credentials, rec.address);
    } catch (err) {
      this.deps.logger.error('cannot open credentials for a late-mail sweep', {
        address: rec.address,
        err,
      });
      return undefined;
    }
  }

  /** Sweep the claimed account; the claim is given back when it is over, whatever happened. */
  private run(address: string, password: string): void {
    const controller = new AbortController();
    const done = (async () => {
      let outcome: SweepOutcome;
      try {
        outcome = await this.deps.sweep({ address, password }, controller.signal);
      } catch (err) {
        outcome = { messages: 0, bytes: 0, errors: [(err as Error).message] };
      }
      try {
        // stopped by the gateway, or this node lost the cluster: the same sweep runs
        // again, here after the restart or on the node that claims it next
        if (!controller.signal.aborted) {
          await this.takeTime(address, false);
          this.deps.bus.emit({
            type: 'transfer.swept',
            at: new Date(this.deps.now()).toISOString(),
            address,
            messages: outcome.messages,
            bytes: outcome.bytes,
            ...(outcome.errors.length ? { error: outcome.errors.join('; ') } : {}),
          });
        }
        await this.deps.store.flush();
      } catch (err) {
        this.deps.logger.error('saving a late-mail sweep failed', { address, err });
      }
      await this.deps.claims.give(address);
      this.running.delete(address);
    })();
    this.running.set(address, { controller, done });
  }

  /** This sweep is done (or cannot run): the next time is the next one; none left, none kept. */
  private async takeTime(address: string, all: boolean): Promise<void> {
    await this.deps.store.update(address, (r) => {
      const rest = all ? [] : (r.sweepAt ?? []).slice(1);
      r.sweepAt = rest.length ? rest : undefined;
    });
  }

  /** Abort what runs (its time stays on the record); resolves when it has ended. */
  async stop(): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort();
    await Promise.all(all.map((r) => r.done));
  }
}
