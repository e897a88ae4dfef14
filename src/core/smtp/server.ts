/**
 * The SMTP listeners, built on smtp-server:
 *   smtp         port 25, mail from the world: no AUTH, RCPT only for the local domains
 *   submission   port 587: STARTTLS, AUTH PLAIN/LOGIN before MAIL (RFC 6409, RFC 4954)
 *   submissions  port 465: TLS from the first byte (RFC 8314)
 *
 * smtp-server does the wire work the gateway relies on and the tests check: lines
 * pipelined after STARTTLS are thrown away unprocessed (CVE-2011-0411 class), SIZE is
 * advertised and checked at MAIL FROM (RFC 1870). smtp-server-overrides.ts replaces its DATA parsing (the
 * end of data only on CRLF.CRLF, bare line endings normalised), its enhanced status codes
 * and its reply to AUTH before TLS. session.ts does the rest.
 *
 * Behind a load balancer the PROXY protocol header is read by the gateway's own reader
 * (proxy-gate.ts, the one the IMAP/POP3 listeners use), in place of smtp-server's
 * `useProxy`, which trusts every peer and knows only v1: smtp-server's _handleProxy hook
 * is replaced on the server, so what it hands to onConnect carries the real client.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import type { SMTPServer, SMTPServerOptions } from 'smtp-server';
import { isLoopbackHost } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { unmapIpv4 } from '../net-address.js';
import { smtpSpec } from '../replies.js';
import { ConnectionSlots } from './connection-slots.js';
import { HandlerGuard } from './handler-guard.js';
import { resolveSmtpLimits, type SmtpLimits } from './limits.js';
import {
  onAuth,
  onClose,
  onConnect,
  onData,
  onMailFrom,
  onRcptTo,
  onSecure,
  type ListenerContext,
  type SmtpFrontendDeps,
} from './listener-handlers.js';
import { readProxyFirst } from './proxy.js';
import type { SmtpListenerName } from './session.js';
import { GatewaySmtpServer, type CutOff, type WirePolicy } from './smtp-server-overrides.js';

export type { SmtpFrontendDeps } from './listener-handlers.js';

export interface RunningSmtpListener {
  name: SmtpListenerName;
  address: { host: string; port: number };
  server: SMTPServer;
  /** open sessions */
  sessions(): number;
  /** take a new certificate from the config */
  reloadTls(config: Config): void;
  /** stop accepting; open sessions get `graceMs`, then 421 */
  close(graceMs?: number): Promise<void>;
}

function tlsMaterial(config: Config): { key: Buffer; cert: Buffer } | undefined {
  if (!config.tls) return undefined;
  return { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) };
}

/** The listener's settings from the config and deps, with the checks that refuse to start. */
function listenerContext(
  name: SmtpListenerName,
  deps: SmtpFrontendDeps,
  server: () => SMTPServer,
): { ctx: ListenerContext; tls: { key: Buffer; cert: Buffer } | undefined } {
  const config = deps.config();
  // Only a value that is there: `undefined` would override the default and lift the limit.
  const fromConfig = config.smtp ? { maxMessageBytes: config.smtp.maxMessageBytes } : {};
  const limits: SmtpLimits = resolveSmtpLimits({ ...fromConfig, ...deps.limits });
  const tls = tlsMaterial(config);
  if (name === 'submissions' && !tls) {
    throw new Error(
      'listen.submissions needs a certificate: add tls: { cert: cert.pem, key: key.pem } to the config',
    );
  }
  const submission = name !== 'smtp';
  if (submission && (!deps.keyring || !deps.brakes))
    throw new TypeError('a submission listener needs keyring and brakes');
  const plaintextAuth = tls ? 'never' : (deps.plaintextAuth ?? 'always');
  const sessions: ListenerContext['sessions'] = new Map();
  const guard = new HandlerGuard({
    listener: name,
    logger: deps.logger,
    sessionOf: (id) => {
      const sess = sessions.get(id);
      return sess && { id: sess.client.id, log: sess.log };
    },
    connections: () => server().connections,
  });
  const ctx: ListenerContext = {
    name,
    deps,
    limits,
    submission,
    heloName: deps.hostname ?? hostname(),
    authWithoutTls: (address) =>
      plaintextAuth === 'always' || (plaintextAuth === 'loopback' && isLoopbackHost(address)),
    guard,
    slots: new ConnectionSlots(name, deps.connections, deps.logger),
    sessions,
    releases: new Map(),
    cutOffs: new Map(),
    authTally: new WeakMap(),
  };
  return { ctx, tls };
}

/** Each cut-off's log line and the limit it hit. */
const CUT_OFFS: Record<CutOff, (l: SmtpLimits) => { message: string; limit: number }> = {
  'login-timeout': (l) => ({
    message: 'connection closed: not authenticated within the deadline',
    limit: l.loginDeadlineMs,
  }),
  'too-many-commands': (l) => ({
    message: 'connection closed: too many commands without a message',
    limit: l.maxJunkCommands,
  }),
  'too-many-errors': (l) => ({
    message: 'connection closed: too many errors without a message',
    limit: l.maxErrors,
  }),
};

