/**
 * One connection to a backend (source or destination) while the gateway speaks to it
 * itself: connect with a timeout, TLS as the Endpoint says (implicit, or STARTTLS after
 * the protocol's own command), a line reader with a timeout per read. Once logged in the
 * connection is detached: the socket and any bytes read ahead go to the splice.
 *
 * TLS is never downgraded: a refused STARTTLS is an error, and so are bytes the server
 * sent after its STARTTLS reply (they would be read as if they came through TLS; Exim
 * CVE-2021-38371, protocol-notes.md "STARTTLS and TLS").
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostPort, type Endpoint } from '../config/endpoint.js';
import { UpstreamError } from './errors.js';

export interface UpstreamTimeouts {
  connectMs: number;
  greetingMs: number;
  commandMs: number;
}

export interface ConnectOptions {
  timeouts: UpstreamTimeouts;
  /** extra CA certificates (PEM) to trust, e.g. a private CA */
  ca?: string | string[];
}

/** Longest line we accept from a backend before login (CAPABILITY lines are far shorter). */
const MAX_LINE = 64 * 1024;

/**
 * Reads on a plain TCP backend go through `onread` into a buffer the connection keeps and
 * reuses (Node otherwise allocates a fresh 64 KiB buffer for every read): while reads fill
 * it, it doubles up to 1 MiB, so a big FETCH costs a few hundred reads and almost no
 * allocation; a small read shrinks it back, so an idle session holds 16 KiB at most.
 * A buffer still referenced by a pending write is never read into again: the sink says
 * so, the socket pauses until the write drained, and the next read gets a new buffer.
 */
const READ_SMALL = 16 * 1024;
const READ_MAX = 1024 * 1024;

/** Where the chunks of an onread socket go; swapped from the line reader to the splice. */
export interface ChunkRouter {
  /**
   * Take a chunk of the shared read buffer. Return true when nothing refers to it any more
   * (reading goes on into it), false when a pending write still does (the socket pauses).
   */
  sink: (chunk: Buffer) => boolean;
}

function reusingOnread(router: ChunkRouter): {
  buffer: () => Buffer;
  callback: (n: number, buf: Buffer) => boolean;
} {
  let size = READ_SMALL;
  let current: Buffer | undefined;
  let free = true;
  return {
    // Called once at connect and after every read, for the next read.
    buffer: () => {
      if (!current || !free || current.length !== size) current = Buffer.allocUnsafe(size);
      free = true;
      return current;
    },
    callback: (n, buf) => {
      if (n === buf.length) size = Math.min(READ_MAX, size * 2);
      else if (n < READ_SMALL / 4) size = READ_SMALL;
      free = router.sink(buf.subarray(0, n));
      return free;
    },
  };
}

/**
 * When a whole exchange must be over (a multi-line reply, a command and its untagged
 * responses): a server that keeps sending lines, each in time, without ever finishing is
 * as stalled as a silent one.
 */
export class Deadline {
  readonly at: number;
  constructor(readonly ms: number) {
    this.at = Date.now() + ms;
  }
}

export class UpstreamConnection {
  private buf: Buffer = Buffer.alloc(0);
  /** reads waiting for bytes (a QUIT may wait beside a stalled command's read) */
  private waiters: Array<() => void> = [];
  private ended = false;
  private failure: Error | undefined;
  private detached = false;

