/**
 * One client connection to an SMTP listener and its transactions: the state machine
 * behind smtp-server's handlers (style.md habit 4: SMTP per transaction).
 *
 *   port 25:     MAIL (remembered) -> RCPT: route, open/join the backend, relay RCPT -> DATA: stream
 *   submission:  AUTH: check at the account's home, keep that connection -> MAIL: relay -> RCPT: relay -> DATA
 *
 * The backend connection is leased by the session and always released when it ends
 * (QUIT, disconnect, shutdown). Every refusal is an Outcome (replies.ts) or the backend's
 * own reply passed through; the client never gets 250 for something a backend did not
 * accept.
 */
import type { Readable } from 'node:stream';
import type { EventBus } from '../../bus.js';
import type { Endpoint } from '../../config/endpoint.js';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../log/logger.js';
import { ReplyError, smtpSpec, type Outcome, type SmtpPhase } from '../../replies.js';
import type { RouteReason } from '../../routing/decide.js';
import type { AccountState } from '../../state/types.js';
import { toReplyError, UpstreamError } from '../../upstreams/errors.js';
import type { SmtpLimits } from './limits.js';
import { finalReply, Relay, type MailParams } from './relay.js';
import { HeaderCollector, messageFacts, type RelayLog } from './relay-log.js';
import { joinTransaction, routeRecipient, type Side } from './route.js';
import { enhancedReplyText, replyLine, type SmtpReply } from './smtp-client.js';
import type { SubmissionLogin } from './submission.js';
import { scannerOf } from './wire.js';

export type SmtpListenerName = 'smtp' | 'submission' | 'submissions';

/** An error smtp-server turns into a reply line: `${responseCode} ${message}`. */
export class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function outcomeError(outcome: Outcome, phase: SmtpPhase = 'other'): SmtpReplyError {
  const s = smtpSpec(outcome, phase);
  return new SmtpReplyError(s.code, `${s.enhanced} ${s.text}`);
}

/** A backend's refusal, passed to the client as the backend said it, enhanced code included. */
export function passThrough(r: SmtpReply): SmtpReplyError {
  // Only failure codes go through; a backend that answers 1xx/3xx where a final reply belongs is broken.
  if (r.code < 400 || r.code > 599) return outcomeError('backend-unavailable');
  return new SmtpReplyError(r.code, enhancedReplyText(r));
}

export interface SessionDeps {
  config: () => Config;
  stateOf(account: string): AccountState | undefined;
  relayLog: RelayLog;
  bus: EventBus;
  logger: Logger;
  limits: SmtpLimits;
  /** connect to a backend for this client (EHLO, TLS, XCLIENT, AUTH); throws UpstreamError */
  openRelay(
    side: Side,
    endpoint: Endpoint,
    client: SessionClient,
    auth?: { user: string; password: string },
  ): Promise<Relay>;
}

export interface SessionClient {
  id: string;
  listener: SmtpListenerName;
  address: string;
  port: number;
  helo?: string;
}

interface Transaction {
  from: string;
  params: MailParams;
  side: Side | undefined;
  recipients: Array<{ address: string; reason: RouteReason }>;
  /** the backend accepted MAIL FROM for this transaction */
  mailSent: boolean;
}

export class SmtpSession {
  login: SubmissionLogin | undefined;
  bytesIn = 0;
  messages = 0;
  readonly started = Date.now();
  private relay: Relay | undefined;
  private relaySide: Side | undefined;
  private tx: Transaction | undefined;
  private closed = false;
  readonly log: Logger;

  constructor(
    readonly client: SessionClient,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.logger.child({
      session: client.id,
      protocol: 'smtp',
      listener: client.listener,
    });
  }

  get submission(): boolean {
    return this.client.listener !== 'smtp';
  }

  /** AUTH went through: keep its backend connection for the mail that follows. */
  authenticated(login: SubmissionLogin, relay: Relay): void {
    this.login = login;
    void this.dropRelay();
    this.relay = relay;
    this.relaySide = login.side;
  }

  async onMail(from: string, params: MailParams): Promise<void> {
    await this.abandonTransaction();
    this.tx = { from, params, side: undefined, recipients: [], mailSent: false };
    if (!this.submission) return; // port 25 waits for the first RCPT to know the backend
    if (!this.login) throw outcomeError('auth-required');
    const r = await this.begin(
      this.login.side,
      this.login,
      (relay) => relay.mail(from, params),
      (x) => x,
    );
    if (r.code < 200 || r.code >= 300) {
      this.tx = undefined;
      throw passThrough(r);
    }
    this.tx.side = this.login.side;
    this.tx.mailSent = true;
  }