/** What each connection asks the listener (smtp-server-overrides.ts): TLS, cut-offs. */
function wirePolicy(ctx: ListenerContext): WirePolicy {
  const { deps, limits, name } = ctx;
  return {
    authWithoutTls: ctx.authWithoutTls,
    greetAtOnce: ctx.submission,
    // AUTH is required before MAIL on submission only; port 25 takes mail without it.
    loginDeadlineMs: ctx.submission ? limits.loginDeadlineMs : undefined,
    maxJunkCommands: limits.maxJunkCommands,
    maxErrors: limits.maxErrors,
    cutOff(why, s) {
      ctx.cutOffs.set(s.id, why);
      const { message, limit } = CUT_OFFS[why](limits);
      deps.logger.info(message, {
        client: unmapIpv4(s.remoteAddress),
        listener: name,
        session: ctx.sessions.get(s.id)?.client.id,
        limit,
      });
    },
  };
}

function serverOptions(
  ctx: ListenerContext,
  tls: { key: Buffer; cert: Buffer } | undefined,
): SMTPServerOptions {
  const { submission, limits } = ctx;
  const authRequired = smtpSpec('auth-required');
  return {
    name: ctx.heloName,
    secure: ctx.name === 'submissions',
    ...(tls ?? {}),
    // No certificate, no STARTTLS: never smtp-server's built-in test certificate. WIZ,
    // SHELL and KILL are smtp-server's jokes ("Can not kill Mom"), not SMTP.
    disabledCommands: [
      ...(submission ? [] : ['AUTH']),
      ...(tls ? [] : ['STARTTLS']),
      'WIZ',
      'SHELL',
      'KILL',
    ],
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: !submission,
    authRequiredMessage: `${authRequired.enhanced} ${authRequired.text}`,
    size: limits.maxMessageBytes,
    maxRecipients: limits.maxRecipients,
    maxClients: limits.maxClients,
    socketTimeout: limits.clientIdleMs,
    disableReverseLookup: true,
    logger: false,
    useXClient: false,
    useXForward: false,
    onConnect: (s, cb) => onConnect(ctx, s, cb),
    onSecure: (socket, s, cb) => onSecure(ctx, socket as TLSSocket, s, cb),
    onAuth: (auth, s, cb) => onAuth(ctx, auth, s, cb),
    onMailFrom: (address, s, cb) => onMailFrom(ctx, address, s, cb),
    onRcptTo: (address, s, cb) => onRcptTo(ctx, address, s, cb),
    onData: (stream, s, cb) => onData(ctx, stream, s, cb),
    onClose: (s) => onClose(ctx, s),
  };
}

/** Connections are counted at accept on 465, and read for a PROXY header where configured. */
function wireAccept(ctx: ListenerContext, server: SMTPServer): void {
  const { deps, name } = ctx;
  const gate = deps.proxy?.listeners.includes(name) ? deps.proxy.gate : undefined;
  if (gate)
    readProxyFirst(
      server,
      gate,
      (raw, peer) => {
        if (name !== 'submissions' || !deps.connections) return true;
        return ctx.slots.onAccept(raw, peer);
      },
      (r) => {
        deps.logger.warn('connection refused: no valid PROXY header from a trusted proxy', {
          listener: name,
          proxy: r.proxy,
          reason: r.reason,
          detail: r.detail,
        });
        deps.bus.emit({
          type: 'proxy.refused',
          at: new Date().toISOString(),
          listener: name,
          reason: r.reason,
          proxy: r.proxy,
        });
      },
    );
  else if (name === 'submissions' && deps.connections)
    server.server.prependListener('connection', (raw: Socket) => void ctx.slots.onAccept(raw));
  server.on('error', (err) => deps.logger.warn('SMTP connection error', { listener: name, err }));
}

export async function startSmtpListener(
  name: SmtpListenerName,
  at: { host: string; port: number },
  deps: SmtpFrontendDeps,
): Promise<RunningSmtpListener> {
  // the guard reaches the server's connections once it exists
  const built: { server?: GatewaySmtpServer } = {};
  const { ctx, tls } = listenerContext(name, deps, () => built.server!);
  const running = new GatewaySmtpServer(serverOptions(ctx, tls), wirePolicy(ctx));
  built.server = running;
  wireAccept(ctx, running);
  await new Promise<void>((resolve, reject) => {
    running.server.once('error', reject);
    running.listen(at.port, at.host, () => {
      running.server.off('error', reject);
      resolve();
    });
  });
  const bound = running.server.address() as AddressInfo;
  return {
    name,
    address: { host: bound.address, port: bound.port },
    server: running,
    sessions: () => ctx.sessions.size,
    reloadTls(next) {
      const material = tlsMaterial(next);
      if (material) running.updateSecureContext(material);
    },
    close(graceMs = 30_000) {
      running.options.closeTimeout = graceMs;
      return new Promise<void>((resolve) => running.close(() => resolve())).finally(async () => {
        await Promise.all([...ctx.sessions.values()].map((x) => x.close()));
      });
    },
  };
}

const LISTENERS: SmtpListenerName[] = ['smtp', 'submission', 'submissions'];

/** Every SMTP listener the config asks for (listen.smtp, listen.submission, listen.submissions). */
export async function startSmtpListeners(deps: SmtpFrontendDeps): Promise<RunningSmtpListener[]> {
  const config = deps.config();
  const running: RunningSmtpListener[] = [];
  try {
    for (const name of LISTENERS) {
      const at = config.listen[name];
      if (at) running.push(await startSmtpListener(name, at, deps));
    }
  } catch (err) {
    await Promise.all(running.map((l) => l.close(0)));
    throw err;
  }
  return running;
}
