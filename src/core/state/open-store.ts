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
  /** this gateway among several (config `node`) */
  node?: { name?: string; heartbeatSeconds: number; leaseSeconds: number };
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
  const nodeName = settings.node?.name;
  if (!isStateUrl(settings.state))
    return openJsonStore(settings.state, { ...options, ...(nodeName ? { nodeName } : {}) });
  // Loaded only here: the JSON store's users need not load the PostgreSQL driver.
  const { openPgStore } = await import('./pg-store.js');
  const node = settings.node;
  return openPgStore(pgConnectionString(settings), {
    sideDir: pgSideDir(settings.stateDir),
    // a read-only command must not change the schema, nor anything else, under a running gateway
    ...(options.readOnly ? { readOnly: true } : {}),
    ...(nodeName ? { nodeName } : {}),
    ...(node
      ? {
          clusterTiming: {
            heartbeatMs: node.heartbeatSeconds * 1000,
            leaseMs: node.leaseSeconds * 1000,
          },
        }
      : {}),
  });
}
