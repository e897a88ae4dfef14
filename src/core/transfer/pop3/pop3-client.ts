/**
 * A minimal POP3 client (RFC 1939) for copying: USER/PASS or AUTH PLAIN (RFC 5034),
 * STLS (RFC 2595), CAPA (RFC 2449), STAT, LIST, UIDL, RETR, TOP (headers only), QUIT.
 * It has no DELE on purpose: the source is never changed.
 *
 * Why not node-pop3: its RETR decodes the message as UTF-8 into a string (8-bit and
 * binary bytes are replaced), does not undo dot-stuffing, and finds the end marker
 * only when "CRLF.CRLF" arrives at the end of one TCP chunk. Copying byte for byte
 * needs the raw octets, so this reader works on Buffers and undoes the
 * byte-stuffing of RFC 1939 section 3 itself.
 */
import type { Endpoint } from '../../config/endpoint.js';
import { NetError } from '../../net/errors.js';
import { openTransport } from '../../net/open.js';
import { Reply, type Transport } from '../../net/transport.js';

export class Pop3Error extends Error {
  constructor(
    message: string,
    /** the server's reply line, when there was one */
    public readonly response?: string,
    /** RFC 2449/3206 response code such as "AUTH", "SYS/TEMP", "IN-USE" */
    public readonly responseCode?: string,
    public readonly authenticationFailed = false,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'Pop3Error';
  }
}

export interface Pop3ConnectOptions {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  /** verify the server certificate (default true) */
  verify?: boolean;
  servername?: string;
  ca?: string | Buffer;
  user: string;
  password: string;
  /** connect, greeting and each reply (default 60 s) */
  timeoutMs?: number;
  /** refuse a message larger than this (default 512 MiB) */
  maxMessageBytes?: number;
}

/** Longest status line (RFC 2449 4: 512 octets; some servers send more). */
const MAX_LINE = 8192;
const LABEL = 'POP3 server';

export class Pop3Client {
  private constructor(
    private readonly transport: Transport,
    private readonly opts: Pop3ConnectOptions,
  ) {}

  static async connect(opts: Pop3ConnectOptions): Promise<Pop3Client> {
    const ep = endpointOf(opts);
    const timeout = opts.timeoutMs ?? 60_000;
    const transport = await openTransport(ep, LABEL, {
      timeouts: { connectMs: timeout },
      ...(opts.ca ? { ca: opts.ca.toString() } : {}),
      maxLineBytes: MAX_LINE,
    });
    const client = new Pop3Client(transport, opts);
    try {
      await client.status();
      if (opts.tls === 'starttls') await client.startTls();
      await client.login();
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 60_000;
  }

  /** One status line; "-ERR" becomes a Pop3Error with its response code. */
  private async status(): Promise<string> {
    const l = await this.read(() =>
      this.transport.readLine(this.timeoutMs, 'a status line', 'latin1'),
    );
    if (l.startsWith('+OK')) return l.slice(3).trim();
    const text = l.startsWith('-ERR') ? l.slice(4).trim() : l;
    const code = /^\[([^\]]+)\]/.exec(text)?.[1];
    throw new Pop3Error(`POP3 server refused: ${text}`, l, code);
  }

  /** A read on the transport, its failures in this client's words. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw readError(err);
    }
  }

  private send(line: string): void {
    if (this.transport.closed) throw new Pop3Error('POP3 server closed the connection');
    this.transport.write(`${line}\r\n`);
  }

  private async command(line: string): Promise<string> {
    this.send(line);
    return this.status();
  }

  /**
   * The body of a multi-line reply up to the "." line, with the byte-stuffing undone
   * (RFC 1939 section 3: a line starting with "." had one more "." prepended).
   * Lines end at CRLF only and keep it, so the result is the message exactly as stored.
   * The whole body is bounded by `limit`, in bytes, and each wait for data by the timeout.
   */
  private async multiline(limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    const t = this.transport;
    for (;;) {
      // a message line may be as long as the message: the body's limit bounds it
      const line = await this.read(() =>
        t.readRaw(new Reply(this.timeoutMs, Infinity), 'a message line', true, limit),
      ).catch((err: unknown) => {
        if ((err as Pop3Error).cause instanceof NetError && /overlong/.test((err as Error).message))
          throw new Pop3Error(`message is larger than the limit of ${limit} bytes`);
        throw err;
      });
      if (line.length === 1 && line[0] === 0x2e) return Buffer.concat(parts, total);
      const piece = line[0] === 0x2e ? line.subarray(1) : line;
      total += piece.length + 2;
      if (total > limit) throw new Pop3Error(`message is larger than the limit of ${limit} bytes`);
      parts.push(piece, CRLF);
    }
  }

  /** STLS (RFC 2595 4); the transport refuses bytes sent after "+OK", before TLS. */
  private async startTls(): Promise<void> {
    await this.command('STLS');
    await this.transport.startTls('STLS');
  }