  async onRcpt(address: string): Promise<void> {
    const tx = this.tx;
    if (!tx) throw new SmtpReplyError(503, '5.5.1 Error: need MAIL command');
    let side: Side;
    let reason: RouteReason;
    if (this.submission) {
      // The home server decides what this user may relay; the gateway asks it per RCPT.
      side = this.login!.side;
      reason = this.login!.reason;
    } else {
      const route = this.route(address);
      if (route.kind === 'refuse') {
        this.log.info('recipient refused', {
          rcpt: address,
          outcome: route.outcome,
          detail: route.detail,
        });
        throw outcomeError(route.outcome, 'rcpt');
      }
      side = route.side;
      reason = route.reason;
      const join = joinTransaction(
        { side: tx.side, accepted: tx.recipients.length, lmtp: this.relayIsLmtp(side) },
        side,
      );
      if (join === 'defer') throw outcomeError('recipient-deferred', 'rcpt');
      if (join === 'switch') {
        await this.dropRelay();
        tx.mailSent = false;
      }
      tx.side = side;
    }
    const r = await this.relayRcpt(tx, side, address);
    if (r.code < 200 || r.code >= 300) throw passThrough(r);
    tx.recipients.push({ address, reason });
    this.deps.bus.emit({
      type: 'session.route',
      at: new Date().toISOString(),
      session: this.client.id,
      protocol: 'smtp',
      user: address.toLowerCase(),
      target: side,
      reason,
    });
  }

  /** Resolves with the text after "250 "; rejects with the reply for the client. */
  async onData(stream: Readable): Promise<string> {
    const tx = this.tx;
    this.tx = undefined;
    const relay = this.relay;
    if (!tx || !relay || tx.recipients.length === 0 || !tx.mailSent) {
      stream.resume();
      throw new SmtpReplyError(503, '5.5.1 Error: no valid recipients');
    }
    const scan = scannerOf(stream);
    if (!scan) {
      stream.resume();
      throw new Error('the DATA stream did not come from GatewaySmtpServer (wire.ts)');
    }
    const started = Date.now();
    const headers = new HeaderCollector(this.deps.limits.maxHeaderBytes);
    const result = await this.guard(
      relay.data(stream, scan, {
        maxBytes: this.deps.limits.maxMessageBytes,
        bareLineEndings: this.deps.limits.bareLineEndings,
        replyMs: this.deps.limits.dataReplyMs,
        tap: (c) => headers.push(c),
      }),
    );
    this.bytesIn += result.bytes;
    // The scanner counts message bytes as SIZE does (RFC 1870) and relay.data() stops before
    // the end of data: a message over the limit never reaches a backend complete.
    if (result.kind === 'aborted') {
      await this.dropRelay();
      const why = result.reason;
      this.log.info('message not relayed', { reason: why, bytes: result.bytes, from: tx.from });
      if (why === 'too-big') throw outcomeError('message-too-big');
      if (why === 'bare-line-ending') throw outcomeError('bare-line-ending');
      throw outcomeError('backend-unavailable');
    }
    const reply = result.kind === 'refused' ? result.reply : finalReply(result.replies);
    const accepted = reply.code >= 200 && reply.code < 300;
    if (result.kind === 'replied') {
      this.messages++;
      const facts = messageFacts(headers.headers(), tx.from);
      this.deps.relayLog.record({
        time: new Date().toISOString(),
        session: this.client.id,
        listener: this.client.listener,
        client: this.client.address,
        helo: this.client.helo,
        user: this.login?.address,
        from: tx.from,
        recipients: tx.recipients,
        size: result.bytes,
        ...facts,
        route: tx.side!,
        backend: relay.where,
        reply: replyLine(reply),
        accepted,
        ...(result.bareLineEndings > 0 ? { bareLineEndings: result.bareLineEndings } : {}),
        durationMs: Date.now() - started,
      });
      this.deps.bus.emit({
        type: 'smtp.message',
        at: new Date().toISOString(),
        session: this.client.id,
        listener: this.client.listener,
        route: tx.side!,
        code: reply.code,
        accepted,
        recipients: tx.recipients.length,
        bytes: result.bytes,
      });
    }
    if (!accepted) throw passThrough(reply);
    return enhancedReplyText(reply);
  }

