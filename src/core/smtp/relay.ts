/**
 * The upstream half of a transaction: stream-through, never store (Haraka's smtp_proxy
 * is the model). The backend connection is opened at MAIL FROM (submission) or at the
 * first RCPT (port 25, where the recipient picks the backend), each RCPT is relayed at
 * once so the backend's own answer (the source's 550 for an unknown user) reaches the
 * sender during the transaction, and DATA is streamed: the client gets 250 only after
 * the backend said 250 to the end of the data, so a crash of the gateway never loses a
 * message the sender believes delivered.
 *
 * A message the gateway cannot take (too big, bare line ending under "reject", the client
 * went away) is abandoned by closing the backend connection before the terminating dot:
 * RFC 5321 4.1.1.4 says a transaction without its end of data is not delivered.
 *
 * A submission can have two legs (recipients.ts, routeSubmissionRecipient): the message is
 * streamed to both, then ended on one after the other, the next only when the one before
 * accepted it; a leg that is not ended is closed before its dot and delivers nothing.
 */
import type { Readable } from 'node:stream';
import { UpstreamError } from '../upstreams/errors.js';
import { replyLine, type BackendSession, type SmtpReply } from './smtp-client.js';
import type { BareLineEndingPolicy, DataScanner } from './smuggling.js';

/** The end of data after the relayed message, which always ends in CRLF (smuggling.ts). */
const TERMINATOR = Buffer.from('.\r\n');

/** MAIL FROM parameters the gateway passes on when the backend supports them. */
export interface MailParams {
  size?: number;
  body?: '7bit' | '8bitmime';
  smtputf8?: boolean;
}

export interface DataOptions {
  maxBytes: number;
  bareLineEndings: BareLineEndingPolicy;
  /** wait for the final reply (RFC 5321 4.5.3.2.6) */
  replyMs: number;
  /** sees every chunk of the message as relayed (the relay log's header reader) */
  tap?: (chunk: Buffer) => void;
}

/** What became of the message at one backend (one leg). */
export type LegResult =
  /** the backend answered the end of data: one reply (SMTP) or one per recipient (LMTP, RFC 2033 4.2) */
  | { kind: 'replied'; replies: SmtpReply[] }
  /** the backend refused DATA itself (no valid recipients, policy): nothing was sent */
  | { kind: 'refused'; reply: SmtpReply }
  /** the connection failed after the whole message was sent, before the backend's answer */
  | { kind: 'failed'; error: unknown }
  /** an earlier leg failed, so this one was closed before its end of data: nothing delivered */
  | { kind: 'withheld' };

export type DataResult =
  | { kind: 'done'; legs: LegResult[]; bytes: number; bareLineEndings: number }
  /** the gateway abandoned the message; every leg's connection is closed */
  | { kind: 'aborted'; reason: 'too-big' | 'bare-line-ending' | 'client-gone'; bytes: number };

function mailFromLine(from: string, params: MailParams, backend: BackendSession): string {
  let line = `MAIL FROM:<${from}>`;
  if (params.size !== undefined && backend.has('SIZE')) line += ` SIZE=${params.size}`;
  if (params.body && backend.has('8BITMIME')) line += ` BODY=${params.body.toUpperCase()}`;
  if (params.smtputf8 && backend.has('SMTPUTF8')) line += ' SMTPUTF8';
  return line;
}

/** One backend connection leased by a client session; transactions run on it one after another. */
export class Relay {
  /** MAIL FROM was accepted and no DATA or RSET ended the transaction yet */
  private inTransaction = false;
  /** recipients the backend accepted in this transaction (LMTP answers once for each) */
  private accepted = 0;

  constructor(readonly backend: BackendSession) {}

  get lmtp(): boolean {
    return this.backend.lmtp;
  }

  get isOpen(): boolean {
    return this.backend.isOpen;
  }

  get where(): string {
    return this.backend.where;
  }

  get label(): string {
    return this.backend.label;
  }

  get open(): boolean {
    return this.inTransaction;
  }

