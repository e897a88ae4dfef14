/**
 * A lean IMAP client session for the copy engine's hot path.
 *
 * Why not imapflow here: imapflow waits for each APPEND's completion before the next and
 * holds every fetched message in its own structures. Copying at the speed the servers allow
 * needs several APPENDs in flight (LITERAL+, RFC 7888; MULTIAPPEND, RFC 3502) and FETCH
 * literals streamed with back-pressure. This session does only that: connect (TLS per the
 * Endpoint), log in (user, or master user), send tagged commands that may carry literals,
 * and hand untagged responses to the command that asked. imapflow stays in use for LIST,
 * NAMESPACE, CREATE and SUBSCRIBE (folders/).
 */
import { openTransport } from '../../net/open.js';
import type { Transport } from '../../net/transport.js';
import { ImapError, connectionLost, fromNetError, taggedError } from './errors.js';
import { noStartTls, startTlsExchange } from './starttls.js';
import { writeCommand } from './command-writer.js';
import type {
  CommandPart,
  Pending,
  SessionOptions,
  Tagged,
  UntaggedHandler,
} from './session-types.js';
import {
  DEFAULT_READER_LIMITS,
  ResponseReader,
  WireError,
  parseResponseCode,
  type RawResponse,
} from './wire.js';

export class ImapSession {
  capabilities = new Set<string>();
  /** extensions turned on with ENABLE */
  readonly enabled = new Set<string>();
  /** untagged responses no command claimed (EXISTS, FLAGS, OK [PERMANENTFLAGS ...]) */
  onUnclaimed: UntaggedHandler | null = null;
  private reader: ResponseReader;
  private pending: Pending[] = [];
  private tagSeq = 0;
  private writeChain: Promise<void> = Promise.resolve();
  private continuation: ((text: string) => void) | null = null;
  private closedError: ImapError | null = null;
  private byeText = '';
  private timer: NodeJS.Timeout | null = null;
  bytesOut = 0;

  private constructor(
    private readonly transport: Transport,
    private readonly opts: SessionOptions,
  ) {
    this.reader = new ResponseReader((r) => this.dispatch(r), opts.limits ?? DEFAULT_READER_LIMITS);
    this.attach();
  }

  get label(): string {
    return this.opts.label;
  }

