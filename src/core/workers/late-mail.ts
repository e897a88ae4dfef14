/**
 * Late-mail sweeps, run by the worker pool after an account's switch: a message the
 * source's MTA accepted just before the lock but delivered after the final pass listed
 * the folder (its queue, LMTP delays, a sieve) would otherwise stay on the source. The
 * times are kept on the record (`sweepAt`), so a restart resumes them; each sweep, done or
 * failed, takes its time off, and the last one clears it. A failed sweep is logged and
 * the next one tries again: the account stays migrated whatever happens
 * (transfer/sweep.ts copies only what is new on the source).
 */
import type { EventBus } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountRecord, StateStore } from '../state/types.js';

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
  /** account -> its next sweep time (ms): read from the store once at start, then kept here */
  private readonly next = new Map<string, number>();

  constructor(private readonly deps: SweeperDeps) {}

  get active(): number {
    return this.running.size;
  }

  /** The sweeps a restart interrupted or left due: one scan of the migrated accounts. */
  async load(): Promise<void> {
    for (const rec of await this.deps.store.list({ state: 'migrated' }))
      if (rec.sweepAt?.length) this.next.set(rec.address, Date.parse(rec.sweepAt[0]!));
  }

  /** The account was just switched: its sweeps are due from now on. */
  async schedule(address: string): Promise<void> {
    if (this.deps.delaysMs.length === 0) return;
    const times = sweepTimes(this.deps.now(), this.deps.delaysMs);
    await this.deps.store.update(address, (rec) => void (rec.sweepAt = times));
    this.next.set(address, Date.parse(times[0]!));
  }

  /** Accounts whose next sweep is due, earliest first. */
  due(): string[] {
    const now = this.deps.now();
    return [...this.next]
      .filter(([address, at]) => at <= now && !this.running.has(address))
      .sort((a, b) => a[1] - b[1])
      .map(([address]) => address);
  }

  /** Start up to `free` due sweeps. */
  async startDue(free: number): Promise<void> {
    let started = 0;
    for (const address of this.due()) {
      if (started >= free) break;
      const rec = await this.deps.store.get(address);
      // moved back (accounts reset), or its sweeps are gone: nothing to sweep
      if (rec?.state !== 'migrated' || !rec.sweepAt?.length) {
        this.next.delete(address);
        continue;
      }
      const password = this.password(rec);
      if (password === undefined) await this.takeTime(address, true);
      else {
        this.run(address, password);
        started++;
      }
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
        // stopped by the gateway: the same sweep runs again after the restart
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
      this.running.delete(address);
    })();
    this.running.set(address, { controller, done });
  }

  /** This sweep is done (or cannot run): the next time is the next one; none left, none kept. */
  private async takeTime(address: string, all: boolean): Promise<void> {
    const rec = await this.deps.store.update(address, (r) => {
      const rest = all ? [] : (r.sweepAt ?? []).slice(1);
      r.sweepAt = rest.length ? rest : undefined;
    });
    if (rec.sweepAt?.length) this.next.set(address, Date.parse(rec.sweepAt[0]!));
    else this.next.delete(address);
  }

  async stop(): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort();
    await Promise.all(all.map((r) => r.done));
  }
}
