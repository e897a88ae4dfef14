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
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo, Socket } from 'node:net';
import type { SMTPServer, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { EventBus, SessionEvent } from '../bus.js';
import { isLoopbackHost, type Endpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import type { Brakes } from '../login/brakes.js';
import type { ConnectionLimiter } from '../listen/connection-limiter.js';
import type { Logger } from '../log/logger.js';
import { clientKey, unmapIpv4 } from '../net-address.js';
import type { Peer, ProxyGate } from '../listen/proxy-gate.js';
import { readProxyFirst } from './proxy.js';
import { smtpSpec } from '../replies.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import { resolveSmtpLimits, type SmtpLimits } from './limits.js';
import { Relay, type MailParams } from './relay.js';
import type { RelayLog } from './relay-log.js';
import type { Side } from './recipients.js';
import { outcomeError, SmtpReplyError } from './reply-error.js';
import { SmtpSession, type SessionClient, type SmtpListenerName } from './session.js';
import { openBackend } from './smtp-client.js';
import { authenticate } from './submission.js';
import { GatewaySmtpServer } from './smtp-server-overrides.js';

export interface SmtpFrontendDeps {
  config: () => Config;
  /** the account store: read for routing, written when a submission captures an account */
  store: Pick<StateStore, 'get' | 'update' | 'flush'>;
  relayLog: RelayLog;
  bus: EventBus;
  logger: Logger;
  /** submission only: sealing captured passwords and braking failed AUTH */
  keyring?: Keyring;
  brakes?: Brakes;
  connections?: ConnectionLimiter;
  limits?: Partial<SmtpLimits>;
  /** extra CA certificates (PEM) for verifying the backends */
  ca?: string | string[];
  /** send XCLIENT to backends that offer it (default true for both sides) */
  forwardClient?: Partial<Record<Side, boolean>>;
  /** the name in our greeting and in EHLO to backends (default the host name) */
  hostname?: string;
  /**
   * AUTH without TLS on port 587 when no certificate is configured: 'always' (default,
   * as for IMAP/POP3 there is no other choice), 'loopback' (only from this host) or
   * 'never'. With a certificate, AUTH before STARTTLS is always refused (538/530).
   */
  plaintextAuth?: 'always' | 'loopback' | 'never';
  stopping?: () => boolean;
  /** listeners behind a PROXY protocol load balancer, and the gate that reads their headers */
  proxy?: { gate: ProxyGate; listeners: readonly string[] };
}

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

function mailParams(args: unknown): MailParams {
  const a = (args && typeof args === 'object' ? args : {}) as Record<
    string,
    string | boolean | undefined
  >;
  const p: MailParams = {};
  if (typeof a.SIZE === 'string' && /^\d{1,20}$/.test(a.SIZE)) p.size = Number(a.SIZE);
  if (typeof a.BODY === 'string')
    p.body = a.BODY.toLowerCase() === '8bitmime' ? '8bitmime' : '7bit';
  if (a.SMTPUTF8 === true) p.smtputf8 = true;
  return p;
}

/**
 * A bug met while handling one connection: 421 closes that connection (RFC 5321 3.8,
 * smtp-server closes after any 421), so no other session and no later command of this
 * one meets the broken state.
 */
function faultReply(): SmtpReplyError {
  return new SmtpReplyError(421, `4.3.0 ${smtpSpec('internal-error').text}`);
}

/** the end of a connection whose onConnect met a bug: no session, still a fault to count */
function faultBeforeSession(s: SMTPServerSession): SessionEvent {
  return {
    type: 'session.closed',
    at: new Date().toISOString(),
    session: s.id,
    protocol: 'smtp',
    reason: 'error',
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- smtp-server's callbacks differ in their result
type Callback = (err?: Error | null, ...rest: any[]) => void;

/** a callback that only its first call reaches: a handler that answered and then threw */
function once<C extends Callback>(cb: C): C {
  let called = false;
  return ((...args: Parameters<C>) => {
    if (called) return;
    called = true;
    cb(...args);
  }) as C;
}

export async function startSmtpListener(
  name: SmtpListenerName,
  at: { host: string; port: number },
  deps: SmtpFrontendDeps,
): Promise<RunningSmtpListener> {
  const config = deps.config();
  // Only a value that is there: `undefined` would override the default and lift the limit.
  const fromConfig = config.smtp ? { maxMessageBytes: config.smtp.maxMessageBytes } : {};
  const limits = resolveSmtpLimits({ ...fromConfig, ...deps.limits });
  const tls = tlsMaterial(config);
  if (name === 'submissions' && !tls) {
    throw new Error(
      'listen.submissions needs a certificate: add tls: { cert: cert.pem, key: key.pem } to the config',
    );
  }
  const submission = name !== 'smtp';
  const plaintextAuth = tls ? 'never' : (deps.plaintextAuth ?? 'always');
  const authWithoutTls = (address: string): boolean =>
    plaintextAuth === 'always' || (plaintextAuth === 'loopback' && isLoopbackHost(address));
  if (submission && (!deps.keyring || !deps.brakes))
    throw new TypeError('a submission listener needs keyring and brakes');
  const heloName = deps.hostname ?? hostname();
  const authRequired = smtpSpec('auth-required');
  const sessions = new Map<string, SmtpSession>();
  const releases = new Map<string, () => void>();
  /**
   * 465: a connection counts from TCP accept, so TLS handshakes in progress are within the
   * limits too; its slot waits here (by client and port) for onConnect, and goes back when
   * the raw socket closes, which smtp-server never stops listening for on 465.
   */
  const accepted = new Map<string, Array<() => void>>();
  const acceptKey = (address: string, port: number): string => `${clientKey(address)} ${port}`;
  const take = (key: string): (() => void) | undefined => {
    const list = accepted.get(key);
    const slot = list?.shift();
    if (list && list.length === 0) accepted.delete(key);
    return slot;
  };
  /** the slot of a connection smtp-server hands to onConnect; undefined: refused */
  const admit = (s: SMTPServerSession): (() => void) | undefined => {
    if (!deps.connections) return () => undefined;
    const address = unmapIpv4(s.remoteAddress);
    if (name === 'submissions') {
      const slot = take(acceptKey(address, s.remotePort));
      if (slot) return slot;
    }
    return deps.connections.acquire(address);
  };
  const onAccept = (raw: Socket, peer?: Peer): boolean => {
    const address = peer?.address ?? unmapIpv4(raw.remoteAddress);
    const slot = deps.connections?.acquire(address);
    if (!slot) {
      // Nothing can be said before the handshake; the limit is logged.
      deps.logger.warn('connection refused: limit reached', { client: address, listener: name });
      raw.destroy();
      return false;
    }
    const key = acceptKey(address, peer?.port ?? raw.remotePort ?? 0);
    accepted.set(key, [...(accepted.get(key) ?? []), slot]);
    raw.once('close', () => {
      slot();
      const list = accepted.get(key)?.filter((x) => x !== slot);
      if (list?.length) accepted.set(key, list);
      else accepted.delete(key);
    });
    return true;
  };

  /** smtp-server session ids of connections that met a bug: they end with reason 'error' */
  const faulted = new Set<string>();

  /** log a bug with the session id and turn it into the 421 that closes the connection */
  const fault = (err: unknown, s: SMTPServerSession): SmtpReplyError => {
    faulted.add(s.id);
    const sess = sessions.get(s.id);
    (sess?.log ?? deps.logger).error('session fault: closing the connection', {
      session: sess?.client.id,
      listener: name,
      err,
    });
    return faultReply();
  };
  /** Reply errors go to the client as they are; anything else is a fault. */
  const toClient = (err: unknown, s: SMTPServerSession): SmtpReplyError =>
    err instanceof SmtpReplyError ? err : fault(err, s);
  /**
   * Run a handler's body. smtp-server calls handlers from socket callbacks, where a throw
   * would be an uncaught exception for the whole process: it ends this connection instead.
   */
  const contain = <C extends Callback>(s: SMTPServerSession, cb: C, body: (cb: C) => void) => {
    const reply = once(cb);
    try {
      body(reply);
    } catch (err) {
      reply(fault(err, s));
    }
  };
  /** Answer with what `work` gives; a throw while answering, where the callback is spent, cuts the connection. */
  const answer = <T>(
    s: SMTPServerSession,
    cb: Callback,
    work: Promise<T>,
    ok: (value: T) => void,
  ): void => {
    work
      .then(ok, (err: unknown) => cb(toClient(err, s)))
      .catch((err: unknown) => {
        const reply = fault(err, s);
        for (const c of server.connections)
          if (c.id === s.id) c.send(reply.responseCode, reply.message);
      });
  };
  // failed AUTHs per connection (submission.ts closes after a few); gone with the session
  const authTally = new WeakMap<SmtpSession, { failures: number }>();

  const openRelay = async (
    side: Side,
    ep: Endpoint,
    client: SessionClient,
    auth?: { user: string; password: string },
  ): Promise<Relay> => {
    const c = deps.config();
    const backend = await openBackend(ep, {
      label: `${side} ${ep.submission ? 'submission' : ep.protocol.toUpperCase()}`,
      timeouts: c.timeouts,
      ca: deps.ca,
      heloName,
      client:
        deps.forwardClient?.[side] === false
          ? undefined
          : { address: client.address, port: client.port, helo: client.helo, proto: 'ESMTP' },
      auth,
    });
    if (backend.xclientRefused) {
      deps.logger.warn('backend refused XCLIENT; it sees the gateway as the client', {
        side,
        backend: ep.url,
        reply: backend.xclientRefused,
      });
    }
    return new Relay(backend);
  };

  const sessionOf = (s: SMTPServerSession): SmtpSession => {
    const sess = sessions.get(s.id);
    if (!sess) throw new Error(`no SMTP session ${s.id}`);
    if (s.hostNameAppearsAs) sess.client.helo = s.hostNameAppearsAs;
    return sess;
  };

  const options: SMTPServerOptions = {
    name: heloName,
    secure: name === 'submissions',
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

    onConnect(s, cb) {
      contain(s, cb, (cb) => {
        const address = unmapIpv4(s.remoteAddress);
        if (deps.stopping?.()) return cb(outcomeError('shutting-down'));
        const slot = admit(s);
        if (!slot) {
          deps.logger.warn('connection refused: limit reached', {
            client: address,
            listener: name,
          });
          return cb(outcomeError('too-many-connections'));
        }
        releases.set(s.id, slot);
        const id = randomBytes(6).toString('base64url');
        const sess = new SmtpSession(
          { id, listener: name, address, port: s.remotePort },
          {
            config: deps.config,
            stateOf: (a) => deps.store.get(a)?.state,
            relayLog: deps.relayLog,
            bus: deps.bus,
            logger: deps.logger,
            limits,
            openRelay,
          },
        );
        sessions.set(s.id, sess);
        deps.bus.emit({
          type: 'session.opened',
          at: new Date().toISOString(),
          session: id,
          protocol: 'smtp',
          listener: name,
          client: { address, port: s.remotePort },
          tls: s.secure,
        });
        cb();
      });
    },

    onSecure(socket, s, cb) {
      contain(s, cb, (cb) => {
        const sess = sessions.get(s.id);
        const t = socket as import('node:tls').TLSSocket;
        if (sess) {
          deps.bus.emit({
            type: 'session.tls',
            at: new Date().toISOString(),
            session: sess.client.id,
            protocol: 'smtp',
            version: t.getProtocol?.() ?? 'unknown',
            cipher: t.getCipher?.()?.name ?? 'unknown',
          });
        }
        cb();
      });
    },

    onAuth(auth, s, cb) {
      contain(s, cb, (cb) => {
        const sess = sessionOf(s);
        if (!submission || (auth.method !== 'PLAIN' && auth.method !== 'LOGIN'))
          return cb(new SmtpReplyError(504, '5.5.4 Unrecognized authentication type'));
        // smtp-server-overrides.ts refuses AUTH before TLS at the command; this holds should that ever change.
        if (!s.secure && !authWithoutTls(sess.client.address))
          return cb(outcomeError('privacy-required'));
        const work = authenticate(
          {
            user: auth.username ?? '',
            password: auth.password ?? '',
            authzid: (auth as { authzid?: string }).authzid,
            mechanism: auth.method,
          },
          {
            session: sess.client.id,
            clientAddress: sess.client.address,
            connection: authTally.get(sess) ?? authTally.set(sess, { failures: 0 }).get(sess)!,
            openRelay: (side, ep, creds) => openRelay(side, ep, sess.client, creds),
          },
          {
            config: deps.config,
            store: deps.store,
            keyring: deps.keyring!,
            brakes: deps.brakes!,
            bus: deps.bus,
            logger: deps.logger,
          },
        );
        answer(s, cb, work, (r) => {
          if (r.ok) {
            sess.authenticated(r.login, r.relay);
            return cb(null, { user: r.login.address });
          }
          // Too many sockets held in the brakes' delay: answer at once and close
          // (smtp-server closes after any 421).
          cb(r.close ? outcomeError('too-many-attempts') : outcomeError(r.outcome, 'auth'));
        });
      });
    },

    onMailFrom(address, s, cb) {
      contain(s, cb, (cb) => {
        const sess = sessionOf(s);
        if (submission && !s.user) return cb(outcomeError('auth-required'));
        answer(s, cb, sess.onMail(address.address, mailParams(address.args)), () => cb());
      });
    },

    onRcptTo(address, s, cb) {
      contain(s, cb, (cb) => {
        answer(s, cb, sessionOf(s).onRcpt(address.address), () => cb());
      });
    },

    onData(stream, s, cb) {
      contain(s, cb, (cb) => {
        answer(s, cb, sessionOf(s).onData(stream), (text) => cb(null, text));
      });
    },

    onClose(s) {
      releases.get(s.id)?.();
      releases.delete(s.id);
      const error = faulted.delete(s.id);
      const sess = sessions.get(s.id);
      if (!sess) {
        // a fault before the session existed (onConnect) still ends a connection, counted
        if (error) deps.bus.emit(faultBeforeSession(s));
        return;
      }
      sessions.delete(s.id);
      try {
        sess
          .close()
          .catch((err: unknown) => sess.log.error('session fault while closing', { err }));
        deps.bus.emit({
          type: 'session.closed',
          at: new Date().toISOString(),
          session: sess.client.id,
          protocol: 'smtp',
          user: sess.login?.address,
          reason: error ? 'error' : 'client-closed',
          bytesIn: sess.bytesIn,
          bytesOut: 0,
          durationMs: Date.now() - sess.started,
        });
      } catch (err) {
        sess.log.error('session fault while closing', { err });
      }
    },
  };

  const server = new GatewaySmtpServer(options, { authWithoutTls });
  const gate = deps.proxy?.listeners.includes(name) ? deps.proxy.gate : undefined;
  if (gate)
    readProxyFirst(
      server,
      gate,
      (raw, peer) => {
        if (name !== 'submissions' || !deps.connections) return true;
        return onAccept(raw, peer);
      },
      (r) =>
        deps.logger.warn('connection refused: no valid PROXY header from a trusted proxy', {
          listener: name,
          proxy: r.proxy,
          reason: r.reason,
          detail: r.detail,
        }),
    );
  else if (name === 'submissions' && deps.connections)
    server.server.prependListener('connection', (raw: Socket) => void onAccept(raw));
  server.on('error', (err) => deps.logger.warn('SMTP connection error', { listener: name, err }));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return {
    name,
    address: { host: bound.address, port: bound.port },
    server,
    sessions: () => sessions.size,
    reloadTls(next) {
      const material = tlsMaterial(next);
      if (material) server.updateSecureContext(material);
    },
    close(graceMs = 30_000) {
      server.options.closeTimeout = graceMs;
      return new Promise<void>((resolve) => server.close(() => resolve())).finally(async () => {
        await Promise.all([...sessions.values()].map((x) => x.close()));
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