  get bytesIn(): number {
    return this.reader.bytesIn;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  has(cap: string): boolean {
    return this.capabilities.has(cap.toUpperCase());
  }

  /** Connect, read the greeting, and secure the connection as the Endpoint says. */
  static async connect(opts: SessionOptions): Promise<ImapSession> {
    const ep = opts.endpoint;
    const transport = await openTransport(ep, `${opts.label} ${ep.url}`, {
      timeouts: { connectMs: opts.timeouts.connectMs },
      // the response reader copies what it keeps, but a spill file write may hold a chunk
      fastReads: false,
    }).catch((err: unknown) => {
      throw fromNetError(err, opts.label);
    });
    const session = new ImapSession(transport, opts);
    const greeting = await session.readGreeting();
    if (greeting.startsWith('PREAUTH')) {
      session.destroy();
      // a pre-authenticated session can never be moved to TLS, and we never log in as "whoever"
      throw new ImapError(
        'ETLS',
        `${opts.label} ${ep.url} greeted with PREAUTH; refusing an unauthenticated-by-us session`,
      );
    }
    if (ep.tls === 'starttls') await session.startTls();
    if (session.capabilities.size === 0) await session.refreshCapabilities();
    return session;
  }

  /** Responses are pushed to the reader as they arrive (the hot path: no await per line). */
  private attach(): void {
    this.transport.stream(
      (chunk) => {
        this.touch();
        try {
          this.reader.push(chunk);
        } catch (err) {
          const msg = err instanceof WireError ? err.message : String(err);
          this.fail(new ImapError('EPROTOCOL', `${this.opts.label}: ${msg}`, { cause: err }));
        }
      },
      (err) => this.fail(this.lostError(err.cause instanceof Error ? err.cause : undefined)),
    );
  }

  private lostError(cause?: Error): ImapError {
    return connectionLost(this.opts.label, this.opts.endpoint.url, this.byeText, cause);
  }

  private readGreeting(): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.destroy();
        reject(
          new ImapError(
            'ETIMEOUT',
            `${this.opts.label} ${this.opts.endpoint.url} sent no greeting within ${this.opts.timeouts.greetingMs} ms`,
          ),
        );
      }, this.opts.timeouts.greetingMs);
      this.continuation = null;
      this.pending.push({
        tag: '*greeting*',
        resolve: (t2) => {
          clearTimeout(t);
          resolve(t2.text);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  /** STARTTLS (RFC 3501 6.2.1); the exchange itself is starttls.ts. */
  private async startTls(): Promise<void> {
    if (this.capabilities.size === 0) await this.refreshCapabilities();
    const label = this.opts.label;
    const ep = this.opts.endpoint;
    if (!this.has('STARTTLS')) {
      this.destroy();
      throw noStartTls(label, ep.url);
    }
    await this.writable();
    if (this.reader.buffered > 0) {
      this.destroy();
      throw new ImapError('ETLS', `${label} sent a partial response before STARTTLS; giving up`);
    }
    this.transport.unstream();
    const tag = `C${(++this.tagSeq).toString(36)}`;
    try {
      await startTlsExchange(this.transport, tag, label, this.opts.timeouts.commandMs);
    } catch (err) {
      this.destroy();
      throw err instanceof ImapError ? err : fromNetError(err, label);
    }
    this.attach();
    // capabilities learnt before TLS must be discarded (RFC 3501 6.2.1)
    this.capabilities.clear();
    await this.refreshCapabilities();
  }

  /** ENABLE (RFC 5161); remembers what the server enabled. */
  async enable(caps: string[]): Promise<void> {
    const wanted = caps.filter((c) => this.has(c));
    if (wanted.length === 0 || !this.has('ENABLE')) return;
    await this.ok(`ENABLE ${wanted.join(' ')}`, (r) => {
      const line = r.pieces[0] ?? '';
      if (/^\* ENABLED\b/i.test(line))
        for (const c of line.slice(9).trim().split(/\s+/)) if (c) this.enabled.add(c.toUpperCase());
    });
  }

  async refreshCapabilities(): Promise<void> {
    await this.ok('CAPABILITY', (r) => {
      const line = r.pieces[0] ?? '';
      if (/^\* CAPABILITY /i.test(line)) this.setCapabilities(line.slice(13));
    });
  }

  setCapabilities(list: string): void {
    this.capabilities = new Set(list.trim().toUpperCase().split(/\s+/).filter(Boolean));
  }

  /**
   * Send one tagged command and resolve with its completion, whatever its status.
   * Untagged responses that arrive while it is the oldest command with a handler go to it.
   * `saslResponse` answers one server continuation (AUTHENTICATE without SASL-IR).
   */
  command(
    parts: string | CommandPart[],
    onUntagged?: UntaggedHandler,
    saslResponse?: string,
  ): Promise<Tagged> {
    if (this.closedError) return Promise.reject(this.closedError);
    const tag = `C${(++this.tagSeq).toString(36)}`;
    const list = typeof parts === 'string' ? [parts] : parts;
    const done = new Promise<Tagged>((resolve, reject) => {
      this.pending.push({ tag, onUntagged, resolve, reject });
    });
    this.touch();
    this.writeChain = this.writeChain
      .then(() => this.writeCommand(tag, list, saslResponse))
      .catch((err: unknown) =>
        this.fail(
          err instanceof ImapError ? err : new ImapError('ECONNLOST', String(err), { cause: err }),
        ),
      );
    return done;
  }

  /** Like command(), but a NO or BAD becomes an ImapError (ETHROTTLE when the server says so). */
  async ok(parts: string | CommandPart[], onUntagged?: UntaggedHandler): Promise<Tagged> {
    const t = await this.command(parts, onUntagged);
    if (t.status === 'OK') return t;
    throw taggedError(this.opts.label, t);
  }

  /** Resolves when the socket has taken everything written so far (LITERAL+ back-pressure). */
  writable(): Promise<void> {
    return this.writeChain;
  }

  private writeCommand(tag: string, parts: CommandPart[], saslResponse?: string): Promise<void> {
    return writeCommand(
      {
        literalPlus: this.has('LITERAL+'),
        literalMinus: this.has('LITERAL-'),
        write: (b) => this.write(b),
        continuation: () => this.expectContinuation(),
      },
      tag,
      parts,
      saslResponse,
    );
  }

  private expectContinuation(): Promise<string> {
    return new Promise((resolve) => {
      this.continuation = resolve;
    });
  }

  private write(buf: Buffer): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    this.bytesOut += buf.length;
    return new Promise((resolve, reject) => {
      const socket = this.transport.socket;
      const more = socket.write(buf, (err) => {
        if (err) reject(err);
        else this.touch();
      });
      if (more) resolve();
      else
        socket.once('drain', () => {
          this.touch();
          resolve();
        });
    });
  }

  private dispatch(r: RawResponse): void {
    const first = r.pieces[0] ?? '';
    if (first.startsWith('+')) {
      const c = this.continuation;
      this.continuation = null;
      if (c) c(first.slice(1).trim());
      else
        this.fail(
          new ImapError(
            'EPROTOCOL',
            `${this.opts.label} sent an unexpected continuation: ${first.slice(0, 200)}`,
          ),
        );
      return;
    }
    if (first.startsWith('* ')) {
      this.untagged(r, first);
      return;
    }
    const sp = first.indexOf(' ');
    const tag = first.slice(0, sp);
    const idx = this.pending.findIndex((p) => p.tag === tag);
    if (idx < 0) {
      this.fail(
        new ImapError(
          'EPROTOCOL',
          `${this.opts.label} answered an unknown tag: ${first.slice(0, 200)}`,
        ),
      );
      return;
    }
    const [p] = this.pending.splice(idx, 1);
    const rest = first.slice(sp + 1);
    const sp2 = rest.indexOf(' ');
    const status = (sp2 < 0 ? rest : rest.slice(0, sp2)).toUpperCase();
    const { code, text } = parseResponseCode(sp2 < 0 ? '' : rest.slice(sp2 + 1));
    if (status !== 'OK' && status !== 'NO' && status !== 'BAD') {
      this.fail(
        new ImapError(
          'EPROTOCOL',
          `${this.opts.label} sent a bad completion: ${first.slice(0, 200)}`,
        ),
      );
      return;
    }
    p?.resolve({ tag, status, code, text });
  }

  private untagged(r: RawResponse, first: string): void {
    const greeting = this.pending[0]?.tag === '*greeting*' ? this.pending[0] : undefined;
    const m = /^\* (OK|PREAUTH|BYE|NO|BAD)\b ?(.*)$/i.exec(first);
    if (m) {
      const kind = (m[1] as string).toUpperCase();
      const { code, text } = parseResponseCode(m[2] ?? '');
      if (code?.name === 'CAPABILITY') this.setCapabilities(code.args);
      if (kind === 'BYE') this.byeText = (m[2] ?? '').trim();
      if (greeting) {
        this.pending.shift();
        if (kind === 'BYE')
          greeting.reject(
            new ImapError('ECONNECT', `${this.opts.label} refused the connection: ${text}`),
          );
        else
          greeting.resolve({
            tag: '*',
            status: 'OK',
            code,
            text: kind === 'PREAUTH' ? `PREAUTH ${text}` : text,
          });
        return;
      }
    }
    for (const p of this.pending) {
      if (p.onUntagged) {
        p.onUntagged(r);
        return;
      }
    }
    this.onUnclaimed?.(r);
  }

  private touch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closedError || this.pending.length === 0) return;
    this.timer = setTimeout(() => {
      if (this.pending.length === 0) return;
      this.fail(
        new ImapError(
          'ETIMEOUT',
          `${this.opts.label} ${this.opts.endpoint.url} made no progress for ${this.opts.timeouts.commandMs} ms`,
        ),
      );
    }, this.opts.timeouts.commandMs);
    this.timer.unref();
  }

  private fail(err: ImapError): void {
    if (this.closedError) return;
    this.closedError = err;
    if (this.timer) clearTimeout(this.timer);
    const waiting = this.pending;
    this.pending = [];
    for (const p of waiting) p.reject(err);
    this.continuation = null;
    this.reader.abort();
    this.transport.close();
  }

  pause(): void {
    this.transport.pause();
  }

  resume(): void {
    this.transport.resume();
  }

  /** LOGOUT politely, but never wait long for it. */
  async close(): Promise<void> {
    if (this.closedError) return;
    const bye = this.command('LOGOUT').catch(() => undefined);
    await Promise.race([bye, new Promise((r) => setTimeout(r, 1000).unref())]);
    this.destroy();
  }

  destroy(): void {
    this.fail(new ImapError('ECONNLOST', `${this.opts.label} session closed by us`));
  }
}