  private readonly onData = (chunk: Buffer): void => {
    // after a failure nothing more is read: what follows would only pile up
    if (this.failure) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.partLineTooLong()) this.failure = this.tooLong();
    this.wake();
  };

  /** No LF yet, and the line is already over the cap (a CR at the cap may be its end). */
  private partLineTooLong(): boolean {
    const n = this.buf.length;
    if (n < MAX_LINE + 1 || this.buf.indexOf(0x0a) >= 0) return false;
    return n > MAX_LINE + 1 || this.buf[MAX_LINE] !== 0x0d;
  }

  private tooLong(): UpstreamError {
    return new UpstreamError(
      'EPROTOCOL',
      `${this.label} sent a line longer than ${MAX_LINE} bytes`,
    );
  }
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.wake();
  };

  constructor(
    public socket: Socket | TLSSocket,
    readonly endpoint: Endpoint,
    readonly label: string,
    private readonly opts: ConnectOptions,
    /** set when the socket reads through onread (plain TCP only) */
    private router?: ChunkRouter,
  ) {
    // the line reader keeps a copy: the read buffer is reused
    if (router) router.sink = (chunk) => (this.onData(Buffer.from(chunk)), true);
    this.attach();
  }

  get tls(): boolean {
    return (this.socket as TLSSocket).encrypted === true;
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
   * The next line without its CRLF, within `timeout`: milliseconds for this line, or a
   * Deadline shared by the lines of one reply.
   */
  async readLine(timeout: number | Deadline, what = 'a reply'): Promise<string> {
    const { at: deadline, ms: timeoutMs } =
      typeof timeout === 'number' ? new Deadline(timeout) : timeout;
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf >= 0) {
        const end = lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf;
        // checked here too: whether onData saw the line whole depends on the chunks
        if (end > MAX_LINE) throw (this.failure = this.tooLong());
        const line = this.buf.subarray(0, end).toString('utf8');
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.partLineTooLong()) throw (this.failure = this.tooLong());
      if (this.failure) {
        const f = this.failure;
        throw f instanceof UpstreamError
          ? f
          : new UpstreamError('ECLOSED', `${this.label}: ${f.message}`, undefined, { cause: f });
      }
      if (this.ended)
        throw new UpstreamError(
          'ECLOSED',
          `${this.label} closed the connection while we waited for ${what}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new UpstreamError('ETIMEOUT', `${this.label} sent no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  get bufferedBytes(): number {
    return this.buf.length;
  }

  /** Wrap the socket in TLS (after the server's STARTTLS "go ahead"). Only for sockets without onread. */
  async startTls(): Promise<void> {
    if (this.buf.length > 0) {
      throw new UpstreamError(
        'EPROTOCOL',
        `${this.label} sent ${this.buf.length} bytes after its STARTTLS reply; refusing them (possible command injection)`,
      );
    }
    this.detachListeners();
    this.socket = await wrapTls(this.socket, this.endpoint, this.label, this.opts);
    this.attach();
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
    this.detached = true;
    this.detachListeners();
    this.socket.pause();
    const buffered = this.buf;
    this.buf = Buffer.alloc(0);
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

  close(): void {
    if (this.detached) return;
    this.detachListeners();
    this.socket.on('error', () => undefined);
    this.socket.destroy();
    // A read still waiting (a stalled backend dropped by its session) ends now, not at its timeout.
    this.failure ??= new UpstreamError(
      'ECLOSED',
      `${this.label}: connection closed by the gateway`,
    );
    this.wake();
  }
}

function wrapTls(
  plain: Socket | undefined,
  ep: Endpoint,
  label: string,
  opts: ConnectOptions,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const isIp = isIP(ep.servername) !== 0;
    const s = tlsConnect({
      ...(plain ? { socket: plain } : { port: ep.port }),
      // `host` is also the name the certificate is checked against (RFC 6125); SNI
      // (RFC 6066 3) carries names only, never an IP address.
      host: plain ? ep.servername : ep.host,
      servername: isIp ? undefined : ep.servername,
      checkServerIdentity: (_host, cert) => checkServerIdentity(ep.servername, cert),
      rejectUnauthorized: ep.verify,
      ca: opts.ca,
      minVersion: 'TLSv1.2',
    });
    const t = setTimeout(() => {
      s.destroy();
      reject(
        new UpstreamError(
          'ETIMEOUT',
          `${label}: TLS handshake with ${hostPort(ep)} took longer than ${opts.timeouts.connectMs} ms`,
        ),
      );
    }, opts.timeouts.connectMs);
    s.once('secureConnect', () => {
      clearTimeout(t);
      s.off('error', onErr);
      resolve(s);
    });
    const onErr = (err: Error): void => {
      clearTimeout(t);
      s.destroy();
      reject(
        new UpstreamError(
          'ETLS',
          `${label}: TLS with ${hostPort(ep)} failed: ${err.message}`,
          undefined,
          { cause: err },
        ),
      );
    };
    s.once('error', onErr);
  });
}

/** TCP (and for implicit TLS, the handshake) to an endpoint, within connectMs. */
export async function openConnection(
  ep: Endpoint,
  label: string,
  opts: ConnectOptions,
): Promise<UpstreamConnection> {
  if (ep.tls === 'implicit') {
    return new UpstreamConnection(await wrapTls(undefined, ep, label, opts), ep, label, opts);
  }
  // STARTTLS hands the socket to TLS, which reads on its own: onread only for plain links.
  const router: ChunkRouter | undefined = ep.tls === 'none' ? { sink: () => true } : undefined;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({
      host: ep.host,
      port: ep.port,
      ...(router ? { onread: reusingOnread(router) } : {}),
    });
    const t = setTimeout(() => {
      s.destroy();
      reject(
        new UpstreamError(
          'ETIMEOUT',
          `${label}: no connection to ${hostPort(ep)} within ${opts.timeouts.connectMs} ms`,
        ),
      );
    }, opts.timeouts.connectMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.off('error', onErr);
      resolve(s);
    });
    const onErr = (err: Error): void => {
      clearTimeout(t);
      reject(
        new UpstreamError(
          'ECONNECT',
          `${label}: cannot connect to ${hostPort(ep)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
          undefined,
          { cause: err },
        ),
      );
    };
    s.once('error', onErr);
  });
  socket.setNoDelay(true);
  return new UpstreamConnection(socket, ep, label, opts, router);
}
