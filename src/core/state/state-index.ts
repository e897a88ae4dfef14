/**
 * The in-memory store's index by state: what the worker pool, the monitor and the metrics
 * ask on every tick or scrape, answered without a scan of every record. Each state keeps
 * its addresses in the order they entered it, which is the order of their updatedAt
 * (updatedAt moves when the state changes), so "oldest first" needs no sort.
 */
import {
  ACCOUNT_STATES,
  type AccountCounts,
  type AccountRecord,
  type AccountState,
  type DueQuery,
  type SweepQuery,
} from './types.js';

export class StateIndex {
  private readonly byState = new Map<AccountState, Set<string>>(
    ACCOUNT_STATES.map((s) => [s, new Set<string>()]),
  );
  private queue = 0;
  /** migrated accounts with sweeps pending: few (the last minutes' switches), kept apart */
  private readonly sweeps = new Set<string>();
  /** records a move was under way on (a phase, or locked): what a restart finds mid-move */
  private readonly movingNow = new Set<string>();

  constructor(records: Iterable<AccountRecord>) {
    const sorted = Array.from(records).sort((a, b) => cmp(a.updatedAt, b.updatedAt));
    for (const rec of sorted) this.change(undefined, rec);
  }

  /** Call after a record changed: old is what was stored before, next what is now. */
  change(old: AccountRecord | undefined, next: AccountRecord | undefined): void {
    if (old && isQueued(old)) this.queue--;
    if (next && isQueued(next)) this.queue++;
    if (old && hasSweeps(old)) this.sweeps.delete(old.address);
    if (next && hasSweeps(next)) this.sweeps.add(next.address);
    if (old && isMoving(old)) this.movingNow.delete(old.address);
    if (next && isMoving(next)) this.movingNow.add(next.address);
    if (old?.state === next?.state) return;
    if (old) this.byState.get(old.state)!.delete(old.address);
    if (next) this.byState.get(next.state)!.add(next.address);
  }

  counts(): AccountCounts {
    const byState = Object.fromEntries(
      ACCOUNT_STATES.map((s) => [s, this.byState.get(s)!.size]),
    ) as Record<AccountState, number>;
    return { byState, queue: this.queue };
  }

  addresses(state: AccountState): Iterable<string> {
    return this.byState.get(state)!;
  }

  /** Records with a transferPhase or state transferring, at most `limit`. */
  moving(get: (address: string) => AccountRecord | undefined, limit: number): AccountRecord[] {
    const out: AccountRecord[] = [];
    for (const address of this.movingNow) {
      if (out.length >= limit) break;
      out.push(get(address)!);
    }
    return out;
  }

  /** See StateStore.dueSweeps. */
  dueSweeps(get: (address: string) => AccountRecord | undefined, q: SweepQuery): AccountRecord[] {
    return dueSweeps(this.sweeps, get, q);
  }

  /** See StateStore.due. */
  due(get: (address: string) => AccountRecord | undefined, q: DueQuery): AccountRecord[] {
    const out: AccountRecord[] = [];
    const now = q.now.getTime();
    for (const state of ['captured', 'failed'] as const) {
      for (const address of this.byState.get(state)!) {
        if (out.length >= q.limit) return out;
        const rec = get(address);
        if (!rec?.credentials) continue;
        if (state === 'failed') {
          if ((rec.attempts ?? 0) >= q.maxAttempts) continue;
          if (rec.nextAttemptAt && Date.parse(rec.nextAttemptAt) > now) continue;
        }
        out.push(rec);
      }
    }
    return out;
  }
}

/** See StateStore.dueSweeps. */
export function dueSweeps(
  addresses: Iterable<string>,
  get: (address: string) => AccountRecord | undefined,
  q: SweepQuery,
): AccountRecord[] {
  const now = q.now.getTime();
  const due: Array<[number, AccountRecord]> = [];
  for (const address of addresses) {
    const rec = get(address);
    const at = rec?.sweepAt?.[0] === undefined ? NaN : Date.parse(rec.sweepAt[0]);
    if (rec && at <= now) due.push([at, rec]);
  }
  return due
    .sort((a, b) => a[0] - b[0])
    .slice(0, q.limit)
    .map(([, rec]) => rec);
}

function isMoving(rec: AccountRecord): boolean {
  return rec.transferPhase !== undefined || rec.state === 'transferring';
}

function hasSweeps(rec: AccountRecord): boolean {
  return rec.state === 'migrated' && (rec.sweepAt?.length ?? 0) > 0;
}

function isQueued(rec: AccountRecord): boolean {
  return rec.state === 'captured' && rec.credentials !== undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
