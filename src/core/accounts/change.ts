/**
 * The account changes an administrator makes by hand. Each works on an open (writable)
 * store, checks the state it starts from, and returns what it did; the caller flushes.
 *
 *   exclude             any state but migrated/transferring -> excluded (the gateway then
 *                        sends the account to the source forever, and never captures it)
 *   include             excluded -> captured (credentials kept) or unknown (none)
 *   retry               failed -> captured, attempts and back-off cleared
 *   forget-credentials  sealed password removed; captured/failed -> unknown
 */
import { OperatorError } from '../errors.js';
import type { AccountRecord, AccountState, StateStore } from '../state/types.js';
import { requireAccount } from './query.js';

export interface ChangeResult {
  address: string;
  before: AccountState | undefined;
  after: AccountState;
  /** false when the account already was as asked */
  changed: boolean;
  message: string;
}

function stateError(
  address: string,
  state: AccountState,
  what: string,
  hint: string,
): OperatorError {
  return new OperatorError(`${address} is ${state}: ${what}`, hint, 'EACCOUNTSTATE');
}

function result(
  before: AccountRecord | undefined,
  after: AccountRecord,
  changed: boolean,
  message: string,
): ChangeResult {
  return { address: after.address, before: before?.state, after: after.state, changed, message };
}

/** Thrown inside update() to leave the record as it is (nothing is written). */
class Unchanged extends Error {}

/**
 * Run `apply` inside the store's update(), so its checks see the very record it changes
 * (a read before the update could be stale by then: the worker pool, another node).
 * `apply` throws an OperatorError to refuse, returns a message when nothing needs doing.
 */
async function changeRecord(
  store: StateStore,
  address: string,
  existing: AccountRecord | undefined,
  apply: (r: AccountRecord) => string | undefined,
  message: (after: AccountRecord) => string,
): Promise<ChangeResult> {
  let before: AccountRecord | undefined;
  try {
    const after = await store.update(address, (r) => {
      before = structuredClone(r);
      const unchanged = apply(r);
      if (unchanged !== undefined) throw new Unchanged(unchanged);
    });
    return result(existing && before, after, true, message(after));
  } catch (err) {
    if (err instanceof Unchanged) return result(before, before!, false, err.message);
    throw err;
  }
}

/** Creates the record when the account was never seen, so it is excluded from its first login on. */
export async function excludeAccount(
  store: StateStore,
  address: string,
  reason?: string,
): Promise<ChangeResult> {
  const existing = await store.get(address);
  return changeRecord(
    store,
    address,
    existing,
    (r) => {
      if (r.state === 'migrated')
        throw stateError(
          address,
          'migrated',
          'its mail is on the destination now; excluding it would send the user back to the old mail',
          'leave it migrated',
        );
      if (r.state === 'transferring')
        throw stateError(
          address,
          'transferring',
          'a transfer is running',
          'wait until it ends, then exclude it',
        );
      if (r.state === 'excluded' && (reason === undefined || reason === r.reason))
        return `${r.address} was already excluded`;
      r.state = 'excluded';
      r.reason = reason ?? 'excluded by the administrator';
      r.nextAttemptAt = undefined;
      return undefined;
    },
    (after) => `${after.address} excluded: the gateway keeps it on the source`,
  );
}

export async function includeAccount(store: StateStore, address: string): Promise<ChangeResult> {
  const existing = await requireAccount(store, address);
  return changeRecord(
    store,
    address,
    existing,
    (r) => {
      if (r.state !== 'excluded') return `${r.address} is not excluded (${r.state})`;
      r.state = r.credentials ? 'captured' : 'unknown';
      r.reason = undefined;
      return undefined;
    },
    (after) =>
      after.state === 'captured'
        ? `${after.address} included: captured, the worker pool moves it`
        : `${after.address} included: its next login through the gateway captures it`,
  );
}

export async function retryAccount(store: StateStore, address: string): Promise<ChangeResult> {
  const existing = await requireAccount(store, address);
  return changeRecord(
    store,
    address,
    existing,
    (r) => {
      if (r.state === 'captured' && !r.nextAttemptAt && !r.attempts)
        return `${r.address} is already waiting for the worker pool`;
      if (r.state !== 'failed' && r.state !== 'captured')
        throw stateError(
          address,
          r.state,
          'only a failed account can be retried',
          'autoport accounts show ' + r.address + ' tells what it is waiting for',
        );
      if (!r.credentials)
        throw new OperatorError(
          `${r.address} has no captured password, so the worker pool cannot move it`,
          `let the user log in once through the gateway, or: printf '%s' "$PASSWORD" | autoport migrate ${r.address} --password-stdin`,
          'ENOCREDENTIALS',
        );
      r.state = 'captured';
      r.reason = undefined;
      r.attempts = 0;
      r.nextAttemptAt = undefined;
      return undefined;
    },
    (after) => `${after.address} back to captured: the worker pool retries it`,
  );
}

export async function forgetCredentials(store: StateStore, address: string): Promise<ChangeResult> {
  const existing = await requireAccount(store, address);
  return changeRecord(
    store,
    address,
    existing,
    (r) => {
      if (r.state === 'transferring')
        throw stateError(
          address,
          'transferring',
          'the running transfer uses the password',
          'wait until it ends',
        );
      if (!r.credentials) return `${r.address} has no stored password`;
      r.credentials = undefined;
      if (r.state !== 'migrated' && r.state !== 'excluded') {
        r.state = 'unknown';
        r.nextAttemptAt = undefined;
      }
      return undefined;
    },
    (after) => `${after.address}: stored password removed`,
  );
}

export type AccountAction = 'exclude' | 'include' | 'retry' | 'forget-credentials';

export interface AccountChange {
  action: AccountAction;
  address: string;
  /** exclude only */
  reason?: string;
}

/** One change by name: what the accounts commands and the control socket both run. */
export function applyAccountChange(
  store: StateStore,
  change: AccountChange,
): Promise<ChangeResult> {
  switch (change.action) {
    case 'exclude':
      return excludeAccount(store, change.address, change.reason);
    case 'include':
      return includeAccount(store, change.address);
    case 'retry':
      return retryAccount(store, change.address);
    case 'forget-credentials':
      return forgetCredentials(store, change.address);
  }
}
