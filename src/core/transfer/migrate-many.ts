/**
 * `migrate --all`: move several accounts, N at a time. One account's failure never stops
 * the others; each ends in the store as migrated or failed with its reason.
 */
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountState, StateStore } from '../state/types.js';
import { runPool } from './copy/pool.js';
import {
  migrateAccount,
  type AccountResult,
  type MigrateDeps,
  type MigrateRequest,
} from './migrate-account.js';

/** Accounts `--all` picks up: captured (with credentials), and transfers a crash interrupted. */
export const PENDING_STATES: readonly AccountState[] = ['captured', 'transferring'];

export type PendingAccount = MigrateRequest;

/** Captured accounts whose credentials open with the keyring; the rest is reported. */
export async function pendingAccounts(
  store: StateStore,
  keyring: Keyring,
): Promise<{ accounts: PendingAccount[]; unusable: { address: string; reason: string }[] }> {
  const accounts: PendingAccount[] = [];
  const unusable: { address: string; reason: string }[] = [];
  for (const rec of await store.list({ state: [...PENDING_STATES] })) {
    if (!rec.credentials) {
      unusable.push({ address: rec.address, reason: 'no captured credentials' });
      continue;
    }
    try {
      accounts.push({
        address: rec.address,
        password: openText(keyring, rec.credentials, rec.address),
      });
    } catch (err) {
      unusable.push({ address: rec.address, reason: (err as Error).message });
    }
  }
  return { accounts, unusable };
}

export interface ManyResult {
  results: AccountResult[];
  /** accounts that failed before producing a result (cannot log in, provisioning refused) */
  failed: { address: string; error: string }[];
}

/** Runs one account's move; the default runs it as it is (run-migrate.ts claims it first). */
export type AccountRunner = (
  address: string,
  move: () => Promise<AccountResult>,
) => Promise<AccountResult>;

export async function migrateMany(
  accounts: readonly PendingAccount[],
  concurrency: number,
  deps: MigrateDeps,
  runner: AccountRunner = (_, move) => move(),
): Promise<ManyResult> {
  const out: ManyResult = { results: [], failed: [] };
  await runPool(accounts, Math.max(1, concurrency), async (acc) => {
    if (deps.signal?.aborted) return;
    try {
      out.results.push(await runner(acc.address, () => migrateAccount(acc, deps)));
    } catch (err) {
      out.failed.push({ address: acc.address, error: (err as Error).message });
    }
  });
  return out;
}
