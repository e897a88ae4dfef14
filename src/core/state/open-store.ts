/**
 * The one way to open the account store: a `postgresql://` URL in `state` opens the
 * PostgreSQL store, anything else is the JSON state file. Side files (copy checkpoints)
 * live under the state folder either way.
 */
import { join } from 'node:path';
import { openJsonStore } from './json-store.js';
import type { JsonStoreOptions } from './json-store-options.js';
import { isStateUrl } from './state-url.js';
import type { StateStore } from './types.js';

/** Where the state is: the part of the configuration the store needs. */
export interface StateSettings {
  /** the JSON state file (absolute), or a postgresql:// URL without its password */
  state: string;
  /** the folder for what lives beside the state: ledger, side files, socket, logs */
  stateDir: string;
  /** the PostgreSQL password (from statePasswordFile or statePasswordEnv) */
  statePassword?: string;
}

/** The connection string, the password put in here and nowhere else (never logged). */
export function pgConnectionString(settings: StateSettings): string {
  const url = new URL(settings.state);
  if (settings.statePassword !== undefined) url.password = settings.statePassword;
  return url.toString();
}

/** Side files of the PostgreSQL store: a folder the JSON store's would be named like. */
export function pgSideDir(stateDir: string): string {
  return join(stateDir, 'state-data');
}

export { isStateUrl };

export async function openStateStore(
  settings: StateSettings,
  options: JsonStoreOptions = {},
): Promise<StateStore> {
  if (!isStateUrl(settings.state)) return openJsonStore(settings.state, options);
  // Loaded only here: the JSON store's users need not load the PostgreSQL driver.
  const { openPgStore } = await import('./pg-store.js');
  return openPgStore(pgConnectionString(settings), { sideDir: pgSideDir(settings.stateDir) });
}
