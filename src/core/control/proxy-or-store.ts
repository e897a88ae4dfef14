/**
 * A command that changes accounts asks the `autoport proxy` of this host over its control
 * socket, so the change takes effect in the running gateway at once (its worker pool
 * wakes, its sessions follow). When none listens here:
 *
 * - JSON state: only ever one writer; the command takes the store's lock and changes the
 *   file itself (refused while a proxy starting or stopping holds the lock);
 * - PostgreSQL: no single owner; the command changes the database, one transaction per
 *   record with its row locked, and the gateway nodes learn of it within a second
 *   (Cluster.onChange), whether or not one runs on this host.
 */
import { join } from 'node:path';
import { applyAccountChange, type AccountChange, type ChangeResult } from '../accounts/change.js';
import {
  assertNoProblems,
  importAddresses,
  parseAccountList,
  type ImportResult,
} from '../accounts/import.js';
import { withWritableStore } from '../accounts/open.js';
import type { Config } from '../config/types.js';
import type { StateStore } from '../state/types.js';
import { connectControl, ControlUnavailableError, type ControlClient } from './client.js';

type Where = Pick<Config, 'control' | 'state' | 'stateDir' | 'statePassword'>;

export function controlSocketPath(config: Pick<Config, 'control' | 'stateDir'>): string {
  return config.control?.socket ?? join(config.stateDir, 'autoport.sock');
}

export interface Routed<T> {
  result: T;
  /** who applied it: the running proxy, or this process under the store's lock */
  via: 'proxy' | 'store';
}

/**
 * Run `viaProxy` against the running proxy, or, when nothing listens on its control
 * socket, `viaStore` on the store opened for writing (JSON: under its lock, saved before
 * the lock is released; PostgreSQL: each change committed as it is made). Any other
 * failure to reach the proxy (another user's socket, a protocol mismatch) is reported, not
 * papered over by opening the store.
 */
export async function withProxyOrStore<T>(
  config: Where,
  viaProxy: (client: ControlClient) => Promise<T>,
  viaStore: (store: StateStore) => T | Promise<T>,
): Promise<Routed<T>> {
  let client: ControlClient;
  try {
    client = await connectControl(controlSocketPath(config));
  } catch (err) {
    if (!(err instanceof ControlUnavailableError)) throw err;
    return { result: await withWritableStore(config, viaStore), via: 'store' };
  }
  try {
    return { result: await viaProxy(client), via: 'proxy' };
  } finally {
    client.close();
  }
}

/** accounts exclude|include|retry|forget-credentials, by whoever owns the store now. */
export async function changeAccount(
  config: Where,
  change: AccountChange,
): Promise<Routed<ChangeResult>> {
  return withProxyOrStore(
    config,
    (c) => c.call('accounts.change', change),
    (store) => applyAccountChange(store, change),
  );
}

/**
 * accounts import: the list is read and checked here (so its bad lines are named with
 * their line numbers), then its addresses go to the proxy or into the store.
 */
export async function importAccountList(
  config: Where,
  text: string,
  file: string,
): Promise<Routed<ImportResult>> {
  const parsed = parseAccountList(text);
  assertNoProblems(parsed, file);
  return withProxyOrStore(
    config,
    async (c): Promise<ImportResult> => {
      const r = await c.call('accounts.import', { addresses: parsed.addresses });
      return {
        added: r.added,
        marked: r.marked,
        unchanged: r.unchanged,
        duplicates: parsed.duplicates,
        total: r.total,
      };
    },
    async (store) => ({
      ...(await importAddresses(store, parsed.addresses)),
      duplicates: parsed.duplicates,
    }),
  );
}
