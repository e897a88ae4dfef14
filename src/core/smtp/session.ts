/**
 * One client connection to an SMTP listener and its transactions: the state machine
 * behind smtp-server's handlers (style.md habit 4: SMTP per transaction).
 *
 *   port 25:     MAIL (remembered) -> RCPT: route, open/join the backend, relay RCPT -> DATA: stream
 *   submission:  AUTH: check at the account's home, keep that connection -> MAIL: relay ->
 *                RCPT: relay to the home, or straight to the side holding a local recipient's
 *                mailbox (recipients.ts, routeSubmissionRecipient) -> DATA: stream to each leg
 *
 * Backend connections are leased by the session (lease.ts) and always released when it
 * ends (QUIT, disconnect, shutdown). Every refusal is an Outcome (replies.ts) or the
 * backend's own reply passed through; the client never gets 250 for something a backend
 * did not accept.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { ReplyError, type Outcome } from '../replies.js';
import type { RouteReason } from '../routing/decide.js';
import type { AccountState } from '../state/types.js';
import { isUpstreamFailure, toReplyError } from '../upstreams/errors.js';
import { BackendLease } from './lease.js';
import { recordDelivery } from './delivery-record.js';
import { finalReply, relayData, type LegResult, type MailParams, type Relay } from './relay.js';
import { HeaderCollector, messageFacts } from './message-facts.js';
import {
  joinTransaction,
  routeRecipient,
  accountKeys,
  routeSubmissionRecipient,
  type RouteContext,
  type Side,
} from './recipients.js';
import { outcomeError, passThrough, SmtpReplyError } from './reply-error.js';
import { enhancedReplyText, type SmtpReply } from './smtp-client.js';
import type { SessionClient, SessionDeps, Leg, Transaction } from './session-types.js';
import type { SubmissionLogin } from './submission.js';
import { scannerOf } from './smtp-server-overrides.js';

export type { SessionClient, SessionDeps, SmtpListenerName } from './session-types.js';

export class SmtpSession {
  login: SubmissionLogin | undefined;
  bytesIn = 0;
  messages = 0;
  readonly started = Date.now();
  /** port 25: the backend the recipients route to; submission: the user's home */
  private readonly main: BackendLease;
  /** submission: the delivery endpoint of the side the home is not */
  private readonly direct: BackendLease;
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
    this.main = new BackendLease((side) =>
      this.open(side, this.submission ? 'submission' : 'smtp', this.login),
    );
    this.direct = new BackendLease((side) => this.open(side, 'smtp'));
  }

  get submission(): boolean {
    return this.client.listener !== 'smtp';
  }

  /** AUTH went through: keep its backend connection for the mail that follows. */
  authenticated(login: SubmissionLogin, relay: Relay): void {
    this.login = login;
    this.main.adopt(relay, login.side);
  }

  async onMail(from: string, params: MailParams): Promise<void> {
    await this.abandonTransaction();
    this.tx = { from, params, side: undefined, recipients: [], mailSent: false };
    if (!this.submission) return; // port 25 waits for the first RCPT to know the backend
    if (!this.login) throw outcomeError('auth-required');
    const r = await this.begin(
      this.main,
      this.login.side,
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
    if (tx.failed) throw tx.failed;
    let leg: Leg = tx;
    let lease = this.main;
    let side: Side;
    let reason: RouteReason;
    if (this.submission) {
      const route = await this.routed(address, (ctx) =>
        routeSubmissionRecipient(address, this.login!.side, ctx),
      );
      if (route.kind === 'home') {
        // The home server decides what this user may relay; the gateway asks it per RCPT.
        side = this.login!.side;
        reason = this.login!.reason;
      } else {
        side = route.side;
        reason = route.reason;
        leg = tx.direct ??= { side, recipients: [], mailSent: false };
        lease = this.direct;
      }
    } else {
      const route = await this.routed(address, (ctx) => routeRecipient(address, ctx));
      side = route.side;
      reason = route.reason;
      const join = joinTransaction(
        { side: tx.side, accepted: tx.recipients.length, lmtp: this.relayIsLmtp(side) },
        side,
      );
      if (join === 'defer') throw outcomeError('recipient-deferred', 'rcpt');
      if (join === 'switch') {
        await this.main.release();
        tx.mailSent = false;
      }
      tx.side = side;
    }
    const r = await this.relayRcpt(tx, leg, lease, side, address);
    if (r.code < 200 || r.code >= 300) throw passThrough(r);
    leg.recipients.push({ address, reason });
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
    // A leg without recipients (a submission's home, when every recipient went straight)
    // takes no part; its open transaction is reset by the next MAIL.
    const legs: Array<{ leg: Leg; lease: BackendLease; relay: Relay }> = [];
    for (const [leg, lease] of [
      [tx, this.main],
      [tx?.direct, this.direct],
    ] as const) {
      const relay = leg?.side ? lease.held(leg.side) : undefined;
      if (leg && relay && leg.mailSent && leg.recipients.length > 0)
        legs.push({ leg, lease, relay });
    }
    if (tx?.failed) {
      stream.resume();
      throw tx.failed;
    }
    if (!tx || legs.length === 0) {
      stream.resume();
      throw new SmtpReplyError(503, '5.5.1 Error: no valid recipients');
    }
    const scan = scannerOf(stream);
    if (!scan) {
      stream.resume();
      throw new Error(
        'the DATA stream did not come from GatewaySmtpServer (smtp-server-overrides.ts)',
      );
    }
    const started = Date.now();
    const headers = new HeaderCollector(this.deps.limits.maxHeaderBytes);
    let result;
    try {
      result = await relayData(
        legs.map((l) => l.relay),
        stream,
        scan,
        {
          maxBytes: this.deps.limits.maxMessageBytes,
          bareLineEndings: this.deps.limits.bareLineEndings,
          replyMs: this.deps.limits.dataReplyMs,
          tap: (c) => headers.push(c),
        },
      );
    } catch (err) {
      return this.failed(err, legs);
    }
    this.bytesIn += result.bytes;
    // The scanner counts message bytes as SIZE does (RFC 1870) and relayData() stops before
    // the end of data: a message over the limit never reaches a backend complete.
    if (result.kind === 'aborted') {
      await Promise.all(legs.map((l) => l.lease.release()));
      const why = result.reason;
      this.log.info('message not relayed', { reason: why, bytes: result.bytes, from: tx.from });
      if (why === 'too-big') throw outcomeError('message-too-big');
      if (why === 'bare-line-ending') throw outcomeError('bare-line-ending');
      throw outcomeError('backend-unavailable');
    }
    const facts = messageFacts(headers.headers(), tx.from);
    let answer: string | undefined;
    let refusal: SmtpReplyError | undefined;
    for (let i = 0; i < legs.length; i++) {
      const { leg, lease, relay } = legs[i]!;
      const r: LegResult = result.legs[i]!;
      if (r.kind === 'withheld') continue;
      if (r.kind === 'failed') {
        refusal ??= this.failedLeg(r.error, lease, relay);
        continue;
      }
      const reply = r.kind === 'refused' ? r.reply : finalReply(r.replies);
      const accepted = reply.code >= 200 && reply.code < 300;
      if (!accepted) refusal ??= passThrough(reply);
      else answer ??= enhancedReplyText(reply);
      if (r.kind !== 'replied') continue;
      recordDelivery(this.deps, {
        client: this.client,
        user: this.login?.address,
        from: tx.from,
        side: leg.side!,
        recipients: leg.recipients,
        backend: relay.where,
        reply,
        accepted,
        bytes: result.bytes,
        bareLineEndings: result.bareLineEndings,
        facts,
        started,
      });
    }
    if (result.legs.some((l) => l.kind === 'replied')) this.messages++;
    if (refusal) {
      // A leg that accepted before another refused has delivered its copy: said in the log,
      // the client's retry (if any) brings those recipients a second one (recipients.ts).
      if (legs.length > 1 && answer !== undefined)
        this.log.warn('message delivered on one leg and refused on the other', {
          from: tx.from,
          reply: refusal.message,
        });
      throw refusal;
    }
    return answer!;
  }

  /** The client left or the server stops: release the backends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tx = undefined;
    await Promise.all([this.main.release(), this.direct.release()]);
  }

  /** Route with the store's view of the recipient; a refusal becomes the reply for RCPT. */
  private async routed<R extends { kind: string }>(
    address: string,
    decide: (ctx: RouteContext) => R | { kind: 'refuse'; outcome: Outcome; detail: string },
  ): Promise<Exclude<R, { kind: 'refuse' }>> {
    const c = this.deps.config();
    let route;
    try {
      // The routing is pure: the states it may ask for are read first.
      const states = new Map<string, AccountState | undefined>();
      for (const k of accountKeys(address, c.domains)) states.set(k, await this.deps.stateOf(k));
      route = decide({
        domains: c.domains,
        hasSource: !!c.source.smtp,
        hasDestination: !!c.destination.smtp,
        stateOf: (a) => states.get(a),
      });
    } catch (err) {
      this.log.error('account store unavailable while routing a recipient', { rcpt: address, err });
      throw outcomeError('store-unavailable', 'rcpt');
    }
    if (route.kind === 'refuse') {
      const r = route as { outcome: Outcome; detail: string };
      this.log.info('recipient refused', { rcpt: address, outcome: r.outcome, detail: r.detail });
      throw outcomeError(r.outcome, 'rcpt');
    }
    return route as Exclude<R, { kind: 'refuse' }>;
  }

  private relayIsLmtp(side: Side): boolean {
    const held = this.main.held(side);
    if (held) return held.lmtp;
    return this.deps.config()[side].smtp?.protocol === 'lmtp';
  }

  private async relayRcpt(
    tx: Transaction,
    leg: Leg,
    lease: BackendLease,
    side: Side,
    address: string,
  ): Promise<SmtpReply> {
    const held = lease.held(side);
    if (leg.mailSent && held) return this.guard(lease, held.rcpt(address));
    const { mail, rcpt } = await this.begin(
      lease,
      side,
      (relay) => relay.mailAndRcpt(tx.from, tx.params, address),
      (x) => x.mail,
    );
    if (mail.code < 200 || mail.code >= 300) throw passThrough(mail);
    leg.mailSent = true;
    return rcpt!;
  }

  private async begin<T>(
    lease: BackendLease,
    side: Side,
    step: (relay: Relay) => Promise<T>,
    firstReply: (result: T) => SmtpReply,
  ): Promise<T> {
    const { result, retried } = await this.guard(lease, lease.begin(side, step, firstReply));
    if (retried) this.log.debug('kept backend connection was closed; opened a new one', { side });
    return result;
  }

  /** Connect for a lease; failures become the reply for the client. */
  private async open(
    side: Side,
    kind: 'submission' | 'smtp',
    auth?: { user: string; password: string },
  ): Promise<Relay> {
    const ep = this.deps.config()[side][kind];
    if (!ep) throw outcomeError('backend-unavailable', 'rcpt');
    try {
      return await this.deps.openRelay(side, ep, this.client, auth);
    } catch (err) {
      const e = toReplyError(err, `${side} ${ep.protocol.toUpperCase()}`);
      this.log.warn('backend unavailable', { side, backend: ep.url, detail: e.detail });
      // A password that worked at AUTH and fails now: the session is no longer good.
      throw outcomeError(e.outcome === 'auth-failed' ? 'backend-unavailable' : e.outcome);
    }
  }

  /**
   * Backend failures in the middle of a transaction become 451 4.4.1 and end the lease.
   * Recipients the backend accepted went with its connection, yet the client holds their
   * 250 and goes on to DATA: the transaction stays, failed, so the rest of it (RCPT and
   * the end of DATA) is answered with the same 4xx and the sender retries every recipient
   * later (RFC 5321 4.2.5, 4.5.4.1). Dropping it made DATA a 503, which MTAs bounce.
   */
  private async guard<T>(lease: BackendLease, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof SmtpReplyError) throw err;
      const reply = this.failedLeg(err, lease, lease.held());
      if (this.tx) this.tx.failed = reply;
      throw reply;
    }
  }

  /** DATA failed before any backend had the whole message: nothing was delivered. */
  private failed(err: unknown, legs: Array<{ lease: BackendLease }>): never {
    if (err instanceof SmtpReplyError) throw err;
    legs.slice(1).forEach((l) => l.lease.discard());
    throw this.failedLeg(err, legs[0]!.lease, legs[0]!.lease.held());
  }

  private failedLeg(err: unknown, lease: BackendLease, relay: Relay | undefined): SmtpReplyError {
    const e = isUpstreamFailure(err) ? toReplyError(err, relay?.label ?? 'backend') : undefined;
    this.log.warn('backend failed during a transaction', { detail: e?.detail ?? String(err), err });
    lease.discard();
    return outcomeError(e ? e.outcome : 'internal-error');
  }

  private async abandonTransaction(): Promise<void> {
    for (const lease of [this.main, this.direct]) {
      const r = lease.held();
      if (r?.open) await r.reset();
    }
    this.tx = undefined;
  }
}

export { ReplyError };
