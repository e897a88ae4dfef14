/**
 * The IMAP/POP3 side of the login flow (login-flow.ts runs the name check, the brakes and
 * the refusals): decide() on the account's state, then carry the route out: log in at the
 * source (which checks the password) and capture the credentials, or go to the
 * destination, or refuse (told only to the right password). A backend session is
 * released on every path that does not hand it to the front-end.
 */
import type { LoginRequest, LoginResult, SessionInfo } from '../sessions/types.js';
import type { AccountRecord, AccountState } from '../state/types.js';
import type { UpstreamSession } from '../upstreams/types.js';
import { captureCredentials, holdsPassword, touchAccount, type CaptureDeps } from './capture.js';
import type { LoginDeps } from './login-deps.js';
import { runLogin, type CheckTimer } from './login-flow.js';
import { drop, loginSteps, type LandedReason } from './login-steps.js';

export type { LoginDeps, TransferNowResult } from './login-deps.js';

interface Landed {
  upstream: UpstreamSession;
  target: 'source' | 'destination';
  reason: LandedReason;
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
  const { atSource, atDestination, routeFor, refuseRoute, emitRoute } = loginSteps(deps, now);

  async function capture(
    address: string,
    password: string,
    state: AccountState | undefined,
  ): Promise<void> {
    const rec = await deps.store.get(address);
    if (holds(rec, address, password) && !(state && rec?.state === 'unknown'))
      return touch(address);
    await captureCredentials(captureDeps, address, password, state);
  }

  function touch(address: string): Promise<void> {
    return touchAccount(deps.store, address, now());
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
    const upstream = await atDestination(req, s, address, await deps.store.get(address), check);
    return { upstream, target: 'destination', reason: 'transfer-first' };
  }

  async function land(
    req: LoginRequest,
    s: SessionInfo,
    address: string,
    check: CheckTimer,
  ): Promise<Landed> {
    const rec = await deps.store.get(address);
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
