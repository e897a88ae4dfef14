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
import net from 'node:net';
import tls from 'node:tls';

export class Pop3Error extends Error {
  constructor(
    message: string,
    /** the server's reply line, when there was one */
    public readonly response?: string,
    /** RFC 2449/3206 response code such as "AUTH", "SYS/TEMP", "IN-USE" */
    public readonly responseCode?: string,
    public readonly authenticationFailed = false,
  ) {
    super(message);
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

const CRLF = Buffer.from('\r\n');
const MAX_LINE = 8192;

export class Pop3Client {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(
    private socket: net.Socket,
    private readonly opts: Pop3ConnectOptions,
  ) {
    this.attach(socket);
  }

  static async connect(opts: Pop3ConnectOptions): Promise<Pop3Client> {
    const timeout = opts.timeoutMs ?? 60_000;
    const socket = await openSocket(opts, timeout);
    const client = new Pop3Client(socket, opts);
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

  private attach(socket: net.Socket): void {
    socket.setTimeout(this.opts.timeoutMs ?? 60_000, () =>
      this.fail(new Pop3Error('POP3 server did not answer in time')),
    );
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.notify();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Pop3Error('POP3 server closed the connection')));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.socket.destroy();
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure && this.buf.length === 0) throw this.failure;
  }

  private async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf(CRLF);
      if (i >= 0) {
        const out = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return out;
      }
      if (this.buf.length > MAX_LINE)
        throw new Pop3Error('POP3 server sent an overlong status line');
      await this.more();
    }
  }

  /** One status line; "-ERR" becomes a Pop3Error with its response code. */
  private async status(): Promise<string> {
    const l = await this.line();
    if (l.startsWith('+OK')) return l.slice(3).trim();
    const text = l.startsWith('-ERR') ? l.slice(4).trim() : l;
    const code = /^\[([^\]]+)\]/.exec(text)?.[1];
    throw new Pop3Error(`POP3 server refused: ${text}`, l, code);
  }

  private send(line: string): void {
    if (this.failure) throw this.failure;
    this.socket.write(`${line}\r\n`);
  }

  private async command(line: string): Promise<string> {
    this.send(line);
    return this.status();
  }

  /**
   * The body of a multi-line reply up to the "." line, with the byte-stuffing undone
   * (RFC 1939 section 3: a line starting with "." had one more "." prepended).
   * Lines keep their CRLF, so the result is the message exactly as stored.
   */
  private async multiline(limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      let start = 0;
      for (;;) {
        const i = this.buf.indexOf(CRLF, start);
        if (i < 0) break;
        if (i === start + 1 && this.buf[start] === 0x2e) {
          this.buf = this.buf.subarray(i + 2);
          return Buffer.concat(parts, total);
        }
        const from = this.buf[start] === 0x2e ? start + 1 : start;
        const piece = this.buf.subarray(from, i + 2);
        parts.push(piece);
        total += piece.length;
        if (total > limit)
          throw new Pop3Error(`message is larger than the limit of ${limit} bytes`);
        start = i + 2;
      }
      // keep only the unfinished line; copy so the consumed chunk can be freed
      this.buf = Buffer.from(this.buf.subarray(start));
      await this.more();
    }
  }

  private async startTls(): Promise<void> {
    await this.command('STLS');
    // Anything the server sent after "+OK" and before the handshake was not
    // protected: treat it as an injection attempt (cf. CVE-2011-0411 class).
    if (this.buf.length)
      throw new Pop3Error('POP3 server sent data after its STLS reply; refusing to continue');
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.setTimeout(0);
    const secure = await tlsConnect({ socket: plain }, this.opts, this.opts.timeoutMs ?? 60_000);
    this.socket = secure;
    this.attach(secure);
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
    this.failure ??= new Pop3Error('POP3 connection closed');
    this.socket.destroy();
  }
}

function tlsConnect(
  extra: tls.ConnectionOptions,
  opts: Pop3ConnectOptions,
  timeout: number,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: opts.host,
      port: opts.port,
      servername: opts.servername ?? (net.isIP(opts.host) ? undefined : opts.host),
      rejectUnauthorized: opts.verify !== false,
      ca: opts.ca,
      ...extra,
    });
    const timer = setTimeout(
      () => s.destroy(new Pop3Error('TLS handshake with the POP3 server timed out')),
      timeout,
    );
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function openSocket(opts: Pop3ConnectOptions, timeout: number): Promise<net.Socket> {
  if (opts.tls === 'implicit') return tlsConnect({}, opts, timeout);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: opts.host, port: opts.port });
    const timer = setTimeout(
      () =>
        s.destroy(new Pop3Error(`no connection to POP3 server ${opts.host}:${opts.port} in time`)),
      timeout,
    );
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
