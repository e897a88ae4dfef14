/**
 * Where a login (or an SMTP delivery) goes, decided from the account's state alone
 * (style.md habit 3: no I/O here). Front-ends carry the Route out; dry runs and reports
 * reuse it to say what would happen.
 *
 *   no record / unknown  -> source, verified there; credentials captured on success
 *   captured             -> source (refresh the captured password on success)
 *   failed               -> source (refresh the password; the worker pool retries later)
 *   excluded             -> source, never captured, never transferred
 *   transferring         -> refused: "try again in a few minutes"
 *   migrated             -> destination, never the source again
 *
 * A login's refusal is told only to the right password: the login flow checks it first
 * (login/login-flow.ts, guardRefusal), so a wrong guess gets the same auth failure for
 * an account being moved as for any other, and cannot learn which accounts exist or move.
 *
 * With strategy `immediate` a first login (or one of a captured account) is verified at
 * the source, then the transfer runs while the client waits and the session goes to the
 * destination; the front-end falls back to the source when that takes too long.
 */
import type { Outcome } from '../replies.js';
import type { AccountState } from '../state/types.js';

export type RouteProtocol = 'imap' | 'pop3' | 'smtp';

export type RouteReason =
  | 'first-login'
  | 'captured'
  | 'retry-after-failure'
  | 'excluded'
  | 'migrated'
  | 'transferring'
  | 'transfer-first'
  | 'no-source-endpoint'
  | 'no-destination-endpoint';

export interface RouteInput {
  protocol: RouteProtocol;
  /** a client login, or mail for the account arriving over SMTP */
  purpose: 'login' | 'delivery';
  /** the record's state; undefined when the store has no record */
  state: AccountState | undefined;
  strategy: 'proxy' | 'immediate';
  /** which protocols each side has an endpoint for */
  source: Readonly<Partial<Record<RouteProtocol, boolean>>>;
  destination: Readonly<Partial<Record<RouteProtocol, boolean>>>;
  /** the copy engine can move this account now (it needs IMAP on both sides) */
  canTransfer: boolean;
}

export type Route =
  | {
      target: 'source';
      reason: RouteReason;
      /** seal and keep the password once the source accepted it */
      capture: boolean;
      /** the state the record gets after a capture (unchanged when undefined) */
      captureState?: AccountState;
    }
  | {
      target: 'destination';
      reason: RouteReason;
      /** check the password at the source, capture it, transfer, then go to the destination */
      transferFirst: boolean;
    }
  | { target: 'refuse'; reason: RouteReason; outcome: Outcome };

function refuse(reason: RouteReason, outcome: Outcome): Route {
  return { target: 'refuse', reason, outcome };
}

export function decide(input: RouteInput): Route {
  const { protocol, state } = input;
  const hasSource = input.source[protocol] === true;
  const hasDestination = input.destination[protocol] === true;

  if (state === 'transferring') return refuse('transferring', 'account-busy');
  if (state === 'migrated') {
    if (!hasDestination) return refuse('no-destination-endpoint', 'backend-unavailable');
    return { target: 'destination', reason: 'migrated', transferFirst: false };
  }
  if (!hasSource) return refuse('no-source-endpoint', 'backend-unavailable');
  if (input.purpose === 'delivery') {
    const reason: RouteReason =
      state === 'excluded'
        ? 'excluded'
        : state === 'captured'
          ? 'captured'
          : state === 'failed'
            ? 'retry-after-failure'
            : 'first-login';
    return { target: 'source', reason, capture: false };
  }
  switch (state) {
    case 'excluded':
      return { target: 'source', reason: 'excluded', capture: false };
    case 'failed':
      // A failed transfer is retried by the worker pool with backoff, never inline.
      return { target: 'source', reason: 'retry-after-failure', capture: true };
    case 'captured':
    case 'unknown':
    case undefined: {
      const immediate = input.strategy === 'immediate' && input.canTransfer && hasDestination;
      if (immediate)
        return { target: 'destination', reason: 'transfer-first', transferFirst: true };
      return state === 'captured'
        ? { target: 'source', reason: 'captured', capture: true }
        : { target: 'source', reason: 'first-login', capture: true, captureState: 'captured' };
    }
  }
}
