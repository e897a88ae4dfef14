/**
 * AUTH on the submission ports (587 with STARTTLS, 465 implicit TLS; RFC 6409, RFC 4954).
 * The password is checked where the account lives now: the account's state picks the
 * source's or the destination's submission service (decide()), and the gateway logs in
 * there as the user. That authenticated connection is what the session's mail is relayed
 * through, so the home server applies its own relay and sender rules; only local
 * recipients whose mailbox is on the other side are delivered there straight (route.ts).
 *
 * Like an IMAP or POP3 login, a first successful AUTH at the source captures the account
 * (sealed credentials, state captured), and failures are braked: delayed, counted per
 * client address and per account, refused before they reach a backend beyond the limit.
 */
import type { EventBus } from '../../bus.js';
import type { Endpoint } from '../../config/endpoint.js';
import type { Config } from '../../config/types.js';
import type { Brakes } from '../../gateway/brakes.js';
import { captureCredentials, touchAccount } from '../../gateway/capture.js';
import type { Logger } from '../../log/logger.js';
import { ReplyError, type Outcome } from '../../replies.js';
import { decide, type RouteReason } from '../../routing/decide.js';
import type { Keyring } from '../../state/crypto.js';
import { StateError } from '../../state/errors.js';
import { normalizeAddress } from '../../state/records.js';
import type { StateStore } from '../../state/types.js';
import { toReplyError } from '../../upstreams/errors.js';
import type { Relay } from './relay.js';
import type { Side } from './route.js';

export interface SubmissionDeps {
  config: () => Config;
  store: Pick<StateStore, 'get' | 'update' | 'flush'>;
  keyring: Keyring;
  brakes: Brakes;
  bus: EventBus;
  logger: Logger;
  now?: () => Date;
}

export interface AuthRequest {
  /** the authentication identity as the client sent it */
  user: string;
  password: string;
  /** PLAIN's authorization identity, if any */
  authzid?: string;
  mechanism: 'PLAIN' | 'LOGIN';
}

/** Who a submission session is, once AUTH went through. */
export interface SubmissionLogin {
  /** the store key (normalised) */
  address: string;
  /** the name as the client gave it: what the backend is given */
  user: string;
  password: string;
  side: Side;
  reason: RouteReason;
}

export type AuthResult =
  | { ok: true; login: SubmissionLogin; relay: Relay }
  /** `close`: reply, then close the connection (brakes) */
  | { ok: false; outcome: Outcome; close: boolean };

export interface AuthContext {
  session: string;
  clientAddress: string;
  /** connect and AUTH at a submission service as the user; throws UpstreamError */
  openRelay(
    side: Side,
    endpoint: Endpoint,
    auth: { user: string; password: string },
  ): Promise<Relay>;
}

export async function authenticate(
  req: AuthRequest,
  ctx: AuthContext,
  deps: SubmissionDeps,
): Promise<AuthResult> {
  const now = (): string => (deps.now?.() ?? new Date()).toISOString();
  const emitLogin = (result: 'ok' | 'refused', outcome?: Outcome, detail?: string): void =>
    deps.bus.emit({
      type: 'session.login',
      at: now(),
      session: ctx.session,
      protocol: 'smtp',
      user: req.user.slice(0, 256),
      mechanism: req.mechanism,
      result,
      outcome,
      detail,
    });
  const refuse = async (address: string, err: ReplyError): Promise<AuthResult> => {
    emitLogin('refused', err.outcome, err.detail);
    let close = false;
    if (err.outcome === 'auth-failed') {
      deps.brakes.failed(ctx.clientAddress, address);
      close = !(await deps.brakes.delay());
    }
    return { ok: false, outcome: err.outcome, close };
  };

  let address: string;
  try {
    address = normalizeAddress(req.user);
  } catch {
    return refuse(
      req.user.slice(0, 64),
      new ReplyError('auth-failed', 'user name is not a valid account name'),
    );
  }
  if (req.authzid && req.authzid !== req.user) {
    // Acting as someone else (RFC 4616 2) is not something the gateway can relay.
    return refuse(
      address,
      new ReplyError('auth-failed', 'PLAIN with an authorization identity other than the user'),
    );
  }
  const blocked = deps.brakes.blocked(ctx.clientAddress, address);
  if (blocked) {
    emitLogin('refused', 'too-many-attempts', `too many failed logins for this ${blocked}`);
    return { ok: false, outcome: 'too-many-attempts', close: true };
  }
  try {
    const c = deps.config();
    const rec = deps.store.get(address);
    const route = decide({
      protocol: 'smtp',
      purpose: 'login',
      state: rec?.state,
      // A submission never waits for a transfer: the mail goes out through the source.
      strategy: 'proxy',
      source: { smtp: !!c.source.submission },
      destination: { smtp: !!c.destination.submission },
      canTransfer: false,
    });
    if (route.target === 'refuse')
      return await refuse(address, new ReplyError(route.outcome, `account is ${route.reason}`));
    const side: Side = route.target;
    const ep = c[side].submission!;
    let relay: Relay;
    try {
      relay = await ctx.openRelay(side, ep, { user: req.user, password: req.password });
    } catch (err) {
      throw toReplyError(err, `${side} submission`);
    }
    try {
      if (route.target === 'source' && route.capture)
        await captureCredentials(deps, address, req.password, route.captureState);
      else touchAccount(deps.store, address, deps.now?.());
    } catch (err) {
      void relay.release();
      throw err;
    }
    deps.brakes.succeeded(address);
    emitLogin('ok');
    deps.bus.emit({
      type: 'session.route',
      at: now(),
      session: ctx.session,
      protocol: 'smtp',
      user: address,
      target: side,
      reason: route.reason,
    });
    return {
      ok: true,
      login: { address, user: req.user, password: req.password, side, reason: route.reason },
      relay,
    };
  } catch (err) {
    const e =
      err instanceof StateError
        ? new ReplyError('store-unavailable', err.message, { cause: err })
        : toReplyError(err, 'submission');
    if (e.outcome === 'internal-error')
      deps.logger.error('submission AUTH failed with an internal error', {
        session: ctx.session,
        err,
      });
    else if (e.outcome !== 'auth-failed')
      deps.logger.warn('submission AUTH could not be checked', {
        session: ctx.session,
        outcome: e.outcome,
        detail: e.detail,
      });
    return refuse(address, e);
  }
}
