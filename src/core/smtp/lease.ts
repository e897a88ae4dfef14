/**
 * One backend connection leased by a client session (style.md habit 6): opened when a
 * transaction needs it, kept for the session's next transaction to the same side,
 * replaced when the backend closed it meanwhile, and released when the session ends.
 * A session holds one lease per leg (session.ts): the port-25 route or the submission
 * home, and a submission's straight-delivery leg.
 */
import { isUpstreamFailure } from '../upstreams/errors.js';
import type { Relay } from './relay.js';
import type { Side } from './recipients.js';
import type { SmtpReply } from './smtp-client.js';

export class BackendLease {
  private relay: Relay | undefined;
  private side: Side | undefined;

  /** `open` connects to `side` (EHLO, TLS, XCLIENT, AUTH) and throws what the client should get. */
  constructor(private readonly open: (side: Side) => Promise<Relay>) {}

  /** The relay held for `side` (any side when not given), open or not. */
  held(side?: Side): Relay | undefined {
    return side === undefined || this.side === side ? this.relay : undefined;
  }

  /** Take over a connection opened elsewhere (the one AUTH logged in on). */
  adopt(relay: Relay, side: Side): void {
    const old = this.relay;
    this.relay = relay;
    this.side = side;
    if (old && old !== relay) void old.release();
  }

  /** The connection for `side`, opened when needed (a dead one, or one to the other side, is replaced). */
  async get(side: Side): Promise<Relay> {
    if (this.relay && this.side === side && this.relay.isOpen) return this.relay;
    await this.release();
    this.relay = await this.open(side);
    this.side = side;
    return this.relay;
  }

  /**
   * Start a transaction with `step`. A connection kept from an earlier transaction may
   * have been closed by the backend meanwhile (its idle timeout: Postfix says 421 and
   * hangs up); then the step runs once more on a fresh connection.
   */
  async begin<T>(
    side: Side,
    step: (relay: Relay) => Promise<T>,
    firstReply: (result: T) => SmtpReply,
  ): Promise<{ result: T; retried: boolean }> {
    const reused = this.relay !== undefined && this.side === side && this.relay.isOpen;
    const relay = await this.get(side);
    if (!reused) return { result: await step(relay), retried: false };
    try {
      const result = await step(relay);
      if (firstReply(result).code !== 421) return { result, retried: false };
    } catch (err) {
      if (!isUpstreamFailure(err) || err.code !== 'ECLOSED') throw err;
    }
    await this.release();
    return { result: await step(await this.get(side)), retried: true };
  }

  /**
   * Close and forget a connection that just failed, without QUIT: its replies may be out
   * of step (a late answer would be read as QUIT's) and a stalled server would only make
   * the client wait for its 4xx longer.
   */
  discard(): void {
    const r = this.relay;
    this.relay = undefined;
    this.side = undefined;
    r?.close();
  }

  /** QUIT and forget the connection; never throws. */
  async release(): Promise<void> {
    const r = this.relay;
    this.relay = undefined;
    this.side = undefined;
    if (r) await r.release();
  }
}
