/**
 * Opening the store for the accounts and report commands. Reading needs no lock, so it
 * works while `autoport proxy` runs (the file lags the proxy by its save delay, typically
 * under a second). A change needs the single-writer lock: commands ask the running proxy over its
 * control socket first (control/proxy-or-store.ts) and open the store only when no proxy runs.
 */
import { OperatorError } from '../errors.js';
import { StateError, StoreLockedError } from '../state/errors.js';
import { openStateStore, type StateSettings } from '../state/open-store.js';
import type { StateStore } from '../state/types.js';

export interface OpenAccountStoreOptions {
  readOnly?: boolean;
  saveDelayMs?: number;
}

export async function openAccountStore(
  settings: StateSettings,
  options: OpenAccountStoreOptions = {},
): Promise<StateStore> {
  try {
    return await openStateStore(settings, {
      readOnly: options.readOnly ?? false,
      ...(options.saveDelayMs !== undefined ? { saveDelayMs: options.saveDelayMs } : {}),
    });
  } catch (err) {
    throw asOperatorError(err);
  }
}

/** State errors already say what is wrong; give them the shape commands report. */
export function asOperatorError(err: unknown): unknown {
  if (err instanceof StoreLockedError)
    return new OperatorError(
      err.message,
      'while `autoport proxy` runs, accounts changes go through its control socket by ' +
        'themselves and its worker pool moves accounts (a failed one after `accounts retry`); ' +
        'this lock is held by a proxy that is starting or stopping (try again in a moment) or ' +
        'by another command (wait for it to end)',
      err.code,
      { cause: err },
    );
  if (err instanceof StateError)
    return new OperatorError(err.message, 'see the message above', err.code, { cause: err });
  return err;
}

/** Open the store for writing, apply `fn`, save, release the lock (also when fn throws). */
export async function withWritableStore<T>(
  settings: StateSettings,
  fn: (store: StateStore) => T | Promise<T>,
): Promise<T> {
  const store = await openAccountStore(settings);
  try {
    const out = await fn(store);
    await store.flush();
    return out;
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await store.close();
  }
}

/** Open the store read-only (no lock: works while the gateway runs) and apply `fn`. */
export async function withReadOnlyStore<T>(
  settings: StateSettings,
  fn: (store: StateStore) => T | Promise<T>,
): Promise<T> {
  const store = await openAccountStore(settings, { readOnly: true });
  try {
    return await fn(store);
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await store.close();
  }
}
