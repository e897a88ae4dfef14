/**
 * The steps of an IMAP/POP3 login that read no state (login-service.ts runs them): log in
 * at the source or the destination, decide the route, refuse, and say where the session
 * went.
 */
import type { Config } from '../config/types.js';
import { ReplyError } from '../replies.js';
import { decide, type Route } from '../routing/decide.js';
import type { LoginRequest, SessionInfo } from '../sessions/types.js';
import type { AccountRecord } from '../state/types.js';
import { toReplyError } from '../upstreams/errors.js';
import type { LoginCredentials, UpstreamSession } from '../upstreams/types.js';
import { capturedPassword, sameSecret } from './capture.js';
import { guardRefusal, judgeCaptured, type CheckTimer } from './login-flow.js';
import type { LoginDeps } from './login-deps.js';

/** where a login landed, and why (decide()'s reason, or the fallback of strategy immediate) */
export type LandedReason = Route['reason'] | 'immediate-fallback';

/** Close a backend session the front-end will never get; never throws. */
export function drop(upstream: UpstreamSession): void {
  upstream.socket.destroy();
}

export function loginSteps(deps: LoginDeps, now: () => Date) {
  async function atSource(
    req: LoginRequest,
    s: SessionInfo,
    check: CheckTimer,
    confirm: boolean,
  ): Promise<UpstreamSession> {
    try {
      return await check.time('source', () =>
        deps.upstreams.login(
          'source',
          req.protocol,
          { user: req.user, password: req.password },
          s.client,
          { confirm },
        ),
      );
    } catch (err) {
      throw toReplyError(err, 'source');
    }
  }

  async function atDestination(
    req: LoginRequest,
    s: SessionInfo,
    address: string,
    rec: AccountRecord | undefined,
    check: CheckTimer,
  ): Promise<UpstreamSession> {
    const c = deps.config();
    let creds: LoginCredentials = { user: req.user, password: req.password };
    if (deps.destinationLogin === 'master' && c.destination.master) {
      // The master login does not check the user's password: the gateway checks it against the captured one.
      const captured = capturedPassword(deps.keyring, rec, address);
      if (captured === undefined)
        throw new ReplyError(
          'auth-failed',
          'no captured password to check against for a master login',
        );
      if (!sameSecret(captured, req.password))
        throw new ReplyError('auth-failed', 'password differs from the captured one');
      const m = c.destination.master;
      creds = {
        user: req.user,
        password: req.password,
        master: { user: m.user, password: m.password },
      };
    }
    try {
      return await check.time('destination', () =>
        deps.upstreams.login('destination', req.protocol, creds, s.client, { confirm: false }),
      );
    } catch (err) {
      throw toReplyError(err, 'destination');
    }
  }

  function routeFor(req: LoginRequest, rec: AccountRecord | undefined): Route {
    const c = deps.config();
    const has = (side: Config['source'] | Config['destination']) => ({
      imap: !!side.imap,
      pop3: !!side.pop3,
      smtp: !!side.smtp,
    });
    return decide({
      protocol: req.protocol,
      purpose: 'login',
      state: rec?.state,
      strategy: c.strategy,
      source: has(c.source),
      destination: has(c.destination),
      canTransfer: !!(c.source.imap && c.destination.imap && deps.transferNow),
    });
  }

  /** A refusal route: the right password learns it, a wrong one gets the uniform failure. */
  function refuseRoute(
    req: LoginRequest,
    s: SessionInfo,
    address: string,
    rec: AccountRecord | undefined,
    route: Extract<Route, { target: 'refuse' }>,
    check: CheckTimer,
  ): Promise<never> {
    const hasSource = !!deps.config().source[req.protocol];
    return guardRefusal(route, {
      captured: judgeCaptured(capturedPassword(deps.keyring, rec, address), req.password),
      atSource: hasSource ? async () => drop(await atSource(req, s, check, false)) : undefined,
    });
  }

  function emitRoute(
    s: SessionInfo,
    req: LoginRequest,
    address: string,
    target: 'source' | 'destination' | 'refuse',
    reason: LandedReason,
  ): void {
    deps.bus.emit({
      type: 'session.route',
      at: now().toISOString(),
      session: s.id,
      protocol: req.protocol,
      user: address,
      target,
      reason,
    });
  }

  return { atSource, atDestination, routeFor, refuseRoute, emitRoute };
}
