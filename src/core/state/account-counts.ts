/**
 * Accounts by state and the worker pool's queue, for the monitor and the metrics. Both
 * ask often (every snapshot, every scrape) and the store may hold 100,000 accounts, so
 * one scan serves every caller of the same store for `ttlMs`: at most one scan a second
 * however many monitors watch and Prometheus servers scrape. The figures may lag a
 * change by that much.
 */
import { ACCOUNT_STATES, type AccountState, type StateStore } from './types.js';

export const ACCOUNT_COUNTS_TTL_MS = 1000;

export interface AccountCounts {
  /** every state, zeros included */
  byState: Record<AccountState, number>;
  /** captured with a stored password: what the worker pool takes next */
  queue: number;
}

type Lister = Pick<StateStore, 'list'>;

const cache = new WeakMap<Lister, { at: number; counts: AccountCounts }>();

export function countAccounts(
  store: Lister,
  now: number,
  ttlMs: number = ACCOUNT_COUNTS_TTL_MS,
): AccountCounts {
  const hit = cache.get(store);
  if (hit && now - hit.at < ttlMs && now >= hit.at) return hit.counts;
  const byState = Object.fromEntries(ACCOUNT_STATES.map((s) => [s, 0])) as Record<
    AccountState,
    number
  >;
  let queue = 0;
  for (const rec of store.list()) {
    byState[rec.state]++;
    if (rec.state === 'captured' && rec.credentials) queue++;
  }
  const counts = { byState, queue };
  cache.set(store, { at: now, counts });
  return counts;
}