  /** MAIL FROM; a non-2xx reply is returned for the client, not thrown. */
  async mail(from: string, params: MailParams): Promise<SmtpReply> {
    if (this.inTransaction) await this.reset();
    const r = await this.backend.command(mailFromLine(from, params, this.backend), 'MAIL FROM');
    this.inTransaction = r.code >= 200 && r.code < 300;
    this.accepted = 0;
    return r;
  }

  /**
   * MAIL FROM and the first RCPT TO in one round trip where the backend allows
   * PIPELINING (RFC 2920): port 25 opens the backend only at the first RCPT.
   */
  async mailAndRcpt(
    from: string,
    params: MailParams,
    to: string,
  ): Promise<{ mail: SmtpReply; rcpt?: SmtpReply }> {
    if (!this.backend.has('PIPELINING')) {
      const mail = await this.mail(from, params);
      return this.inTransaction ? { mail, rcpt: await this.rcpt(to) } : { mail };
    }
    if (this.inTransaction) await this.reset();
    this.backend.conn.write(`${mailFromLine(from, params, this.backend)}\r\nRCPT TO:<${to}>\r\n`);
    const t = this.backend.timeouts.commandMs;
    const mail = await this.backend.readReply(t, 'MAIL FROM');
    const rcpt = await this.backend.readReply(t, 'RCPT TO');
    this.inTransaction = mail.code >= 200 && mail.code < 300;
    this.accepted = 0;
    if (!this.inTransaction) return { mail };
    if (rcpt.code >= 200 && rcpt.code < 300) this.accepted++;
    return { mail, rcpt };
  }

  async rcpt(to: string): Promise<SmtpReply> {
    const r = await this.backend.command(`RCPT TO:<${to}>`, 'RCPT TO');
    if (r.code >= 200 && r.code < 300) this.accepted++;
    return r;
  }

  /** End an unfinished transaction (RFC 5321 4.1.1.5); a backend that fails it is closed. */
  async reset(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    this.accepted = 0;
    const r = await this.backend.command('RSET', 'RSET').catch(() => undefined);
    if (!r || r.code !== 250) this.backend.close();
  }

  /**
   * DATA. After 354 the backend is in data mode and the transaction is over whatever
   * follows; `expected` is how many replies the end of data will get.
   */
  async startData(): Promise<{ reply: SmtpReply; expected: number }> {
    const reply = await this.backend.command('DATA', 'DATA');
    // Refused: the transaction stays open at the backend (RFC 5321 3.3): the next mail() resets it.
    if (reply.code !== 354) return { reply, expected: 0 };
    const expected = this.lmtp ? Math.max(1, this.accepted) : 1;
    this.inTransaction = false;
    this.accepted = 0;
    return { reply, expected };
  }

  /** The last bytes and the terminator in one write, then the replies to the end of data. */
  async finishData(last: Buffer | undefined, expected: number, ms: number): Promise<SmtpReply[]> {
    const sock = this.backend.conn.socket;
    sock.cork();
    if (last) sock.write(last);
    sock.write(TERMINATOR);
    sock.uncork();
    const replies: SmtpReply[] = [];
    for (let i = 0; i < expected; i++)
      replies.push(await this.backend.readReply(ms, 'the end of DATA'));
    return replies;
  }

  /** Stream the message to this backend alone; see relayData. */
  data(input: Readable, scan: DataScanner, opts: DataOptions): Promise<DataResult> {
    return relayData([this], input, scan, opts);
  }

  /** QUIT and close; never throws. */
  async release(): Promise<void> {
    await this.backend.quit();
  }

  /** Close without QUIT (after a failure). */
  close(): void {
    this.backend.close();
  }
}

/**
 * Stream one message to one or more legs. `input` is the DATA stream of GatewaySmtpServer:
 * already what a backend gets (CRLF lines, dot-stuffed, no terminator), with `scan`
 * counting its message bytes and bare line endings as it goes (smtp-server-overrides.ts, smuggling.ts).
 *
 * Every leg gets DATA first: if one refuses, none is sent the message. The message is
 * then written to all, and the legs are ended in order, each only after the one before
 * accepted: a leg that refuses or fails stops the ones after it (closed before their dot).
 * Failures before any end of data throw UpstreamError, and nothing was delivered.
 */
