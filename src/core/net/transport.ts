/**
 * One connection to a mail server (IMAP, POP3, SMTP/LMTP), whoever speaks on it: the
 * gateway's backends, `check`, the copier and the POP3 copier. It reads lines and
 * literals with a timeout per read and a cap per line, bounds a whole reply in time and
 * size (a Reply), upgrades to TLS after STARTTLS/STLS, and either stays with its owner
 * until close() or hands its socket over (detach, for the splice; stream, for a caller
 * that parses pushed chunks itself).
 *
 * TLS is never downgraded, and no byte the server sent before the handshake is read as if
 * it came through TLS: bytes buffered behind the STARTTLS/STLS answer are refused
 * (RFC 3207 4.2, RFC 2595 4, CVE-2011-0411; Exim CVE-2021-38371).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Endpoint } from '../config/endpoint.js';
import { NetError } from './errors.js';
import type { ChunkRouter } from './fast-reads.js';
import { LineBuffer } from './line-buffer.js';
import type { TransportOptions } from './options.js';
import { wrapTls } from './tls.js';

/** Longest line by default (a CAPABILITY or EHLO line of a big server stays far below). */
export const MAX_LINE = 64 * 1024;
/** Largest whole reply by default (a multi-line SMTP reply, IMAP untagged lines). */
export const MAX_REPLY = 1024 * 1024;

/**
 * A bound on a whole exchange, in time and in bytes: a server that keeps sending lines,
 * each in time, without ever finishing is as stalled as a silent one.
 */
export class Reply {
  readonly at: number;
  used = 0;
  constructor(
    readonly ms: number,
    readonly maxBytes = MAX_REPLY,
  ) {
    this.at = Date.now() + ms;
  }
}

export class Transport {
  private buf: LineBuffer;
  /** reads waiting for bytes (a QUIT may wait beside a stalled command's read) */
  private waiters: Array<() => void> = [];
  private ended = false;
  private failure: Error | undefined;
  private released = false;
  private sink: ((chunk: Buffer) => void) | undefined;
  private readingBytes = false;
  private onStreamEnd: ((err: NetError) => void) | undefined;

  private readonly onData = (chunk: Buffer): void => {
    if (this.sink) return this.sink(chunk);
    // after a failure nothing more is read: what follows would only pile up
    if (this.failure) return;
    this.buf.push(chunk);
    // a literal being read may hold no line end at all
    if (!this.readingBytes && this.buf.overlong()) this.failure = this.buf.tooLong();
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.endStream();
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.endStream();
    this.wake();
  };

  constructor(
    public socket: Socket | TLSSocket,
    readonly endpoint: Endpoint,
    readonly label: string,
    private readonly opts: TransportOptions,
    /** set when the socket reads through onread (plain TCP only) */
    private router?: ChunkRouter,
    /** how long the implicit-TLS handshake took */
    public handshakeMs?: number,
  ) {
    this.buf = new LineBuffer(opts.maxLineBytes ?? MAX_LINE, label);
    // the line reader keeps a copy: the read buffer is reused
    if (router) router.sink = (chunk) => (this.onData(Buffer.from(chunk)), true);
    this.attach();
  }

  get tls(): boolean {
    return (this.socket as TLSSocket).encrypted === true;
  }

  get bufferedBytes(): number {
    return this.buf.length;
  }

  get closed(): boolean {
    return this.released || this.ended || this.failure !== undefined;
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('close', this.onEnd);
    this.socket.on('error', this.onError);
  }

  private detachListeners(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * The next line without its line end, within `timeout`: milliseconds for this line, or
   * a Reply shared by the lines of one reply (its byte cap counts this line too).
   */
  async readLine(timeout: number | Reply, what = 'a reply', encoding: BufferEncoding = 'utf8') {
    return (await this.readRaw(timeout, what, false)).toString(encoding);
  }

  /**
   * The next line as bytes; with `crlfOnly`, a bare LF stays inside the line (POP3 and
   * SMTP bodies) and `maxLine` may be raised for message lines.
   */
  async readRaw(
    timeout: number | Reply,
    what: string,
    crlfOnly: boolean,
    maxLine?: number,
  ): Promise<Buffer> {
    const reply = typeof timeout === 'number' ? new Reply(timeout) : timeout;
    for (;;) {
      const line = this.guard(() => this.buf.line(crlfOnly, what, maxLine));
      if (line) {
        this.count(reply, line.size, what);
        return line.text;
      }
      await this.more(reply, what);
    }
  }

  /** Exactly `n` bytes (an IMAP literal), within `timeout`; counted in the Reply's cap. */
  async readBytes(n: number, timeout: number | Reply, what = 'a literal'): Promise<Buffer> {
    const reply =
      typeof timeout === 'number' ? new Reply(timeout, Math.max(n, MAX_REPLY)) : timeout;
    this.count(reply, n, what);
    this.readingBytes = true;
    try {
      for (;;) {
        const bytes = this.buf.take(n);
        if (bytes) return bytes;
        await this.more(reply, what);
      }
    } finally {
      this.readingBytes = false;
    }
  }

  /** A line already here, without waiting (a caller draining a burst); throws like readRaw. */
  takeLine(crlfOnly: boolean, what: string, maxLine?: number): Buffer | undefined {
    return this.guard(() => this.buf.line(crlfOnly, what, maxLine))?.text;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw (this.failure = err as Error);
    }
  }

