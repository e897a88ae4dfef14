/**
 * AUTH on the submission ports (587 with STARTTLS, 465 implicit TLS; RFC 6409, RFC 4954).
 * The password is checked where the account lives now: the account's state picks the
 * source's or the destination's submission service (decide()), and the gateway logs in
 * there as the user. That authenticated connection is what the session's mail is relayed
 * through, so the home server applies its own relay and sender rules; only local
 * recipients whose mailbox is on the other side are delivered there straight (recipients.ts).
 *
 * It is the same login flow as IMAP and POP3 (login/login-flow.ts): the brakes count
 * the attempt before it reaches a backend, a wrong password gets one refusal whatever the
 * account's state, a first successful AUTH at the source captures the account, and the
 * backend connection is released on every path that does not keep it. A connection is
 * closed after a few failed AUTHs, as IMAP and POP3 do (PreauthLimits).
 */
import type { EventBus } from '../bus.js';
import type { Endpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import type { Brakes } from '../login/brakes.js';
import { capturedPassword, captureCredentials, touchAccount } from '../login/capture.js';
import { guardRefusal, judgeCaptured, runLogin, type CheckTimer } from '../login/login-flow.js';
import { DEFAULT_LIMITS } from '../limits.js';
import type { Logger } from '../log/logger.js';
import { ReplyError, type Outcome } from '../replies.js';
import { decide, type Route, type RouteReason } from '../routing/decide.js';
import type { Keyring } from '../state/crypto.js';
import type { AccountRecord, StateStore } from '../state/types.js';
import { toReplyError } from '../upstreams/errors.js';
import type { Relay } from './relay.js';
import type { Side } from './recipients.js';

export interface SubmissionDeps {
  config: () => Config;
  store: Pick<StateStore, 'get' | 'update' | 'flush'>;
  keyring: Keyring;
  brakes: Brakes;
  bus: EventBus;
  logger: Logger;
  now?: () => Date;
  /** failed AUTHs on one connection before it is closed (IMAP and POP3: the same limit) */
  maxFailuresPerConnection?: number;
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
  /** this connection's tally of failed AUTHs, kept by the caller for the connection's life */
  connection: { failures: number };
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
  const r = await runLogin(
    {
      protocol: 'smtp',
      user: req.user,
      mechanism: req.mechanism,
      session: ctx.session,
      client: ctx.clientAddress,
    },
    deps,
    (address, check) => carry(req, ctx, deps, address, check),
  );
  if (r.ok) {
    const { side, reason, relay } = r.value;
    const login = { address: r.address, user: req.user, password: req.password, side, reason };
    return { ok: true, login, relay };
  }
  if (r.outcome !== 'auth-failed') return r;
  ctx.connection.failures++;
  const max = deps.maxFailuresPerConnection ?? DEFAULT_LIMITS.preauth.maxFailuresPerConnection;
  return { ...r, close: r.close || ctx.connection.failures >= max };
}

interface Carried {
  side: Side;
  reason: RouteReason;
  relay: Relay;
}

/** Decide, open the relay at the account's home (the password check), record the login. */
async function carry(
  req: AuthRequest,
  ctx: AuthContext,
  deps: SubmissionDeps,
  address: string,
  check: CheckTimer,
): Promise<Carried> {
  if (req.authzid && req.authzid !== req.user) {
    // Acting as someone else (RFC 4616 2) is not something the gateway can relay.
    throw new ReplyError('auth-failed', 'PLAIN with an authorization identity other than the user');
  }
  const c = deps.config();
  const rec = await deps.store.get(address);
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
  if (route.target === 'refuse') return refuseRoute(req, ctx, deps, address, rec, route, check);
  const side: Side = route.target;
  const relay = await check.time(side, () => open(ctx, side, c[side].submission!, req));
  try {
    if (route.target === 'source' && route.capture)
      await captureCredentials(deps, address, req.password, route.captureState);
    else await touchAccount(deps.store, address, deps.now?.());
  } catch (err) {
    void relay.release();
    throw err;
  }
  deps.bus.emit({
    type: 'session.route',
    at: (deps.now?.() ?? new Date()).toISOString(),
    session: ctx.session,
    protocol: 'smtp',
    user: address,
    target: side,
    reason: route.reason,
  });
  return { side, reason: route.reason, relay };
}

async function open(ctx: AuthContext, side: Side, ep: Endpoint, req: AuthRequest): Promise<Relay> {
  try {
    return await ctx.openRelay(side, ep, { user: req.user, password: req.password });
  } catch (err) {
    throw toReplyError(err, `${side} submission`);
  }
}

/** The route refuses (account being moved, no endpoint): only the right password learns it. */
function refuseRoute(
  req: AuthRequest,
  ctx: AuthContext,
  deps: SubmissionDeps,
  address: string,
  rec: AccountRecord | undefined,
  route: Extract<Route, { target: 'refuse' }>,
  check: CheckTimer,
): Promise<never> {
  const ep = deps.config().source.submission;
  return guardRefusal(route, {
    captured: judgeCaptured(capturedPassword(deps.keyring, rec, address), req.password),
    atSource: ep
      ? async () => (await check.time('source', () => open(ctx, 'source', ep, req))).release()
      : undefined,
  });
}
