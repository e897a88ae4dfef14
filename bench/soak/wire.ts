/**
 * The soak's line client: one TCP (or TLS) socket, reading CRLF lines, with STARTTLS and a
 * deadline for the whole conversation. Deliberately small and in latin1: 100,000 sessions
 * on a 2-core machine leave little CPU for the client, and the gateway is what is measured.
 */
import { connect, type Socket } from 'node:net';
import {
  connect as tlsConnect,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';

export interface WireOptions {
  port: number;
  /** client source address (127.0.0.2 and up): the gateway limits and brakes per address */
  localAddress?: string;
  /** TLS at connect (993, implicit) */
  tls?: boolean;
  /** CA for verifying the server; the servername is always "localhost" */
  ca: string;
  /** the whole conversation must be over by then */
  timeoutMs: number;
}

/** A failure with the step it happened in, so the report can group failures. */
/**
 * One TLS context per CA for every connection: a `ca` option on each connect would parse
 * the PEM and build a new context per session, the largest CPU cost of the client.
 */
const contexts = new Map<string, SecureContext>();
function contextFor(ca: string): SecureContext {
  let c = contexts.get(ca);
  if (!c) contexts.set(ca, (c = createSecureContext({ ca })));
  return c;
}

export class WireError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(`${step}: ${message}`);
  }
}

export class Wire {
  private buf = '';
  private lines: string[] = [];
  private waiter: ((line: string | Error) => void) | undefined;
  private ended: Error | undefined;
  private readonly timer: NodeJS.Timeout;
  step = 'connect';

  private constructor(
    private sock: Socket | TLSSocket,
    private readonly opts: WireOptions,
  ) {
    this.attach(sock);
    this.timer = setTimeout(() => this.fail(new Error('timed out')), opts.timeoutMs);
  }

  static open(opts: WireOptions): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const base = { host: '127.0.0.1', port: opts.port, localAddress: opts.localAddress };
      const sock = opts.tls
        ? tlsConnect({ ...base, secureContext: contextFor(opts.ca), servername: 'localhost' })
        : connect(base);
      const onError = (err: Error): void => reject(new WireError('connect', err.message));
      sock.once('error', onError);
      sock.once(opts.tls ? 'secureConnect' : 'connect', () => {
        sock.off('error', onError);
        resolve(new Wire(sock, opts));
      });
    });
  }

  private attach(sock: Socket | TLSSocket): void {
    sock.setEncoding('latin1');
    sock.on('data', this.onData);
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new Error('connection closed')));
  }

  private readonly onData = (chunk: string): void => {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        w(line);
      } else this.lines.push(line);
    }
  };

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    clearTimeout(this.timer);
    this.sock.destroy();
    const w = this.waiter;
    this.waiter = undefined;
    w?.(err);
  }

  /** The next line from the server. */
  line(): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new WireError(this.step, this.ended.message));
    return new Promise((resolve, reject) => {
      this.waiter = (l) =>
        typeof l === 'string' ? resolve(l) : reject(new WireError(this.step, l.message));
    });
  }

  /**
   * Lines up to and including the first that matches `done`; throws when that line also
   * matches `bad`, or when any line matches `bad` first (e.g. a tagged NO or a 5xx reply).
   */
  async until(done: RegExp, bad?: RegExp): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const l = await this.line();
      seen.push(l);
      if (bad?.test(l)) throw new WireError(this.step, `unexpected reply: ${l.slice(0, 160)}`);
      if (done.test(l)) return seen;
    }
    throw new WireError(this.step, 'no end of reply after 100000 lines');
  }

  /** Send a command line and wait for the reply that ends it. */
  async cmd(step: string, text: string, done: RegExp, bad?: RegExp): Promise<string[]> {
    this.step = step;
    this.write(`${text}\r\n`);
    return this.until(done, bad);
  }

  write(data: string | Buffer): void {
    if (!this.ended) this.sock.write(data);
  }

  /**
   * Upgrade to TLS after the server said yes to STARTTLS/STLS. Anything already buffered
   * would have come before the handshake: RFC 3207 4.2 / RFC 2595 3.1 say to discard it, a
   * well-behaved server sends none, so it is an error here.
   */
  async startTls(): Promise<void> {
    this.step = 'tls';
    if (this.buf !== '' || this.lines.length > 0)
      throw new WireError('tls', 'bytes after the STARTTLS reply');
    const raw = this.sock;
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.on('error', () => undefined);
    const secure = tlsConnect({
      socket: raw,
      secureContext: contextFor(this.opts.ca),
      servername: 'localhost',
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', (err) => reject(new WireError('tls', err.message)));
      secure.once('close', () => reject(new WireError('tls', 'closed during the handshake')));
    });
    secure.removeAllListeners('error');
    secure.removeAllListeners('close');
    this.sock = secure;
    this.attach(secure);
  }

  /** Close without waiting (the server may still be writing its goodbye). */
  close(): void {
    clearTimeout(this.timer);
    this.ended ??= new Error('closed by the client');
    this.sock.destroy();
  }

  get socket(): Socket | TLSSocket {
    return this.sock;
  }
}
