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

/** Creates the record when the account was never seen, so it is excluded from its first login on. */
export function excludeAccount(store: StateStore, address: string, reason?: string): ChangeResult {
  const before = store.get(address);
  if (before?.state === 'migrated')
    throw stateError(
      address,
      'migrated',
      'its mail is on the destination now; excluding it would send the user back to the old mail',
      'leave it migrated',
    );
  if (before?.state === 'transferring')
    throw stateError(
      address,
      'transferring',
      'a transfer is running',
      'wait until it ends, then exclude it',
    );
  if (before?.state === 'excluded' && (reason === undefined || reason === before.reason))
    return result(before, before, false, `${before.address} was already excluded`);
  const after = store.update(address, (r) => {
    r.state = 'excluded';
    r.reason = reason ?? 'excluded by the administrator';
    r.nextAttemptAt = undefined;
  });
  return result(
    before,
    after,
    true,
    `${after.address} excluded: the gateway keeps it on the source`,
  );
}

export function includeAccount(store: StateStore, address: string): ChangeResult {
  const before = requireAccount(store, address);
  if (before.state !== 'excluded')
    return result(before, before, false, `${before.address} is not excluded (${before.state})`);
  const after = store.update(address, (r) => {
    r.state = r.credentials ? 'captured' : 'unknown';
    r.reason = undefined;
  });
  return result(
    before,
    after,
    true,
    after.state === 'captured'
      ? `${after.address} included: captured, the worker pool moves it`
      : `${after.address} included: its next login through the gateway captures it`,
  );
}

export function retryAccount(store: StateStore, address: string): ChangeResult {
  const before = requireAccount(store, address);
  if (before.state === 'captured' && !before.nextAttemptAt && !before.attempts)
    return result(
      before,
      before,
      false,
      `${before.address} is already waiting for the worker pool`,
    );
  if (before.state !== 'failed' && before.state !== 'captured')
    throw stateError(
      address,
      before.state,
      'only a failed account can be retried',
      'autoport accounts show ' + before.address + ' tells what it is waiting for',
    );
  if (!before.credentials)
    throw new OperatorError(
      `${before.address} has no captured password, so the worker pool cannot move it`,
      `let the user log in once through the gateway, or: printf '%s' "$PASSWORD" | autoport migrate ${before.address} --password-stdin`,
      'ENOCREDENTIALS',
    );
  const after = store.update(address, (r) => {
    r.state = 'captured';
    r.reason = undefined;
    r.attempts = 0;
    r.nextAttemptAt = undefined;
  });
  return result(
    before,
    after,
    true,
    `${after.address} back to captured: the worker pool retries it`,
  );
}

export function forgetCredentials(store: StateStore, address: string): ChangeResult {
  const before = requireAccount(store, address);
  if (before.state === 'transferring')
    throw stateError(
      address,
      'transferring',
      'the running transfer uses the password',
      'wait until it ends',
    );
  if (!before.credentials)
    return result(before, before, false, `${before.address} has no stored password`);
  const keepState = before.state === 'migrated' || before.state === 'excluded';
  const after = store.update(address, (r) => {
    r.credentials = undefined;
    if (!keepState) {
      r.state = 'unknown';
      r.nextAttemptAt = undefined;
    }
  });
  return result(before, after, true, `${after.address}: stored password removed`);
}

export type AccountAction = 'exclude' | 'include' | 'retry' | 'forget-credentials';

export interface AccountChange {
  action: AccountAction;
  address: string;
  /** exclude only */
  reason?: string;
}

/** One change by name: what the accounts commands and the control socket both run. */
export function applyAccountChange(store: StateStore, change: AccountChange): ChangeResult {
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
