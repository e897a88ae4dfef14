/**
 * What the gateway changes in smtp-server's own wire handling, in one place. smtp-server
 * keeps the SMTP state machine, the command parser and STARTTLS; three things it does
 * its own way are replaced, and one it lacks is added, by subclassing its server,
 * connection and parser:
 *
 * 1. DATA. smtp-server's parser looks at every byte of a message in a JavaScript loop,
 *    copies each chunk to keep its last bytes, and hands the message on dot-unstuffed,
 *    so the relay had to scan it once more to normalise and stuff it again: about 10 ms
 *    of CPU per MB, most of what the gateway cost (bench/smtp.ts). ScanningParser gives
 *    the DATA bytes to DataScanner (smuggling.ts) instead: one indexOf-based pass finds
 *    the end of data (CRLF.CRLF only), normalises bare CR/LF and keeps the client's
 *    dot-stuffing, and the onData stream carries what the backend gets, without the
 *    terminator. Its counters (message bytes for SIZE, bare line endings) are read with
 *    scannerOf().
 *
 * 2. Enhanced status codes (RFC 2034, RFC 3463). smtp-server prefixes a code it guesses
 *    from the reply code alone onto every reply, also onto ours, which carry their own
 *    (replies.ts) or the backend's. A reply text that starts with a code of its reply's
 *    class is sent as it is; smtp-server's own replies keep its code, except where its
 *    guess is wrong (FIXES).
 *
 * 3. AUTH before STARTTLS gets `530 5.7.0 Must issue a STARTTLS command first` (RFC 3207
 *    4) instead of smtp-server's 538: RFC 4954 6 keeps 538 5.7.11 "for historical purposes
 *    only" and says servers SHOULD NOT advertise a mechanism the connection's protection
 *    does not allow, so AUTH is not in the EHLO reply until TLS is up either.
 *
 * 4. Three cut-offs for a client that holds a connection without moving mail, which
 *    smtp-server lacks: its idle timeout restarts on every command, and its own counters
 *    stop at 10 unrecognized commands and (submission only) 10 commands before AUTH, which
 *    a NOOP every few minutes stretches to most of an hour. A login deadline from accept
 *    to AUTH on submission, and a cap on junk commands (NOOP, RSET, VRFY, HELP, EHLO...)
 *    between messages on every listener (Postfix's smtpd_junk_command_limit), and one on
 *    refused commands between messages (smtpd_hard_error_limit), each answered
 *    `421 4.7.0` (RFC 5321 3.8) and closed.
 *
 * The smtp-server methods this relies on are checked when a server is made, so an
 * upgrade that renames them fails at start-up instead of silently parsing DATA the old way.
 * What they do, and the reply texts FIXES matches, is checked on the version package.json
 * pins (exactly) by test/integration/smtp-server-internals.test.ts: run it after any
 * upgrade of smtp-server.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { smtpSpec, type Outcome } from '../replies.js';
import { DataScanner } from './smuggling.js';

const scanners = new WeakMap<object, DataScanner>();

/** The scanner behind a DATA stream from GatewaySmtpServer: message bytes, bare line endings. */
export function scannerOf(stream: object): DataScanner | undefined {
  return scanners.get(stream);
}

/** smtp-server's DATA parsing, with DataScanner doing the work. */
class ScanningParser extends SMTPStream {
  override startDataMode(maxBytes?: number | string | null): SMTPServerDataStream {
    const stream = super.startDataMode(maxBytes);
    scanners.set(stream, new DataScanner());
    return stream;
  }

  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    const stream = this._dataStream;
    const scanner = stream ? scanners.get(stream) : undefined;
    if (!stream || !scanner) return done(new Error('DATA bytes without a data stream'));
    const before = scanner.bytes;
    const step = scanner.push(chunk);
    this._countDataBytes(scanner.bytes - before);
    if (scanner.ended) {
      this._endDataMode(step.out.length > 0 ? step.out : false, step.rest!, done);
      return;
    }
    if (step.out.length === 0 || !stream.writable || stream.write(step.out) || stream.destroyed)
      return done();
    // Backpressure from the relay (a slow backend) reaches the client's socket here.
    const go = (): void => {
      stream.off('drain', go);
      stream.off('close', go);
      done();
    };
    stream.once('drain', go);
    stream.once('close', go);
  }
}

const ENHANCED = /^([245])\.\d{1,3}\.\d{1,3}(?=\s|$)/;

