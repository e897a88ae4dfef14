/**
 * What one SMTP listener does at each step smtp-server hands it: connect, TLS, AUTH, MAIL,
 * RCPT, DATA, close. Each handler runs inside the listener's HandlerGuard and passes the
 * transaction to its SmtpSession (session.ts), which does the SMTP work; these only
 * translate between smtp-server's callbacks and the session, and keep the books (slots,
 * sessions, events).
 */
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerDataStream,
  SMTPServerSession,
} from 'smtp-server';
import type { CloseReason, EventBus } from '../bus.js';
import type { Endpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import type { ConnectionLimiter } from '../listen/connection-limiter.js';
import type { ProxyGate } from '../listen/proxy-gate.js';
import type { Logger } from '../log/logger.js';
import type { Brakes } from '../login/brakes.js';
import type { Keyring } from '../state/crypto.js';
import type { StateStore } from '../state/types.js';
import { unmapIpv4 } from '../net-address.js';
import type { ConnectionSlots } from './connection-slots.js';
import { faultBeforeSession, type Callback, type HandlerGuard } from './handler-guard.js';
import type { SmtpLimits } from './limits.js';
import type { Side } from './recipients.js';
import type { RelayLog } from './relay-log.js';
import { Relay, type MailParams } from './relay.js';
import { outcomeError, SmtpReplyError } from './reply-error.js';
import { SmtpSession, type SessionClient, type SmtpListenerName } from './session.js';
import { openBackend } from './smtp-client.js';
import type { CutOff } from './smtp-server-overrides.js';
import { authenticate } from './submission.js';

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

/** One listener's settings and books, shared by its handlers. */
export interface ListenerContext {
  name: SmtpListenerName;
  deps: SmtpFrontendDeps;
  limits: SmtpLimits;
  /** port 587 or 465: AUTH before MAIL */
  submission: boolean;
  heloName: string;
  authWithoutTls(address: string): boolean;
  guard: HandlerGuard;
  slots: ConnectionSlots;
  /** by smtp-server session id */
  sessions: Map<string, SmtpSession>;
  /** connection slots to give back at close, by smtp-server session id */
  releases: Map<string, () => void>;
  /** connections the gateway cut off (smtp-server-overrides.ts), by smtp-server session id */
  cutOffs: Map<string, CutOff>;
  /** failed AUTHs per connection (submission.ts closes after a few); gone with the session */
  authTally: WeakMap<SmtpSession, { failures: number }>;
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

/** A backend connection for one leg of a transaction, ready to relay. */
export async function openRelay(
  ctx: ListenerContext,
  side: Side,
  ep: Endpoint,
  client: SessionClient,
  auth?: { user: string; password: string },
): Promise<Relay> {
  const { deps } = ctx;
  const c = deps.config();
  const backend = await openBackend(ep, {
    label: `${side} ${ep.submission ? 'submission' : ep.protocol.toUpperCase()}`,
    timeouts: c.timeouts,
    ca: deps.ca,
    heloName: ctx.heloName,
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
}

function sessionOf(ctx: ListenerContext, s: SMTPServerSession): SmtpSession {
  const sess = ctx.sessions.get(s.id);
  if (!sess) throw new Error(`no SMTP session ${s.id}`);
  if (s.hostNameAppearsAs) sess.client.helo = s.hostNameAppearsAs;
  return sess;
}

export function onConnect(ctx: ListenerContext, s: SMTPServerSession, cb: Callback): void {
  const { deps, name } = ctx;
  ctx.guard.contain(s, cb, (cb) => {
    const address = unmapIpv4(s.remoteAddress);
    if (deps.stopping?.()) return cb(outcomeError('shutting-down'));
    const slot = ctx.slots.admit(s);
    if (!slot) {
      deps.logger.warn('connection refused: limit reached', { client: address, listener: name });
      return cb(outcomeError('too-many-connections'));
    }
    ctx.releases.set(s.id, slot);
    const id = randomBytes(6).toString('base64url');
    const sess = new SmtpSession(
      { id, listener: name, address, port: s.remotePort },
      {
        config: deps.config,
        stateOf: async (a) => (await deps.store.get(a))?.state,
        relayLog: deps.relayLog,
        bus: deps.bus,
        logger: deps.logger,
        limits: ctx.limits,
        openRelay: (side, ep, client, auth) => openRelay(ctx, side, ep, client, auth),
      },
    );
    ctx.sessions.set(s.id, sess);
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
}

export function onSecure(
  ctx: ListenerContext,
  socket: TLSSocket,
  s: SMTPServerSession,
  cb: Callback,
): void {
  ctx.guard.contain(s, cb, (cb) => {
    const sess = ctx.sessions.get(s.id);
    if (sess) {
      ctx.deps.bus.emit({
        type: 'session.tls',
        at: new Date().toISOString(),
        session: sess.client.id,
        protocol: 'smtp',
        version: socket.getProtocol?.() ?? 'unknown',
        cipher: socket.getCipher?.()?.name ?? 'unknown',
      });
    }
    cb();
  });
}

export function onAuth(
  ctx: ListenerContext,
  auth: SMTPServerAuthentication,
  s: SMTPServerSession,
  cb: Callback,
): void {
  const { deps } = ctx;
  ctx.guard.contain(s, cb, (cb) => {
    const sess = sessionOf(ctx, s);
    if (!ctx.submission || (auth.method !== 'PLAIN' && auth.method !== 'LOGIN'))
      return cb(new SmtpReplyError(504, '5.5.4 Unrecognized authentication type'));
    // smtp-server-overrides.ts refuses AUTH before TLS at the command; this holds should that ever change.
    if (!s.secure && !ctx.authWithoutTls(sess.client.address))
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
        connection: ctx.authTally.get(sess) ?? ctx.authTally.set(sess, { failures: 0 }).get(sess)!,
        openRelay: (side, ep, creds) => openRelay(ctx, side, ep, sess.client, creds),
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
    ctx.guard.answer(s, cb, work, (r) => {
      if (r.ok) {
        sess.authenticated(r.login, r.relay);
        return cb(null, { user: r.login.address });
      }
      // Too many sockets held in the brakes' delay: answer at once and close
      // (smtp-server closes after any 421).
      cb(r.close ? outcomeError('too-many-attempts') : outcomeError(r.outcome, 'auth'));
    });
  });
}

export function onMailFrom(
  ctx: ListenerContext,
  address: SMTPServerAddress,
  s: SMTPServerSession,
  cb: Callback,
): void {
  ctx.guard.contain(s, cb, (cb) => {
    const sess = sessionOf(ctx, s);
    if (ctx.submission && !s.user) return cb(outcomeError('auth-required'));
    ctx.guard.answer(s, cb, sess.onMail(address.address, mailParams(address.args)), () => cb());
  });
}

export function onRcptTo(
  ctx: ListenerContext,
  address: SMTPServerAddress,
  s: SMTPServerSession,
  cb: Callback,
): void {
  ctx.guard.contain(s, cb, (cb) => {
    ctx.guard.answer(s, cb, sessionOf(ctx, s).onRcpt(address.address), () => cb());
  });
}

export function onData(
  ctx: ListenerContext,
  stream: SMTPServerDataStream,
  s: SMTPServerSession,
  cb: Callback,
): void {
  ctx.guard.contain(s, cb, (cb) => {
    ctx.guard.answer(s, cb, sessionOf(ctx, s).onData(stream), (text) => cb(null, text));
  });
}

const CUT_REASON: Record<CutOff, CloseReason> = {
  'login-timeout': 'preauth-timeout',
  'too-many-commands': 'protocol-error',
  'too-many-errors': 'protocol-error',
};

export function onClose(ctx: ListenerContext, s: SMTPServerSession): void {
  const { deps } = ctx;
  ctx.releases.get(s.id)?.();
  ctx.releases.delete(s.id);
  const cut = ctx.cutOffs.get(s.id);
  ctx.cutOffs.delete(s.id);
  const error = ctx.guard.takeFaulted(s);
  const sess = ctx.sessions.get(s.id);
  if (!sess) {
    // a fault before the session existed (onConnect) still ends a connection, counted
    if (error) deps.bus.emit(faultBeforeSession(s));
    return;
  }
  ctx.sessions.delete(s.id);
  try {
    sess.close().catch((err: unknown) => sess.log.error('session fault while closing', { err }));
    deps.bus.emit({
      type: 'session.closed',
      at: new Date().toISOString(),
      session: sess.client.id,
      protocol: 'smtp',
      user: sess.login?.address,
      reason: error ? 'error' : cut ? CUT_REASON[cut] : 'client-closed',
      bytesIn: sess.bytesIn,
      bytesOut: 0,
      durationMs: Date.now() - sess.started,
    });
  } catch (err) {
    sess.log.error('session fault while closing', { err });
  }
}
