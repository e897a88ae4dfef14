/**
 * Account records as the store keeps them: keyed by a normalised address, and frozen once
 * stored. Freezing is what makes the store's copy-on-write work: a saved snapshot is just
 * a list of references, a record's JSON can be cached for its lifetime, and a caller that
 * mutates a record it got from get()/list() fails loudly instead of losing the change.
 */
import { ACCOUNT_STATES, type AccountRecord, type AccountState } from './types.js';
import { InvalidAddressError } from './errors.js';

/** RFC 5321 4.5.3.1.3 caps a path at 256 octets; login names are shorter still. */
const MAX_ADDRESS = 320;

/**
 * The key an account is stored under (and the AAD its credentials are sealed with).
 * Addresses come from untrusted login commands, hence the checks.
 */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  if (a.length === 0) throw new InvalidAddressError('empty');
  if (a.length > MAX_ADDRESS)
    throw new InvalidAddressError(`longer than ${MAX_ADDRESS} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(a)) throw new InvalidAddressError('contains control characters');
  return a;
}

/** normalizeAddress, or undefined for an address no record can have */
export function tryNormalize(address: string): string | undefined {
  try {
    return normalizeAddress(address);
  } catch {
    return undefined;
  }
}

export function newRecord(address: string, now: string): AccountRecord {
  return { address, state: 'unknown', updatedAt: now, errors: [], folders: {} };
}

export function isAccountState(v: unknown): v is AccountState {
  return typeof v === 'string' && (ACCOUNT_STATES as readonly string[]).includes(v);
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/**
 * Check a record read from disk, filling in what older files may lack. Returns a reason
 * when the record cannot be used.
 */
export function checkLoadedRecord(key: string, rec: unknown): string | undefined {
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return 'not an object';
  const r = rec as Partial<AccountRecord>;
  if (r.address !== key) return `address ${JSON.stringify(r.address)} does not match its key`;
  if (!isAccountState(r.state)) return `unknown state ${JSON.stringify(r.state)}`;
  if (!Array.isArray(r.errors)) r.errors = [];
  if (r.folders === null || typeof r.folders !== 'object') r.folders = {};
  if (typeof r.updatedAt !== 'string') r.updatedAt = new Date(0).toISOString();
  return undefined;
}

/**
 * A changed record made whole before it is stored, by every backend: a known state,
 * updatedAt moved when the state changed, errors and folders present.
 */
export function settleRecord(
  old: Pick<AccountRecord, 'state' | 'updatedAt'> | undefined,
  next: AccountRecord,
  nowIso: string,
): AccountRecord {
  if (!isAccountState(next.state))
    throw new TypeError(`unknown account state ${String(next.state)}`);
  if (typeof next.updatedAt !== 'string') next.updatedAt = old?.updatedAt ?? nowIso;
  if (old && next.state !== old.state && next.updatedAt === old.updatedAt) next.updatedAt = nowIso;
  if (!Array.isArray(next.errors)) next.errors = [];
  if (next.folders === null || typeof next.folders !== 'object') next.folders = {};
  return next;
}

/** Run update()'s function on a draft: synchronous, and the address stays. */
export function applyUpdate(
  key: string,
  draft: AccountRecord,
  fn: (rec: AccountRecord) => void,
): void {
  const ret: unknown = fn(draft);
  if (ret && typeof (ret as PromiseLike<unknown>).then === 'function')
    throw new TypeError('StateStore.update() takes a synchronous function; nothing was changed');
  if (draft.address !== key) throw new TypeError('StateStore.update() must not change the address');
}
