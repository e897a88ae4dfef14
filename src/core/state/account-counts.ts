/**
 * Accounts by state and the worker pool's queue, for the monitor and the metrics. Both
 * ask often (every snapshot, every scrape); the store answers from an index, but that may
 * be a query to PostgreSQL, so one answer serves every caller of the same store for
 * `ttlMs`: at most one query a second however many monitors watch and Prometheus servers
 * scrape. The figures may lag a change by that much.
 */
import { ACCOUNT_STATES, type AccountCounts, type AccountState, type StateStore } from './types.js';

export type { AccountCounts } from './types.js';

export const ACCOUNT_COUNTS_TTL_MS = 1000;

type Counter = Pick<StateStore, 'counts'>;

const cache = new WeakMap<Counter, { at: number; counts: Promise<AccountCounts> }>();

export function countAccounts(
  store: Counter,
  now: number,
  ttlMs: number = ACCOUNT_COUNTS_TTL_MS,
): Promise<AccountCounts> {
  const hit = cache.get(store);
  if (hit && now - hit.at < ttlMs && now >= hit.at) return hit.counts;
  const counts = store.counts();
  cache.set(store, { at: now, counts });
  // a failed query is not cached: the next caller asks again
  counts.catch(() => {
    if (cache.get(store)?.counts === counts) cache.delete(store);
  });
  return counts;
}

/** Every state at zero: what an empty store answers. */
export function zeroCounts(): AccountCounts {
  const byState = Object.fromEntries(ACCOUNT_STATES.map((s) => [s, 0])) as Record<
    AccountState,
    number
  >;
  return { byState, queue: 0 };
}
