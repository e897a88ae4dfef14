/**
 * The gateway: listeners from the config, front-ends, the login flow, brakes, the
 * session registry and the worker pool, wired together. Everything it talks to is
 * passed in or built from the config here, nowhere else.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { EventBus } from '../bus.js';
import { isLoopbackHost } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { startImapSession } from '../imap/session.js';
import {
  startListener,
  TlsProvider,
  type AcceptHandlers,
  type ListenerSpec,
  type RunningListener,
} from '../listen/listeners.js';
import { startPop3Session } from '../pop3/session.js';
import { ProxyGate } from '../listen/proxy-gate.js';
import {
  openRelayLog,
  startSmtpListeners,
  type RelayLog,
  type RunningSmtpListener,
} from '../smtp/index.js';
import type { FrontendDeps, ListenerInfo, SessionInfo } from '../sessions/types.js';
import { resolveLimits, type GatewayLimits, type LimitsOverride } from '../limits.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { unmapIpv4 } from '../net-address.js';
import { imapBye, pop3Reply } from '../replies.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import type { UpstreamFactory, UpstreamOptions } from '../upstreams/types.js';
import { makeUpstreams } from './upstream-factory.js';
import { Brakes } from '../login/brakes.js';
import { ConnectionLimiter } from '../listen/connection-limiter.js';
import { makeLoginService } from '../login/login-service.js';
import { SessionRegistry } from '../sessions/registry.js';
import { WorkerPool, type MigrateFn } from '../workers/worker-pool.js';
import { UidlMaps } from '../transfer/uidl/store.js';

export { Brakes } from '../login/brakes.js';
export { ConnectionLimiter } from '../listen/connection-limiter.js';
export { SessionRegistry } from '../sessions/registry.js';
export { WorkerPool, type MigrateFn, type MigrateOutcome } from '../workers/worker-pool.js';
export {
  makeLoginService,
  type LoginDeps,
  type TransferNowResult,
} from '../login/login-service.js';

export type PlaintextPolicy = 'always' | 'loopback' | 'never';

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

const LISTENER_KINDS: Array<{
  name: keyof Config['listen'];
  protocol: 'imap' | 'pop3';
  implicitTls: boolean;
}> = [
  { name: 'imap', protocol: 'imap', implicitTls: false },
  { name: 'imaps', protocol: 'imap', implicitTls: true },
  { name: 'pop3', protocol: 'pop3', implicitTls: false },
  { name: 'pop3s', protocol: 'pop3', implicitTls: true },
];

function readTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  if (!config.tls) return undefined;
  return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
}

function sessionId(): string {
  return randomBytes(6).toString('base64url');
}

export async function startGateway(initial: Config, deps: GatewayDeps): Promise<Gateway> {
  let config = initial;
  const limits = resolveLimits(deps.limits);
  const bus = deps.bus ?? new EventBus();
  const logger = deps.logger ?? silentLogger;
  const tls = new TlsProvider(readTls(config));
  const sessions = new SessionRegistry();
  const brakes = new Brakes(limits.brakes);
  const connections = new ConnectionLimiter(() => limits.connections);
  const upstreamOptions: UpstreamOptions = {
    ...deps.upstreamOptions,
    forwardClient: { ...config.gateway?.forwardClient, ...deps.upstreamOptions?.forwardClient },
  };
  const upstreams = deps.upstreams ?? makeUpstreams(() => config, upstreamOptions);
  const workers = deps.migrate
    ? new WorkerPool({
        store: deps.store,
        keyring: deps.keyring,
        bus,
        logger,
        sessions,
        migrate: deps.migrate,
        concurrency: () => config.transfer.concurrency,
        limits,
      })
    : undefined;
  let stopping = false;
  const plaintext: PlaintextPolicy =
    deps.plaintextLogin ?? config.gateway?.plaintextLogin ?? (config.tls ? 'loopback' : 'always');

  const uidlMaps = new UidlMaps(deps.store);
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

  const frontendDeps: FrontendDeps = {
    limits: limits.preauth,
    get spliceIdleMs() {
      return config.timeouts.idleMs;
    },
    bus,
    logger,
    login,
    track: (user, target, info, splice) => {
      const untrack = sessions.add(user, info, splice);
      // A login that reached the source just as the account's transfer lock started
      // must not stay open there behind the copy's back.
      if (target === 'source' && deps.store.get(user)?.state === 'transferring')
        splice.close('account-locked');
      return untrack;
    },
    pop3Uidls: (user) => uidlMaps.get(user),
    stopping: () => stopping,
  };

  const listenerInfo = (spec: ListenerSpec): ListenerInfo => ({
    name: spec.name,
    protocol: spec.protocol,
    implicitTls: spec.implicitTls,
    secureContext: () => tls.context(),
    plaintextLogin: (client) =>
      plaintext === 'always' || (plaintext === 'loopback' && isLoopbackHost(client.address)),
  });

  const refuse = (
    socket: Socket,
    spec: ListenerSpec,
    outcome: 'too-many-connections' | 'shutting-down',
  ): undefined => {
    // Before an implicit-TLS handshake there is no way to say why.
    if (spec.implicitTls) return void socket.destroy();
    socket.end(spec.protocol === 'imap' ? imapBye(outcome) : pop3Reply(outcome));
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  // Listeners behind HAProxy/nginx: the header's client replaces the socket's peer
  // everywhere (logs, brakes, limits, x-originating-ip and XCLIENT to backends).
  const proxyGate = config.proxyProtocol
    ? new ProxyGate(config.proxyProtocol.trusted, () => limits.connections)
    : undefined;
  const behindProxy = (name: string): ProxyGate | undefined =>
    config.proxyProtocol?.listeners.some((l) => l === name) ? proxyGate : undefined;
  const accept: AcceptHandlers = {
    admit: (socket, spec, peer) => {
      if (stopping) return refuse(socket, spec, 'shutting-down');
      const address = peer.address;
      const slot = connections.acquire(address);
      if (slot) return slot;
      logger.warn('connection refused: limit reached', { client: address, listener: spec.name });
      return refuse(socket, spec, 'too-many-connections');
    },
    ready: (socket, spec, slot, peer) => {
      socket.setNoDelay(true);
      const id = sessionId();
      const info: SessionInfo = {
        id,
        listener: listenerInfo(spec),
        client: { ...peer, session: id },
      };
      if (spec.protocol === 'imap') startImapSession(socket, info, frontendDeps, slot);
      else startPop3Session(socket, info, frontendDeps, slot);
    },
    proxyRefused: (spec, r) => {
      logger.warn('connection refused: no valid PROXY header from a trusted proxy', {
        listener: spec.name,
        proxy: r.proxy,
        reason: r.reason,
        detail: r.detail,
      });
    },
    fault: (err, spec, socket) => {
      const session = sessionId();
      logger.error('session fault at accept: connection closed', {
        session,
        listener: spec.name,
        client: unmapIpv4(socket.remoteAddress),
        err,
      });
      bus.emit({
        type: 'session.closed',
        at: new Date().toISOString(),
        session,
        protocol: spec.protocol,
        reason: 'error',
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 0,
        detail: err instanceof Error ? err.message : String(err),
      });
    },
  };

  const running: RunningListener[] = [];
  try {
    for (const kind of LISTENER_KINDS) {
      const addr = config.listen[kind.name];
      if (!addr) continue;
      const spec: ListenerSpec = {
        name: kind.name,
        protocol: kind.protocol,
        host: addr.host,
        port: addr.port,
        implicitTls: kind.implicitTls,
        proxy: behindProxy(kind.name),
      };
      running.push(await startListener(spec, tls, accept, limits.connections.handshakeMs));
    }
  } catch (err) {
    await Promise.all(running.map((l) => l.close()));
    throw err;
  }
  // SMTP (port 25, submission) is its own front-end; it shares the brakes, the connection
  // limits and the bus, so one client address is limited across all protocols.
  let smtp: RunningSmtpListener[] = [];
  let ownRelayLog: RelayLog | undefined;
  if (
    deps.smtp !== false &&
    (config.listen.smtp || config.listen.submission || config.listen.submissions)
  ) {
    try {
      const relayLog = deps.relayLog ?? (ownRelayLog = await openRelayLog(config.logDir));
      smtp = await startSmtpListeners({
        config: () => config,
        store: deps.store,
        relayLog,
        bus,
        logger,
        keyring: deps.keyring,
        brakes,
        connections,
        ca: deps.upstreamOptions?.ca,
        forwardClient: upstreamOptions.forwardClient,
        plaintextAuth: plaintext,
        stopping: () => stopping,
        proxy: proxyGate && { gate: proxyGate, listeners: config.proxyProtocol!.listeners },
      });
    } catch (err) {
      await Promise.all(running.map((l) => l.close()));
      await ownRelayLog?.close();
      throw err;
    }
  }
  workers?.start();

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
      const material = readTls(next);
      if (material) tls.set(material);
      // Which listeners expect a header is fixed at start; who may send one is not.
      if (next.proxyProtocol) proxyGate?.setTrusted(next.proxyProtocol.trusted);
      config = next;
      for (const l of smtp) l.reloadTls(next);
    },
    async stop(graceMs = limits.shutdownGraceMs) {
      if (stopping) return;
      stopping = true;
      await Promise.all(running.map((l) => l.close()));
      const smtpClosed = Promise.all(smtp.map((l) => l.close(graceMs)));
      const deadline = Date.now() + graceMs;
      while (sessions.count() > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const cut = sessions.closeAll('shutdown');
      if (cut) logger.info('closed sessions still open after the grace period', { sessions: cut });
      await smtpClosed;
      await ownRelayLog?.close();
      await workers?.stop();
    },
  };
}