  private async login(): Promise<void> {
    const { user, password } = this.opts;
    if (/[\r\n]/.test(user) || /[\r\n]/.test(password)) {
      throw new Pop3Error(
        'user name or password contains a line break',
        undefined,
        undefined,
        true,
      );
    }
    try {
      await this.command(`USER ${user}`);
    } catch (err) {
      if (!(err instanceof Pop3Error) || err.response === undefined) throw err;
      // USER refused (e.g. disabled before TLS): try SASL PLAIN, RFC 5034.
      const token = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
      return this.authResult(() => this.command(`AUTH PLAIN ${token}`));
    }
    return this.authResult(() => this.command(`PASS ${password}`));
  }

  private async authResult(fn: () => Promise<string>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Pop3Error && err.response !== undefined) {
        const temp = err.responseCode === 'SYS/TEMP' || err.responseCode === 'IN-USE';
        // The server's text may echo what we sent; never pass on the password.
        throw new Pop3Error(
          temp ? `POP3 login failed for now: ${err.response.slice(0, 200)}` : 'POP3 login refused',
          err.response,
          err.responseCode,
          !temp,
        );
      }
      throw err;
    }
  }

  async stat(): Promise<{ count: number; size: number }> {
    const r = await this.command('STAT');
    const [count, size] = r.split(' ').map(Number);
    if (!Number.isInteger(count) || !Number.isInteger(size))
      throw new Pop3Error(`unexpected STAT reply "${r}"`);
    return { count: count as number, size: size as number };
  }

  private async listing(cmd: string): Promise<Array<[number, string]>> {
    await this.command(cmd);
    const body = (await this.multiline(64 * 1024 * 1024)).toString('latin1');
    const out: Array<[number, string]> = [];
    for (const l of body.split('\r\n')) {
      if (!l) continue;
      const m = /^(\d+) +(\S+)/.exec(l);
      if (!m) throw new Pop3Error(`unexpected ${cmd} line "${l.slice(0, 100)}"`);
      out.push([Number(m[1]), m[2] as string]);
    }
    return out;
  }

  /** message number -> size in octets (RFC 1939 LIST) */
  async list(): Promise<Map<number, number>> {
    return new Map((await this.listing('LIST')).map(([n, s]) => [n, Number(s)]));
  }

  /** message number -> unique id (RFC 1939 UIDL) */
  async uidl(): Promise<Map<number, string>> {
    return new Map(await this.listing('UIDL'));
  }

  /** The message exactly as the server stores it (RETR, byte-stuffing undone). */
  async retr(n: number): Promise<Buffer> {
    await this.command(`RETR ${n}`);
    return this.multiline(this.opts.maxMessageBytes ?? 512 * 1024 * 1024);
  }

  /** RFC 2449 CAPA: the capability names, upper-cased; empty when the server has no CAPA */
  async capa(): Promise<Set<string>> {
    try {
      await this.command('CAPA');
    } catch (err) {
      if (err instanceof Pop3Error && err.response !== undefined) return new Set();
      throw err;
    }
    const body = (await this.multiline(64 * 1024)).toString('latin1');
    return new Set(body.split('\r\n').map((l) => (l.split(' ')[0] ?? '').toUpperCase()));
  }

  /**
   * TOP n 0 (RFC 1939 7) of each message in `numbers`, in order: the headers the UIDL
   * matcher hashes, `window` commands ahead of the replies
   * (RFC 2449 6.6 PIPELINING: only when the server advertises it; 1 otherwise).
   */
  async *headers(numbers: readonly number[], window: number, limit = 1024 * 1024) {
    let sent = 0;
    for (let i = 0; i < numbers.length; i++) {
      while (sent < numbers.length && sent < i + Math.max(1, window))
        this.send(`TOP ${numbers[sent++]} 0`);
      await this.status();
      yield [numbers[i] as number, await this.multiline(limit)] as const;
    }
  }

  /** Ends the session. Nothing was marked deleted, so the UPDATE state removes nothing. */
  async quit(): Promise<void> {
    try {
      await this.command('QUIT');
    } finally {
      this.close();
    }
  }

  close(): void {
    this.transport.close();
  }
}

const CRLF = Buffer.from('\r\n');

function endpointOf(opts: Pop3ConnectOptions): Endpoint {
  const tls = opts.tls === 'implicit' ? 'pop3s' : 'pop3';
  return {
    url: `${tls}://${opts.host}:${opts.port}`,
    protocol: 'pop3',
    host: opts.host,
    port: opts.port,
    tls: opts.tls,
    verify: opts.verify !== false,
    // an IP is checked against the certificate as is (no SNI for it, RFC 6066 3)
    servername: opts.servername ?? opts.host,
    submission: false,
  };
}

/**
 * A read that failed, in the words the copier's retry logic and the operator know: a
 * stalled or dropped link is a Pop3Error without a server reply (worth a reconnect);
 * bytes after STLS and TLS failures stay NetErrors (never retried).
 */
function readError(err: unknown): unknown {
  if (!(err instanceof NetError) || err.code === 'EINJECTION' || err.code === 'ETLS') return err;
  if (err.code === 'ETOOLONG')
    return new Pop3Error(
      'POP3 server sent an overlong status line',
      undefined,
      undefined,
      false,
      err,
    );
  if (err.code === 'ETIMEOUT')
    return new Pop3Error('POP3 server did not answer in time', undefined, undefined, false, err);
  return new Pop3Error('POP3 server closed the connection', undefined, undefined, false, err);
}