export async function relayData(
  legs: Relay[],
  input: Readable,
  scan: DataScanner,
  opts: DataOptions,
): Promise<DataResult> {
  const results: LegResult[] = legs.map(() => ({ kind: 'withheld' }));
  const expected: number[] = [];
  const closeAll = (): void => legs.forEach((l) => l.backend.close());
  try {
    for (let i = 0; i < legs.length; i++) {
      const { reply, expected: n } = await legs[i]!.startData();
      if (reply.code !== 354) {
        results[i] = { kind: 'refused', reply };
        // The legs before it are in data mode: only closing ends that without a message.
        legs.slice(0, i).forEach((l) => l.backend.close());
        drain(input);
        return { kind: 'done', legs: results, bytes: 0, bareLineEndings: 0 };
      }
      expected.push(n);
    }
  } catch (err) {
    closeAll();
    drain(input);
    throw err;
  }
  const socks = legs.map((l) => l.backend.conn.socket);
  let abort: 'too-big' | 'bare-line-ending' | undefined;
  let failure: unknown;
  let held: Buffer | undefined;
  // The scanner runs ahead of this loop (it counts what smtp-server parsed, this reads
  // what the stream delivered), so a limit is seen no later than the chunk that broke it.
  const refusal = (): typeof abort =>
    scan.bytes > opts.maxBytes
      ? 'too-big'
      : opts.bareLineEndings === 'reject' && scan.bareLineEndings > 0
        ? 'bare-line-ending'
        : undefined;
  try {
    // Every chunk is read even after an abort or a backend failure: smtp-server answers
    // once the client's stream ended, and the client must see that answer after its dot.
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (abort || failure) continue;
      opts.tap?.(chunk);
      abort = refusal();
      if (abort) {
        closeAll();
        continue;
      }
      try {
        // One chunk is held back so the last one and the terminator leave in one write.
        if (held) {
          const slow = legs.filter((_, i) => !socks[i]!.write(held!));
          if (slow.length > 0) await Promise.all(slow.map((l) => drained(l.backend, opts.replyMs)));
        }
        held = chunk;
      } catch (err) {
        failure = err;
        closeAll();
      }
    }
  } catch {
    // The client's stream broke (it went away before its dot): never finish the message.
    closeAll();
    return { kind: 'aborted', reason: 'client-gone', bytes: scan.bytes };
  }
  if (failure) throw failure;
  // The stream ended, so the scanner saw the whole message: its counters are final.
  abort ??= refusal();
  if (abort || !scan.ended) {
    closeAll();
    return { kind: 'aborted', reason: abort ?? 'client-gone', bytes: scan.bytes };
  }
  for (let i = 0; i < legs.length; i++) {
    try {
      const replies = await legs[i]!.finishData(held, expected[i]!, opts.replyMs);
      results[i] = { kind: 'replied', replies };
      if (replies.every((r) => r.code >= 200 && r.code < 300)) continue;
    } catch (err) {
      results[i] = { kind: 'failed', error: err };
      legs[i]!.backend.close();
    }
    legs.slice(i + 1).forEach((l) => l.backend.close());
    break;
  }
  return {
    kind: 'done',
    legs: results,
    bytes: scan.bytes,
    bareLineEndings: scan.bareLineEndings,
  };
}

/** Wait until the backend socket takes more, or fail when it closes or stalls. */
function drained(backend: BackendSession, ms: number): Promise<void> {
  const sock = backend.conn.socket;
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.off('drain', onDrain);
      sock.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void =>
      done(new UpstreamError('ECLOSED', `${backend.label} closed the connection during DATA`));
    const timer = setTimeout(
      () => done(new UpstreamError('ETIMEOUT', `${backend.label} took no data for ${ms} ms`)),
      ms,
    );
    sock.once('drain', onDrain);
    sock.once('close', onClose);
    if (sock.destroyed) onClose();
  });
}

/** Read and drop the rest of a message nobody will relay. */
function drain(input: Readable): void {
  input.on('error', () => undefined);
  input.resume();
}

/** The single reply for an SMTP client from the backend's replies (one per recipient for LMTP). */
export function finalReply(replies: SmtpReply[]): SmtpReply {
  return replies.find((r) => r.code < 200 || r.code >= 300) ?? replies[0]!;
}

export { replyLine };