/** The text already starts with an RFC 3463 code of the reply's class. */
export function carriesEnhancedCode(code: number, text: string): boolean {
  const m = ENHANCED.exec(text);
  return m !== null && m[1] === String(code)[0];
}

/**
 * smtp-server's own replies whose guessed code (from the reply code alone) is wrong, with
 * the code that fits (RFC 3463 unless said otherwise).
 */
const FIXES: ReadonlyArray<{ code: number; text: RegExp; enhanced: string }> = [
  // X.3.2 System not accepting network messages (its guess: 4.4.2 bad connection)
  { code: 421, text: /^Server shutting down/, enhanced: '4.3.2' },
  // a client that keeps sending wrong commands is cut off for policy, as Postfix does
  { code: 421, text: /too many (unrecognized|unauthenticated) commands/, enhanced: '4.7.0' },
  // VRFY's "cannot verify" is no X.1.5 "destination address valid"
  { code: 252, text: /./, enhanced: '2.0.0' },
  // RFC 4954 4: a response that is not valid base64 is 501 5.5.2
  { code: 501, text: /^Error: invalid userdata/, enhanced: '5.5.2' },
  // the client cancelled AUTH with "*" (RFC 4954 4); Postfix says 5.7.0 too
  { code: 501, text: /^Authentication aborted/, enhanced: '5.7.0' },
];

/** Commands that move no mail; RFC 5321 4.1.4 allows most of them at any point of a session. */
const JUNK = new Set(['NOOP', 'RSET', 'VRFY', 'EXPN', 'HELP', 'ETRN', 'HELO', 'EHLO', 'LHLO']);

/** Why the gateway cut a connection off, with the reply the client got. */
export type CutOff = Extract<Outcome, 'login-timeout' | 'too-many-commands' | 'too-many-errors'>;

/** What a connection asks its server about the gateway's policy. */
export interface WirePolicy {
  /** may a client at this address authenticate without TLS */
  authWithoutTls(address: string): boolean;
  /** greet at once, without smtp-server's 100 ms wait for clients that talk first */
  greetAtOnce: boolean;
  /** from accept to a successful AUTH; undefined: no deadline (port 25, no AUTH) */
  loginDeadlineMs?: number;
  /** junk commands allowed since the last accepted message (the next one is cut off) */
  maxJunkCommands: number;
  /** 4xx/5xx replies allowed since the last accepted message (the next one is followed by a cut-off) */
  maxErrors: number;
  /** told before the 421 of a cut-off is sent */
  cutOff(why: CutOff, session: SMTPServerSession): void;
}

/** A count since the last accepted message, as Postfix counts its limits. */
class SinceMessage {
  private since = 0;
  private count = 0;

  /** One more; `transactions` is smtp-server's count of accepted messages. */
  add(transactions: number): number {
    if (transactions !== this.since) {
      this.since = transactions;
      this.count = 0;
    }
    return ++this.count;
  }
}

class GatewayConnection extends SMTPConnection {
  private readonly deadline: NodeJS.Timeout | undefined;
  /** junk commands received */
  private readonly junk = new SinceMessage();
  /** 4xx/5xx replies sent */
  private readonly errors = new SinceMessage();

  constructor(server: GatewaySmtpServer, socket: Socket | TLSSocket, options?: object | null) {
    super(server, socket, options);
    const ms = server.policy.loginDeadlineMs;
    if (ms !== undefined) {
      this.deadline = setTimeout(() => {
        if (!this.session.user) this.cut('login-timeout');
      }, ms);
      this.deadline.unref();
    }
  }

  private get policy(): WirePolicy {
    return (this._server as GatewaySmtpServer).policy;
  }

