/**
 * The gateway: listeners from the config, front-ends, the login flow, brakes, the
 * session registry and the worker pool, wired together. Everything it talks to is
 * passed in or built from the config here, nowhere else.
 */
import { readFileSync } from 'node:fs';
import { EventBus } from '../bus.js';
import type { Config } from '../config/types.js';
import { resolveLimits, type GatewayLimits, type LimitsOverride } from '../limits.js';
import { ConnectionLimiter } from '../listen/connection-limiter.js';
import { TlsProvider, type RunningListener } from '../listen/listeners.js';
import { ProxyGate } from '../listen/proxy-gate.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { Brakes } from '../login/brakes.js';
import { makeLoginService } from '../login/login-service.js';
import { AddressBlocks } from '../net-address.js';
import { SessionRegistry } from '../sessions/registry.js';
import type { FrontendDeps } from '../sessions/types.js';
import {
  openRelayLog,
  startSmtpListeners,
  type RelayLog,
  type RunningSmtpListener,
  type SmtpFrontendDeps,
} from '../smtp/index.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import { UidlMaps } from '../transfer/uidl/store.js';
import type { UpstreamFactory, UpstreamOptions } from '../upstreams/types.js';
import { WorkerPool, type MigrateFn } from '../workers/worker-pool.js';
import type { SweepFn } from '../workers/late-mail.js';
import { closeSessionsOnRemoteLock } from './cluster-locks.js';
import { startImapPop3Listeners, type PlaintextPolicy } from './imap-pop3-listeners.js';
import { makeUpstreams } from './upstream-factory.js';

export { Brakes } from '../login/brakes.js';
export { ConnectionLimiter } from '../listen/connection-limiter.js';
export { SessionRegistry } from '../sessions/registry.js';
export { WorkerPool, type MigrateFn, type MigrateOutcome } from '../workers/worker-pool.js';
export {
  makeLoginService,
  type LoginDeps,
  type TransferNowResult,
} from '../login/login-service.js';

export type { PlaintextPolicy } from './imap-pop3-listeners.js';

export interface GatewayDeps {
  store: StateStore;
  keyring: Keyring;
  bus?: EventBus;
  logger?: Logger;
  limits?: LimitsOverride;
  /** backend logins (default: real connections per the config) */
  upstreams?: UpstreamFactory;
  upstreamOptions?: UpstreamOptions;
  /** moves one account; without it no worker pool runs and `immediate` falls back to proxying */
  migrate?: MigrateFn;
  /** late-mail sweeps after a switch, run by the worker pool */
  sweep?: SweepFn;
  /**
   * logins without TLS: 'loopback' (Dovecot's disable_plaintext_auth: only from the same
   * host) is the default with a certificate; without one there is no choice but 'always'
   */
  plaintextLogin?: PlaintextPolicy;
  destinationLogin?: 'user' | 'master';
  /** start the SMTP listeners the config names (default true) */
  smtp?: boolean;
  /** the SMTP relay log (default smtp-relay.jsonl in logDir, opened and closed here) */
  relayLog?: RelayLog;
}

export interface Gateway {
  readonly bus: EventBus;
  readonly sessions: SessionRegistry;
  readonly workers: WorkerPool | undefined;
  readonly limits: GatewayLimits;
  /** connections counted against limits.connections, IMAP, POP3 and SMTP */
  readonly connections: Pick<ConnectionLimiter, 'open' | 'openFor'>;
  /** bound addresses by listener name (port 0 in the config becomes the real port) */
  readonly listeners: Record<string, { host: string; port: number }>;
  /** new config (timeouts, strategy, endpoints) and certificate; listeners and sessions stay */
  reload(config: Config): void;
  /**
   * Stop accepting, let sessions end within `graceMs`, then close the rest, stop the
   * workers. The store is the caller's to flush and close.
   */
  stop(graceMs?: number): Promise<void>;
}

/** brakes.trusted, parsed (the config validated it; a hand-made Config throws here). */
function brakesTrusted(config: Config): AddressBlocks {
  return AddressBlocks.parse('brakes.trusted', config.brakes?.trusted ?? []);
}

function readTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  if (!config.tls) return undefined;
  return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
}

/** What the IMAP and POP3 sessions are given: the login service and the gateway's books. */
function frontendDeps(o: {
  config: () => Config;
  limits: GatewayLimits;
  bus: EventBus;
  logger: Logger;
  login: FrontendDeps['login'];
  sessions: SessionRegistry;
  store: StateStore;
  uidlMaps: UidlMaps;
  stopping: () => boolean;
}): FrontendDeps {
  return {
    limits: o.limits.preauth,
    get spliceIdleMs() {
      return o.config().timeouts.idleMs;
    },
    bus: o.bus,
    logger: o.logger,
    login: o.login,
    track: (user, target, info, splice) => {
      const untrack = o.sessions.add(user, info, splice);
      // A login that reached the source just as the account's transfer lock started
      // must not stay open there behind the copy's back.
      if (target === 'source') {
        o.store.get(user).then(
          (rec) => rec?.state === 'transferring' && splice.close('account-locked'),
          () => undefined, // the worker pool's kick covers a lock it took
        );
      }
      return untrack;
    },
    pop3Uidls: (user) => o.uidlMaps.get(user),
    stopping: o.stopping,
  };
}

/**
 * SMTP (port 25, submission) is its own front-end; it shares the brakes, the connection
 * limits and the bus, so one client address is limited across all protocols.
 */
async function startSmtp(
  config: () => Config,
  deps: GatewayDeps,
  shared: Omit<SmtpFrontendDeps, 'config' | 'store' | 'relayLog' | 'keyring'> &
    Pick<SmtpFrontendDeps, 'bus' | 'logger'>,
): Promise<{ listeners: RunningSmtpListener[]; ownRelayLog?: RelayLog }> {
  const c = config();
  if (deps.smtp === false || !(c.listen.smtp || c.listen.submission || c.listen.submissions))
    return { listeners: [] };
  let ownRelayLog: RelayLog | undefined;
  try {
    const relayLog = deps.relayLog ?? (ownRelayLog = await openRelayLog(c.logDir));
    const listeners = await startSmtpListeners({
      ...shared,
      config,
      store: deps.store,
      relayLog,
      keyring: deps.keyring,
    });
    return { listeners, ownRelayLog };
  } catch (err) {
    await ownRelayLog?.close();
    throw err;
  }
}

/**
 * Stop accepting, give the spliced sessions and SMTP transactions `graceMs`, close what is
 * still open, then the relay log (if the gateway opened it) and the worker pool.
 */
