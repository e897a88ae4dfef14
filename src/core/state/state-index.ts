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
} from './types.js';

export class StateIndex {
  private readonly byState = new Map<AccountState, Set<string>>(
    ACCOUNT_STATES.map((s) => [s, new Set<string>()]),
  );
  private queue = 0;

  constructor(records: Iterable<AccountRecord>) {
    const sorted = Array.from(records).sort((a, b) => cmp(a.updatedAt, b.updatedAt));
    for (const rec of sorted) this.change(undefined, rec);
  }

  /** Call after a record changed: old is what was stored before, next what is now. */
  change(old: AccountRecord | undefined, next: AccountRecord | undefined): void {
    if (old && isQueued(old)) this.queue--;
    if (next && isQueued(next)) this.queue++;
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

function isQueued(rec: AccountRecord): boolean {
  return rec.state === 'captured' && rec.credentials !== undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