  /** The client left or the server stops: release the backend. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tx = undefined;
    await this.dropRelay();
  }

  private route(address: string): ReturnType<typeof routeRecipient> {
    const c = this.deps.config();
    try {
      return routeRecipient(address, {
        domains: c.domains,
        hasSource: !!c.source.smtp,
        hasDestination: !!c.destination.smtp,
        stateOf: (a) => this.deps.stateOf(a),
      });
    } catch (err) {
      this.log.error('account store unavailable while routing a recipient', { rcpt: address, err });
      throw outcomeError('store-unavailable', 'rcpt');
    }
  }

  private relayIsLmtp(side: Side): boolean {
    if (this.relay && this.relaySide === side) return this.relay.lmtp;
    return this.deps.config()[side].smtp?.protocol === 'lmtp';
  }

  private async relayRcpt(tx: Transaction, side: Side, address: string): Promise<SmtpReply> {
    if (tx.mailSent) return this.guard(this.relay!.rcpt(address));
    const { mail, rcpt } = await this.begin(
      side,
      undefined,
      (relay) => relay.mailAndRcpt(tx.from, tx.params, address),
      (x) => x.mail,
    );
    if (mail.code < 200 || mail.code >= 300) throw passThrough(mail);
    tx.mailSent = true;
    return rcpt!;
  }

  /**
   * Start a transaction on the session's backend. A connection kept from an earlier
   * transaction may have been closed by the backend meanwhile (its idle timeout: Postfix
   * says 421 and hangs up); then the same step runs once more on a fresh connection.
   */
  private async begin<T>(
    side: Side,
    auth: { user: string; password: string } | undefined,
    step: (relay: Relay) => Promise<T>,
    firstReply: (result: T) => SmtpReply,
  ): Promise<T> {
    const reused = this.relay !== undefined && this.relaySide === side && this.relay.isOpen;
    const relay = await this.lease(side, auth);
    if (reused) {
      try {
        const result = await step(relay);
        if (firstReply(result).code !== 421) return result;
      } catch (err) {
        if (!(err instanceof UpstreamError) || err.code !== 'ECLOSED')
          return this.guard(Promise.reject(err));
      }
      this.log.debug('kept backend connection was closed; opening a new one', { side });
      await this.dropRelay();
      return this.guard(step(await this.lease(side, auth)));
    }
    return this.guard(step(relay));
  }

  /** The session's backend for `side`, opened when needed (a dead one is replaced). */
  private async lease(side: Side, auth?: { user: string; password: string }): Promise<Relay> {
    if (this.relay && this.relaySide === side && this.relay.isOpen) return this.relay;
    await this.dropRelay();
    const c = this.deps.config();
    const ep = this.submission ? c[side].submission : c[side].smtp;
    if (!ep) throw outcomeError('backend-unavailable', 'rcpt');
    try {
      this.relay = await this.deps.openRelay(side, ep, this.client, auth);
    } catch (err) {
      const e = toReplyError(err, `${side} ${ep.protocol.toUpperCase()}`);
      this.log.warn('backend unavailable', { side, backend: ep.url, detail: e.detail });
      // A password that worked at AUTH and fails now: the session is no longer good.
      throw outcomeError(e.outcome === 'auth-failed' ? 'backend-unavailable' : e.outcome);
    }
    this.relaySide = side;
    return this.relay;
  }

  /** Backend failures in the middle of a transaction become 451 4.4.1 and end the lease. */
  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof SmtpReplyError) throw err;
      const e =
        err instanceof UpstreamError
          ? toReplyError(err, this.relay?.label ?? 'backend')
          : undefined;
      this.log.warn('backend failed during a transaction', {
        detail: e?.detail ?? String(err),
        err,
      });
      this.tx = undefined;
      await this.dropRelay();
      throw outcomeError(e ? e.outcome : 'internal-error');
    }
  }

  private async abandonTransaction(): Promise<void> {
    if (this.relay?.open) await this.relay.reset();
    this.tx = undefined;
  }

  private async dropRelay(): Promise<void> {
    const r = this.relay;
    this.relay = undefined;
    this.relaySide = undefined;
    if (r) await r.release();
  }
}

export { ReplyError };
