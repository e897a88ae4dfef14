/**
 * The one login flow behind IMAP, POP3 and SMTP AUTH (style.md: "one flow, one release").
 * A protocol gives the step that carries the route out (decide, lease the backend,
 * capture); the flow does what every login needs around it, in this order:
 *
 *   1. name    the user name must be an account name, else the uniform auth failure;
 *   2. brakes  the attempt begins (and counts) before anything reaches a backend, or is
 *              refused at once (brakes.ts);
 *   3. carry   the protocol's step; every refusal is a thrown ReplyError (replies.ts);
 *   4. end     right password: succeeded; wrong: counted and delayed, the same for every
 *              account state; anything else (backend or store down): not counted. The
 *              attempt ends on every path (`finally`).
 *
 * Refusals by route (an account being moved, or with no endpoint on its side) are told
 * only to the right password (`guardRefusal`), so a guess learns nothing about accounts.
 */
import type { BackendCheck, EventBus } from '../bus.js';
import type { Logger } from '../log/logger.js';
import { ReplyError, type Outcome } from '../replies.js';
import { StateError } from '../state/errors.js';
import { normalizeAddress } from '../state/records.js';
import { toReplyError } from '../upstreams/errors.js';
import type { Brakes } from './brakes.js';
import { sameSecret } from './capture.js';

export interface FlowDeps {
  brakes: Brakes;
  bus: EventBus;
  logger: Logger;
  now?: () => Date;
}

export interface FlowRequest {
  protocol: 'imap' | 'pop3' | 'smtp';
  /** the user name as the client sent it */
  user: string;
  mechanism: string;
  session: string;
  /** the client's address (the brakes key it) */
  client: string;
}

export type FlowResult<T> =
  | { ok: true; address: string; value: T }
  /** `close`: reply, then close the connection (brakes) */
  | { ok: false; outcome: Outcome; close: boolean };

/**
 * The protocol's step: carry the route out for `address`; throws ReplyError to refuse. It
 * runs its backend logins through `check`, so session.login says how long the password
 * check took (the metrics' login_check_seconds).
 */
export type Carry<T> = (address: string, check: CheckTimer) => Promise<T>;

export interface CheckTimer {
  /** one login at a backend; the first of an attempt is the one that checks the password */
  time<U>(side: BackendCheck['side'], login: () => Promise<U>): Promise<U>;
}

function checkTimer(): CheckTimer & { readonly done?: BackendCheck } {
  let done: BackendCheck | undefined;
  return {
    get done() {
      return done;
    },
    async time(side, login) {
      const t0 = performance.now();
      try {
        return await login();
      } finally {
        // a tenth of a millisecond is plenty, and keeps the session log's line short
        done ??= { side, ms: Math.round((performance.now() - t0) * 10) / 10 };
      }
    },
  };
}

export async function runLogin<T>(
  req: FlowRequest,
  deps: FlowDeps,
  carry: Carry<T>,
): Promise<FlowResult<T>> {
  const check = checkTimer();
  const emit = loginEvents(req, deps, () => check.done);
  const name = accountName(req.user);
  const attempt = await deps.brakes.admit(req.client, name.key);
  if ('refused' in attempt) {
    // Too many at once is no sign of guessing (a busy NAT or webmail host): try later,
    // and the connection stays. Too many failures is: refused and closed.
    const busy = attempt.refused.endsWith('concurrency');
    const outcome = busy ? 'backend-unavailable' : 'too-many-attempts';
    emit('refused', outcome, `brakes: ${attempt.refused}`);
    return { ok: false, outcome, close: !busy };
  }
  try {
    if (name.address === undefined)
      throw new ReplyError('auth-failed', 'user name is not a valid account name');
    const value = await carry(name.address, check);
    attempt.succeeded();
    emit('ok');
    return { ok: true, address: name.address, value };
  } catch (err) {
    const e = asReplyError(err, req, deps.logger);
    emit('refused', e.outcome, e.detail);
    // Only a wrong password is a guess: a backend or store that is down is not the client's.
    const close = e.outcome === 'auth-failed' ? !(await attempt.failed()) : false;
    return { ok: false, outcome: e.outcome, close };
  } finally {
    attempt.end();
  }
}

function accountName(user: string): { address?: string; key: string } {
  try {
    const address = normalizeAddress(user);
    return { address, key: address };
  } catch {
    return { key: user.slice(0, 64) };
  }
}

function asReplyError(err: unknown, req: FlowRequest, logger: Logger): ReplyError {
  const e =
    err instanceof StateError
      ? new ReplyError('store-unavailable', err.message, { cause: err })
      : toReplyError(err, 'login');
  if (e.outcome === 'internal-error')
    logger.error('internal error in a login', { session: req.session, err });
  else if (e.outcome !== 'auth-failed')
    logger.warn('could not check a login', {
      session: req.session,
      protocol: req.protocol,
      outcome: e.outcome,
      detail: e.detail,
    });
  return e;
}

function loginEvents(req: FlowRequest, deps: FlowDeps, check: () => BackendCheck | undefined) {
  return (result: 'ok' | 'refused', outcome?: Outcome, detail?: string): void =>
    deps.bus.emit({
      type: 'session.login',
      at: (deps.now?.() ?? new Date()).toISOString(),
      session: req.session,
      protocol: req.protocol,
      user: req.user.slice(0, 256),
      mechanism: req.mechanism,
      result,
      outcome,
      detail,
      check: check(),
    });
}

/** How a refusal route learns whether the password is right. */
export interface PasswordProof {
  /** the captured password, compared in constant time: 'right' | 'wrong'; undefined: none captured */
  captured(): 'right' | 'wrong' | undefined;
  /** ask the source (log in, close at once); throws UpstreamError; undefined: no source to ask */
  atSource?: () => Promise<void>;
}

/** PasswordProof.captured for a captured password (undefined: none) and the one given. */
export function judgeCaptured(
  captured: string | undefined,
  given: string,
): PasswordProof['captured'] {
  return () =>
    captured === undefined ? undefined : sameSecret(captured, given) ? 'right' : 'wrong';
}

/**
 * Throw the route's refusal only for the right password; a wrong one gets the uniform
 * auth failure (and its delay), whatever the account's state. Without a password to check
 * against nor a source to ask, the refusal stands (it then depends on the config, not on
 * the account).
 */
export async function guardRefusal(
  refusal: { outcome: Outcome; reason: string },
  proof: PasswordProof,
): Promise<never> {
  const told = new ReplyError(refusal.outcome, `account is ${refusal.reason}`);
  const captured = proof.captured();
  if (captured === 'right') throw told;
  if (captured === 'wrong')
    throw new ReplyError(
      'auth-failed',
      `password differs from the captured one (${refusal.reason})`,
    );
  if (!proof.atSource) throw told;
  try {
    await proof.atSource();
  } catch (err) {
    throw toReplyError(err, `source (checking the password of an account ${refusal.reason})`);
  }
  throw told;
}
