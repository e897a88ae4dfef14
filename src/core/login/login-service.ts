/**
 * The IMAP/POP3 side of the login flow (login-flow.ts runs the name check, the brakes and
 * the refusals): decide() on the account's state, then carry the route out: log in at the
 * source (which checks the password) and capture the credentials, or go to the
 * destination, or refuse (told only to the right password). A backend session is
 * released on every path that does not hand it to the front-end.
 */
import type { EventBus } from '../bus.js';
import type { Config } from '../config/types.js';
import type { LoginRequest, LoginResult, SessionInfo } from '../sessions/types.js';
import type { Logger } from '../log/logger.js';
import { ReplyError } from '../replies.js';
import { decide, type Route } from '../routing/decide.js';
import type { Keyring } from '../state/crypto.js';
import type { AccountRecord, AccountState, StateStore } from '../state/types.js';
import { toReplyError } from '../upstreams/errors.js';
import type { LoginCredentials, UpstreamFactory, UpstreamSession } from '../upstreams/types.js';
import type { Brakes } from './brakes.js';
import {
  capturedPassword,
  captureCredentials,
  holdsPassword,
  sameSecret,
  touchAccount,
  type CaptureDeps,
} from './capture.js';
import { guardRefusal, judgeCaptured, runLogin, type CheckTimer } from './login-flow.js';
import type { SessionRegistry } from '../sessions/registry.js';

export type TransferNowResult = 'migrated' | 'timeout' | 'failed' | 'busy';

export interface LoginDeps {
  config: () => Config;
  store: StateStore;
  keyring: Keyring;
  upstreams: UpstreamFactory;
  brakes: Brakes;
  bus: EventBus;
  logger: Logger;
  sessions: SessionRegistry;
  /** how the gateway logs in at the destination: as the user, or as the master user */
  destinationLogin: 'user' | 'master';
  /** strategy immediate: move the account now, within `waitMs` */
  transferNow?: (address: string, password: string, waitMs: number) => Promise<TransferNowResult>;
  immediateWaitMs: number;
  now?: () => Date;
}

interface Landed {
  upstream: UpstreamSession;
  target: 'source' | 'destination';
  reason: Route['reason'] | 'immediate-fallback';
}

/** Close a backend session the front-end will never get; never throws. */
function drop(upstream: UpstreamSession): void {
  upstream.socket.destroy();
}

/**
 * Run `record` (capture, touch) for a freshly leased backend session; if it throws, the
 * session is closed before the error goes on (a captured-state failure must not leak a
 * logged-in source connection).
 */
async function keepIf(
  upstream: UpstreamSession,
  record: () => Promise<void> | void,
): Promise<void> {
  try {
    await record();
  } catch (err) {
    drop(upstream);
    throw err;
  }
}

export function makeLoginService(
  deps: LoginDeps,
): (req: LoginRequest, s: SessionInfo) => Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const captureDeps: CaptureDeps = {
    store: deps.store,
    keyring: deps.keyring,
    bus: deps.bus,
    logger: deps.logger,
    now,
  };
  const holds = (rec: AccountRecord | undefined, address: string, password: string): boolean =>
    holdsPassword(deps.keyring, rec, address, password);

  async function capture(
    address: string,
    password: string,
    state: AccountState | undefined,
  ): Promise<void> {
    const rec = deps.store.get(address);
    if (holds(rec, address, password) && !(state && rec?.state === 'unknown'))
      return touch(address);
    await captureCredentials(captureDeps, address, password, state);
  }

  function touch(address: string): void {
    touchAccount(deps.store, address, now());
  }

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

  /** strategy immediate: the source checks the password (and keeps a session for the fallback) while the account is moved. */
  async function transferFirst(
    req: LoginRequest,
    s: SessionInfo,
    address: string,
    rec: AccountRecord | undefined,
    check: CheckTimer,
  ): Promise<Landed> {
    const probe = await atSource(req, s, check, !holds(rec, address, req.password));
    await keepIf(probe, () => capture(address, req.password, 'captured'));
    const moved = await deps.transferNow!(address, req.password, deps.immediateWaitMs).catch(
      () => 'failed' as const,
    );
    if (moved !== 'migrated') {
      deps.logger.info('immediate transfer did not finish in time; proxying to the source', {
        session: s.id,
        address,
        result: moved,
      });
      return { upstream: probe, target: 'source', reason: 'immediate-fallback' };
    }
    drop(probe);
    const upstream = await atDestination(req, s, address, deps.store.get(address), check);
    return { upstream, target: 'destination', reason: 'transfer-first' };
  }

  async function land(
    req: LoginRequest,
    s: SessionInfo,
    address: string,
    check: CheckTimer,
  ): Promise<Landed> {
    const rec = deps.store.get(address);
    const route = routeFor(req, rec);
    if (route.target === 'refuse') {
      emitRoute(s, req, address, 'refuse', route.reason);
      return refuseRoute(req, s, address, rec, route, check);
    }
    if (route.target === 'source') {
      // Only a password about to be stored needs the post-login proof.
      const upstream = await atSource(
        req,
        s,
        check,
        route.capture && !holds(rec, address, req.password),
      );
      await keepIf(upstream, () =>
        route.capture ? capture(address, req.password, route.captureState) : touch(address),
      );
      return { upstream, target: 'source', reason: route.reason };
    }
    if (route.transferFirst) return transferFirst(req, s, address, rec, check);
    const upstream = await atDestination(req, s, address, rec, check);
    await keepIf(upstream, () => touch(address));
    return { upstream, target: 'destination', reason: route.reason };
  }

  function emitRoute(
    s: SessionInfo,
    req: LoginRequest,
    address: string,
    target: 'source' | 'destination' | 'refuse',
    reason: Landed['reason'],
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

  return async function login(req, s) {
    const r = await runLogin(
      {
        protocol: req.protocol,
        user: req.user,
        mechanism: req.mechanism,
        session: s.id,
        client: s.client.address,
      },
      deps,
      async (address, check) => {
        // "login in progress" for the worker pool, from the source login until the splice
        // is tracked (the front-end calls release) or the login failed (released here).
        const release = deps.sessions.hold(address);
        try {
          const landed = await land(req, s, address, check);
          emitRoute(s, req, address, landed.target, landed.reason);
          return { ...landed, release };
        } catch (err) {
          release();
          throw err;
        }
      },
    );
    if (!r.ok) return r;
    const { upstream, target, release } = r.value;
    return { ok: true, user: r.address, target, upstream, release };
  };
}