  private count(reply: Reply, bytes: number, what: string): void {
    reply.used += bytes;
    if (reply.used <= reply.maxBytes) return;
    throw (this.failure = new NetError(
      'ETOOLONG',
      `${this.label} sent more than ${reply.maxBytes} bytes while we waited for ${what}`,
      { phase: 'read', what, limit: reply.maxBytes, bytes: reply.used },
    ));
  }

  /** Wait for more bytes until the Reply's time is up; throws when none can come. */
  async more(reply: Reply, what: string): Promise<void> {
    if (this.failure) throw this.failureError(what);
    if (this.ended) {
      throw new NetError(
        'ECLOSED',
        `${this.label} closed the connection while we waited for ${what}`,
        {
          phase: 'read',
          what,
        },
      );
    }
    const left = reply.at - Date.now();
    if (left <= 0) {
      throw new NetError('ETIMEOUT', `${this.label} sent no ${what} within ${reply.ms} ms`, {
        phase: 'read',
        what,
        limit: reply.ms,
      });
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private failureError(what: string): NetError {
    const f = this.failure as Error;
    if (f instanceof NetError) return f;
    return new NetError('ECLOSED', `${this.label}: ${f.message}`, {
      phase: 'read',
      what,
      cause: f,
    });
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  /**
   * Wrap the socket in TLS, right after the server's STARTTLS/STLS go-ahead was read.
   * `command` names it in the refusal of bytes that followed the go-ahead.
   */
  async startTls(command = 'STARTTLS'): Promise<void> {
    if (this.sink) throw new Error('startTls while streaming: call unstream() first');
    if (this.buf.length > 0) {
      const n = this.buf.length;
      this.close();
      throw new NetError(
        'EINJECTION',
        `${this.label} sent data after its ${command} reply (${n} bytes); refusing them (possible command injection)`,
        { phase: 'read', what: command, bytes: n },
      );
    }
    await this.handshake();
  }

  /** The TLS handshake on this connection now (implicit TLS the caller deferred). */
  async handshake(): Promise<void> {
    if (this.router) {
      // onread keeps feeding the router, not 'data' listeners: TLS must read the socket itself
      throw new Error('TLS on a fast-read socket: open links that will use TLS without fastReads');
    }
    this.detachListeners();
    try {
      const secure = await wrapTls(this.socket as Socket, this.endpoint, this.label, this.opts);
      this.socket = secure.socket;
      this.handshakeMs = secure.handshakeMs;
    } catch (err) {
      this.released = true;
      this.failure ??= err as Error;
      this.wake();
      throw err;
    }
    this.attach();
  }

  /**
   * Push every chunk to `sink` from now on (bytes already buffered first), for a caller
   * that parses a fast stream itself (the copier's IMAP reader); `onEnd` hears the end once.
   */
  stream(sink: (chunk: Buffer) => void, onEnd: (err: NetError) => void): void {
    this.sink = sink;
    this.onStreamEnd = onEnd;
    const early = this.buf.drain();
    if (early.length > 0) sink(early);
    if (this.failure || this.ended) this.endStream();
  }

  /** Back to line reads: chunks buffer here again (before STARTTLS, for its check). */
  unstream(): void {
    this.sink = undefined;
    this.onStreamEnd = undefined;
  }

  private endStream(): void {
    const f = this.onStreamEnd;
    if (!f) return;
    this.onStreamEnd = undefined;
    f(
      this.failure
        ? this.failureError('more data')
        : new NetError('ECLOSED', `${this.label} closed the connection`, { phase: 'read' }),
    );
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * Stop reading; the socket and bytes read ahead belong to the caller from now on. With
   * onread, `reader` redirects the chunks (the socket emits no 'data' events then).
   */
  detach(): {
    socket: Socket;
    buffered: Buffer;
    reader?: (sink: (chunk: Buffer) => boolean) => void;
  } {
    this.released = true;
    this.detachListeners();
    this.socket.pause();
    const buffered = this.buf.drain();
    const router = this.router;
    if (!router) return { socket: this.socket, buffered };
    // Paused, nothing should arrive; should a read be in flight, keep it for the new sink.
    const early: Buffer[] = [];
    router.sink = (chunk) => (early.push(Buffer.from(chunk)), true);
    const reader = (sink: (chunk: Buffer) => boolean): void => {
      router.sink = sink;
      for (const c of early.splice(0)) sink(c);
    };
    return { socket: this.socket, buffered, reader };
  }

  /** Destroy the socket; reads still waiting end now, not at their timeout. Idempotent. */
  close(): void {
    if (this.released) return;
    this.released = true;
    this.detachListeners();
    this.socket.on('error', () => undefined);
    this.socket.destroy();
    this.failure ??= new NetError('ECLOSED', `${this.label}: connection closed by us`, {
      phase: 'read',
    });
    this.buf.drain();
    this.endStream();
    this.wake();
  }
}