async function shutDown(
  parts: {
    running: RunningListener[];
    smtp: RunningSmtpListener[];
    sessions: SessionRegistry;
    ownRelayLog: RelayLog | undefined;
    workers: WorkerPool | undefined;
    logger: Logger;
    unwatch: () => void;
  },
  graceMs: number,
): Promise<void> {
  const { sessions } = parts;
  parts.unwatch();
  await Promise.all(parts.running.map((l) => l.close()));
  const smtpClosed = Promise.all(parts.smtp.map((l) => l.close(graceMs)));
  const deadline = Date.now() + graceMs;
  while (sessions.count() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const cut = sessions.closeAll('shutdown');
  if (cut)
    parts.logger.info('closed sessions still open after the grace period', { sessions: cut });
  await smtpClosed;
  await parts.ownRelayLog?.close();
  await parts.workers?.stop();
}

/** The worker pool, when there is a copy engine to run. */
function makeWorkers(
  deps: GatewayDeps,
  config: () => Config,
  shared: { limits: GatewayLimits; bus: EventBus; logger: Logger; sessions: SessionRegistry },
): WorkerPool | undefined {
  if (!deps.migrate) return undefined;
  const node = config().node;
  return new WorkerPool({
    ...shared,
    store: deps.store,
    keyring: deps.keyring,
    migrate: deps.migrate,
    sweep: deps.sweep,
    concurrency: () => config().transfer.concurrency,
    ...(node ? { leaseMs: node.leaseSeconds * 1000 } : {}),
  });
}

export async function startGateway(initial: Config, deps: GatewayDeps): Promise<Gateway> {
  let config = initial;
  const limits = resolveLimits(deps.limits);
  const bus = deps.bus ?? new EventBus();
  const logger = deps.logger ?? silentLogger;
  const tls = new TlsProvider(readTls(config));
  const sessions = new SessionRegistry();
  // failures count on every node sharing the store (brakes.ts)
  const brakes = new Brakes(limits.brakes, {
    cluster: deps.store.cluster,
    trusted: brakesTrusted(config),
  });
  const connections = new ConnectionLimiter(() => limits.connections);
  const upstreamOptions: UpstreamOptions = {
    ...deps.upstreamOptions,
    forwardClient: { ...config.gateway?.forwardClient, ...deps.upstreamOptions?.forwardClient },
  };
  const upstreams = deps.upstreams ?? makeUpstreams(() => config, upstreamOptions);
  const workers = makeWorkers(deps, () => config, { limits, bus, logger, sessions });
  let stopping = false;
  const plaintext: PlaintextPolicy =
    deps.plaintextLogin ?? config.gateway?.plaintextLogin ?? (config.tls ? 'loopback' : 'always');

  const login = makeLoginService({
    config: () => config,
    store: deps.store,
    keyring: deps.keyring,
    upstreams,
    brakes,
    bus,
    logger,
    sessions,
    destinationLogin: deps.destinationLogin ?? config.gateway?.destinationLogin ?? 'user',
    transferNow: workers ? (a, p, ms) => workers.transferNow(a, p, ms) : undefined,
    immediateWaitMs: limits.immediateWaitMs,
  });

  // a node among several on one PostgreSQL (no-op for the JSON store); the store's close()
  // leaves the cluster
  await deps.store.cluster.join();
  const proxyGate = config.proxyProtocol
    ? new ProxyGate(config.proxyProtocol.trusted, () => limits.connections)
    : undefined;
  const running = await startImapPop3Listeners({
    config,
    limits,
    tls,
    connections,
    plaintext,
    bus,
    logger,
    stopping: () => stopping,
    proxyGate,
    frontendDeps: frontendDeps({
      config: () => config,
      limits,
      bus,
      logger,
      login,
      sessions,
      store: deps.store,
      uidlMaps: new UidlMaps(deps.store),
      stopping: () => stopping,
    }),
  });
  let smtp: RunningSmtpListener[];
  let ownRelayLog: RelayLog | undefined;
  try {
    ({ listeners: smtp, ownRelayLog } = await startSmtp(() => config, deps, {
      bus,
      logger,
      brakes,
      connections,
      ca: deps.upstreamOptions?.ca,
      forwardClient: upstreamOptions.forwardClient,
      plaintextAuth: plaintext,
      stopping: () => stopping,
      proxy: proxyGate && { gate: proxyGate, listeners: config.proxyProtocol!.listeners },
    }));
  } catch (err) {
    await Promise.all(running.map((l) => l.close()));
    throw err;
  }
  const unwatch = closeSessionsOnRemoteLock(deps.store.cluster, sessions, logger);
  await workers?.start();

  const listeners: Record<string, { host: string; port: number }> = {};
  for (const l of running)
    listeners[l.spec.name] = { host: l.address.address, port: l.address.port };
  for (const l of smtp) listeners[l.name] = l.address;

  return {
    bus,
    sessions,
    workers,
    limits,
    connections,
    listeners,
    reload(next) {
      const trusted = brakesTrusted(next);
      const material = readTls(next);
      if (material) tls.set(material);
      // Which listeners expect a header is fixed at start; who may send one is not.
      if (next.proxyProtocol) proxyGate?.setTrusted(next.proxyProtocol.trusted);
      brakes.setTrusted(trusted);
      config = next;
      for (const l of smtp) l.reloadTls(next);
    },
    async stop(graceMs = limits.shutdownGraceMs) {
      if (stopping) return;
      stopping = true;
      await shutDown({ running, smtp, sessions, ownRelayLog, workers, logger, unwatch }, graceMs);
      brakes.close();
    },
  };
}