  /**
   * smtp-server waits 100 ms before its greeting to catch clients that talk first (spam
   * software on port 25, RFC 5321 4.3.1 has the client wait for the greeting). Submission
   * clients are users' mail programs that authenticate: there the wait only adds 100 ms to
   * every connection, so the greeting goes at once (as Postfix's submission service does).
   */
  override init(): void {
    if (!this.policy.greetAtOnce) return super.init();
    // As SMTPConnection.init, without the timer.
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients)
        return this.send(
          421,
          `${this.name} Too many connected clients, try again in a moment`,
          false,
        );
      this.connectionReady();
    });
  }

  private cut(why: CutOff): void {
    if (this._closing || this._closed) return;
    this.policy.cutOff(why, this.session);
    const s = smtpSpec(why);
    // smtp-server closes the connection after any 421, also one it could not write.
    this.send(s.code, `${s.enhanced} ${s.text}`);
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    const name = (command || '').toString().split(' ', 1)[0]!.toUpperCase();
    // Not the lines of an AUTH exchange, nor plaintext read while TLS starts (discarded).
    if (!this._nextHandler && !this._upgrading && JUNK.has(name)) {
      if (this.junk.add(this._transactionCounter) > this.policy.maxJunkCommands)
        return this.cut('too-many-commands');
    }
    super._onCommand(command, callback);
  }

  override _onClose(): void {
    clearTimeout(this.deadline);
    super._onClose();
  }

  private authNeedsTls(): boolean {
    return !this.secure && !this.policy.authWithoutTls(this.remoteAddress);
  }

  override _createParser(): SMTPStream {
    // As SMTPConnection._createParser, with the scanning parser.
    const parser = new ScanningParser({ maxCommandLength: this._server.options.maxCommandLength });
    parser.oncommand = (command, callback) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.send(421, `Error: ${err.message}`));
    return parser;
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    this.reply(code, data, context);
    if (code >= 400 && code !== 421) this.countError();
  }

  private reply(code: number, data?: string | string[] | null, context?: string | false): void {
    if (typeof data === 'string' && context !== false) {
      const text = data;
      if (carriesEnhancedCode(code, text)) return super.send(code, text, false);
      const fix = FIXES.find((f) => f.code === code && f.text.test(text));
      if (fix) return super.send(code, `${fix.enhanced} ${text}`, false);
    }
    // The EHLO reply (RFC 4954 4, 6): no AUTH on offer while it would be refused.
    if (code === 250 && Array.isArray(data) && context === false && this.authNeedsTls())
      data = data.filter((line) => !/^AUTH\b/i.test(line));
    super.send(code, data, context);
  }

  /** After the refusal itself, so the client reads why its last command failed first. */
  private countError(): void {
    if (this.errors.add(this._transactionCounter) > this.policy.maxErrors)
      this.cut('too-many-errors');
  }

  override handler_AUTH(command: Buffer, callback: () => void): void {
    if (this.authNeedsTls()) {
      const s = smtpSpec('privacy-required');
      this.send(s.code, `${s.enhanced} ${s.text}`);
      return callback();
    }
    super.handler_AUTH(command, callback);
  }
}

function assertInternals(): void {
  const need: Array<[string, object, string]> = [
    ['SMTPServer', SMTPServer.prototype, 'connect'],
    ['SMTPServer', SMTPServer.prototype, '_onClientConnect'],
    ['SMTPConnection', SMTPConnection.prototype, '_createParser'],
    ['SMTPConnection', SMTPConnection.prototype, '_onCommand'],
    ['SMTPConnection', SMTPConnection.prototype, 'handler_AUTH'],
    ['SMTPConnection', SMTPConnection.prototype, 'send'],
    ['SMTPConnection', SMTPConnection.prototype, 'init'],
    ['SMTPConnection', SMTPConnection.prototype, '_setListeners'],
    ['SMTPConnection', SMTPConnection.prototype, 'connectionReady'],
    ['SMTPConnection', SMTPConnection.prototype, '_onClose'],
    ['SMTPStream', SMTPStream.prototype, '_feedDataStream'],
    ['SMTPStream', SMTPStream.prototype, '_endDataMode'],
    ['SMTPStream', SMTPStream.prototype, '_countDataBytes'],
  ];
  const missing = need.filter(([, proto, m]) => typeof Reflect.get(proto, m) !== 'function');
  if (missing.length > 0) {
    throw new Error(
      `this smtp-server version lacks ${missing.map(([c, , m]) => `${c}.${m}`).join(', ')}; ` +
        'install the version in package-lock.json (npm ci) or update src/core/smtp/smtp-server-overrides.ts',
    );
  }
}

/**
 * smtp-server with the gateway's DATA parsing, enhanced codes, AUTH-before-TLS reply and
 * cut-offs.
 */
export class GatewaySmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    readonly policy: WirePolicy,
  ) {
    assertInternals();
    super({
      ...options,
      hideENHANCEDSTATUSCODES: false,
      // handler_AUTH above is the gate (530, RFC 3207 4); smtp-server's own would say 538.
      allowInsecureAuth: true,
    });
  }

  override connect(socket: Socket | TLSSocket, socketOptions?: object | null): void {
    // As SMTPServer.connect, with the gateway's connection.
    const connection = new GatewayConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
  }
}
