/**
 * The login flow the front-ends call: decide() on the account's state, then carry the
 * route out: log in at the source (which checks the password) and capture the
 * credentials, or go to the destination, or refuse. Every refusal is an Outcome from
 * replies.ts; the log gets the detail, the client one fixed text.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { EventBus } from '../bus.js';
import type { Config } from '../config/types.js';
import type { LoginRequest, LoginResult, SessionInfo } from '../frontends/types.js';
import type { Logger } from '../log/logger.js';
import { ReplyError, type Outcome } from '../replies.js';
import { decide, type Route } from '../routing/decide.js';
import { StateError } from '../state/errors.js';
import { normalizeAddress } from '../state/records.js';
import { openText, type Keyring } from '../state/crypto.js';
import type { AccountRecord, AccountState, StateStore } from '../state/types.js';
import {
  toReplyError,
  type LoginCredentials,
  type UpstreamFactory,
  type UpstreamSession,
} from '../upstreams/index.js';
import type { Brakes } from './brakes.js';
import { captureCredentials, touchAccount, type CaptureDeps } from './capture.js';
import type { SessionRegistry } from './sessions.js';

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

type Refusal = Extract<LoginResult, { ok: false }>;

/** Constant-time comparison that does not leak the length either (digests are equal-sized). */
function sameSecret(a: string, b: string): boolean {
  const h = (x: string): Buffer => createHash('sha256').update(x, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

export function makeLoginService(
  deps: LoginDeps,
): (req: LoginRequest, s: SessionInfo) => Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const emitLogin = (
    s: SessionInfo,
    req: LoginRequest,
    result: 'ok' | 'refused',
    outcome?: Outcome,
    detail?: string,
  ): void =>
    deps.bus.emit({
      type: 'session.login',
      at: now().toISOString(),
      session: s.id,
      protocol: req.protocol,
      user: req.user,
      mechanism: req.mechanism,
      result,
      outcome,
      detail,
    });

  async function refuse(
    s: SessionInfo,
    req: LoginRequest,
    address: string,
    err: ReplyError,
  ): Promise<Refusal> {
    emitLogin(s, req, 'refused', err.outcome, err.detail);
    let close = false;
    if (err.outcome === 'auth-failed') {
      deps.brakes.failed(s.client.address, address);
      close = !(await deps.brakes.delay());
    }
    return { ok: false, outcome: err.outcome, close };
  }

  /** Does the record already hold this password? (Then nothing needs sealing or saving.) */
  function holds(rec: AccountRecord | undefined, address: string, password: string): boolean {
    if (!rec?.credentials || rec.credentials.kid !== deps.keyring.current) return false;
    try {
      return sameSecret(openText(deps.keyring, rec.credentials, address), password);
    } catch {
      return false;
    }
  }

  const captureDeps: CaptureDeps = {
    store: deps.store,
    keyring: deps.keyring,
    bus: deps.bus,
    logger: deps.logger,
    now,
  };

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
    confirm: boolean,
  ): Promise<UpstreamSession> {
    try {
      return await deps.upstreams.login(
        'source',
        req.protocol,
        { user: req.user, password: req.password },
        s.client,
        { confirm },
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
  ): Promise<UpstreamSession> {
    const c = deps.config();
    let creds: LoginCredentials = { user: req.user, password: req.password };
    if (deps.destinationLogin === 'master' && c.destination.master) {
      // The master login does not check the user's password: the gateway checks it against the captured one.
      if (!rec?.credentials)
        throw new ReplyError(
          'auth-failed',
          'no captured password to check against for a master login',
        );
      if (!sameSecret(openText(deps.keyring, rec.credentials, address), req.password)) {
        throw new ReplyError('auth-failed', 'password differs from the captured one');
      }
      const m = c.destination.master;
      creds = {
        user: req.user,
        password: req.password,
        master: { user: m.user, password: m.password },
      };
    }
    try {
      return await deps.upstreams.login('destination', req.protocol, creds, s.client, {
        confirm: false,
      });
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

  return async function login(req, s) {
    let address: string;
    try {
      address = normalizeAddress(req.user);
    } catch {
      return refuse(
        s,
        req,
        req.user.slice(0, 64),
        new ReplyError('auth-failed', 'user name is not a valid account name'),
      );
    }
    const blocked = deps.brakes.blocked(s.client.address, address);
    if (blocked) {
      emitLogin(
        s,
        req,
        'refused',
        'too-many-attempts',
        `too many failed logins for this ${blocked}`,
      );
      return { ok: false, outcome: 'too-many-attempts', close: true };
    }
    const release = deps.sessions.hold(address);
    let handedOver = false;
    try {
      const rec = deps.store.get(address);
      const route = routeFor(req, rec);
      const emitRoute = (
        target: 'source' | 'destination' | 'refuse',
        reason: Route['reason'] | 'immediate-fallback',
      ): void =>
        deps.bus.emit({
          type: 'session.route',
          at: now().toISOString(),
          session: s.id,
          protocol: req.protocol,
          user: address,
          target,
          reason,
        });
      let upstream: UpstreamSession;
      let target: 'source' | 'destination';
      if (route.target === 'refuse') {
        emitRoute('refuse', route.reason);
        return refuse(s, req, address, new ReplyError(route.outcome, `account is ${route.reason}`));
      } else if (route.target === 'source') {
        // Only a password about to be stored needs the post-login proof.
        upstream = await atSource(req, s, route.capture && !holds(rec, address, req.password));
        if (route.capture) await capture(address, req.password, route.captureState);
        else touch(address);
        target = 'source';
        emitRoute('source', route.reason);
      } else if (!route.transferFirst) {
        upstream = await atDestination(req, s, address, rec);
        touch(address);
        target = 'destination';
        emitRoute('destination', route.reason);
      } else {
        // strategy immediate: the source checks the password (and keeps a session ready
        // for the fallback) while the account is moved.
        const probe = await atSource(req, s, !holds(rec, address, req.password));
        await capture(address, req.password, 'captured');
        const moved = await deps.transferNow!(address, req.password, deps.immediateWaitMs).catch(
          () => 'failed' as const,
        );
        if (moved === 'migrated') {
          probe.socket.destroy();
          upstream = await atDestination(req, s, address, deps.store.get(address));
          target = 'destination';
          emitRoute('destination', 'transfer-first');
        } else {
          deps.logger.info('immediate transfer did not finish in time; proxying to the source', {
            session: s.id,
            address,
            result: moved,
          });
          upstream = probe;
          target = 'source';
          emitRoute('source', 'immediate-fallback');
        }
      }
      deps.brakes.succeeded(address);
      emitLogin(s, req, 'ok');
      handedOver = true;
      return { ok: true, user: address, target, upstream, release };
    } catch (err) {
      const e =
        err instanceof StateError
          ? new ReplyError('store-unavailable', err.message, { cause: err })
          : toReplyError(err, 'login');
      if (e.outcome === 'internal-error')
        deps.logger.error('login failed with an internal error', { session: s.id, err });
      return refuse(s, req, address, e);
    } finally {
      if (!handedOver) release();
    }
  };
}
