/**
 * Opening the stores a state move reads and writes, with the one rule of a move: no
 * gateway uses them meanwhile. A JSON store is read under its lock (taken, so no
 * `autoport proxy` starts mid-export, but the file opened read-only: nothing is written to
 * the old state); a PostgreSQL store with a live gateway node is refused.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { asOperatorError, openAccountStore } from '../accounts/open.js';
import { OperatorError } from '../errors.js';
import { StoreLockedError } from '../state/errors.js';
import { acquireLock, lockPathFor, type StoreLock } from '../state/lock.js';
import { isStateUrl, type StateSettings } from '../state/open-store.js';
import type { StateStore } from '../state/types.js';

const STOP_GATEWAY =
  'stop `autoport proxy` (every node using this state) first: a state moves while no ' +
  'gateway changes it; then run the command again';

/** Export: the store read-only, no gateway using it. */
export async function withExportStore<T>(
  settings: StateSettings,
  fn: (store: StateStore) => Promise<T>,
): Promise<T> {
  let lock: StoreLock | undefined;
  if (!isStateUrl(settings.state)) {
    const file = resolve(settings.state);
    if (!existsSync(file))
      throw new OperatorError(
        `there is no state file at ${file}`,
        'give the config whose `state:` names the state to export (--config)',
        'ENOSTATE',
      );
    lock = lockOrExplain(file);
  }
  try {
    const store = await openAccountStore(settings, { readOnly: true });
    return await runAlone(store, fn);
  } finally {
    lock?.release();
  }
}

/** Import: the store writable (its lock, for a JSON file), no gateway using it. */
export async function withImportStore<T>(
  settings: StateSettings,
  fn: (store: StateStore) => Promise<T>,
): Promise<T> {
  let store: StateStore;
  try {
    store = await openAccountStore(settings);
  } catch (err) {
    throw explainLocked(err);
  }
  return runAlone(store, fn);
}

async function runAlone<T>(store: StateStore, fn: (store: StateStore) => Promise<T>): Promise<T> {
  try {
    if (store.cluster.shared) {
      const live = (await store.cluster.nodes()).filter((n) => n.alive);
      if (live.length > 0)
        throw new OperatorError(
          `${live.length} gateway node(s) use ${store.location}: ${live.map((n) => n.name).join(', ')}`,
          STOP_GATEWAY,
          'ESTATEINUSE',
        );
    }
    return await fn(store);
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await store.close();
  }
}

function lockOrExplain(file: string): StoreLock {
  try {
    return acquireLock(lockPathFor(file), { storePath: file });
  } catch (err) {
    throw explainLocked(err);
  }
}

function explainLocked(err: unknown): unknown {
  if (err instanceof StoreLockedError)
    return new OperatorError(err.message, STOP_GATEWAY, err.code, { cause: err });
  return asOperatorError(err);
}
