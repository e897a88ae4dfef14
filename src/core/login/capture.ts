/**
 * Keeping a password the source just accepted: sealed with the key file (AES-256-GCM,
 * the address as AAD), the account marked captured on its first login, flushed to disk
 * before the session goes on, so a crash cannot lose it. The one implementation: the
 * IMAP/POP3 login flow (login.ts) and SMTP submission both call it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { EventBus } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { openText, seal, type Keyring } from '../state/crypto.js';
import type { AccountRecord, AccountState, StateStore } from '../state/types.js';

export interface CaptureDeps {
  store: Pick<StateStore, 'get' | 'update' | 'flush'>;
  keyring: Keyring;
  bus: EventBus;
  logger: Logger;
  now?: () => Date;
}

/** Constant-time comparison that does not leak the length either (digests are equal-sized). */
export function sameSecret(a: string, b: string): boolean {
  const h = (x: string): Buffer => createHash('sha256').update(x, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

/**
 * The password captured for the record under the keyring's current key; undefined when
 * there is none (or it cannot be opened: then the source is asked instead).
 */
export function capturedPassword(
  keyring: Keyring,
  rec: AccountRecord | undefined,
  address: string,
): string | undefined {
  if (!rec?.credentials || rec.credentials.kid !== keyring.current) return undefined;
  try {
    return openText(keyring, rec.credentials, address);
  } catch {
    return undefined;
  }
}

/** Does the record already hold this password? (Then nothing needs sealing or saving.) */
export function holdsPassword(
  keyring: Keyring,
  rec: AccountRecord | undefined,
  address: string,
  password: string,
): boolean {
  const captured = capturedPassword(keyring, rec, address);
  return captured !== undefined && sameSecret(captured, password);
}

/**
 * Seal and store `password` for `address`; `state` is set when the record is new or
 * still unknown. Throws StateError when the store refuses the change.
 */
export async function captureCredentials(
  deps: CaptureDeps,
  address: string,
  password: string,
  state: AccountState | undefined,
): Promise<void> {
  const sealed = seal(deps.keyring, password, address);
  const at = (deps.now?.() ?? new Date()).toISOString();
  let newState: AccountState | undefined;
  let before: Pick<AccountRecord, 'credentials' | 'state'> = { state: 'unknown' };
  const rec = await deps.store.update(address, (r) => {
    newState = undefined; // a function may run again on a newer record (StateStore.update)
    before = { credentials: r.credentials, state: r.state };
    r.credentials = sealed;
    r.firstSeen ??= at;
    r.lastLogin = at;
    r.lastSeen = at;
    if (state && r.state === 'unknown') {
      r.state = state;
      newState = state;
    }
  });
  // On disk before the session goes on: a crash must not lose a captured password.
  try {
    await deps.store.flush();
  } catch (err) {
    // Not durable: take the capture back, so that a retry captures and saves again
    // instead of finding the password held in memory only and going on without it.
    // The StateError (StoreUnavailableError) makes the caller answer store-unavailable.
    await deps.store
      .update(address, (r) => {
        r.credentials = before.credentials;
        if (newState) r.state = before.state;
      })
      .catch(() => undefined); // the flush's error is the one to report
    throw err;
  }
  deps.bus.emit({ type: 'account.captured', at, address, state: newState ?? rec.state });
}

/** A login that needs no capture: only the times move. */
export async function touchAccount(
  store: Pick<StateStore, 'update'>,
  address: string,
  now: Date = new Date(),
): Promise<void> {
  const at = now.toISOString();
  await store.update(address, (r) => {
    r.lastLogin = at;
    r.lastSeen = at;
  });
}
