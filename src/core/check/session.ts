/**
 * A probe's connection: TCP connect, optional TLS (implicit or after STARTTLS), a tiny line
 * reader, and a transcript. Every wait has a timeout; every failure becomes a ProbeError
 * with a cause and what to try.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates, type TLSSocket } from 'node:tls';
import { hostPort, type Endpoint } from '../config/endpoint.js';
import { describeTls } from './tls-info.js';
import type { TlsReport } from './types.js';

export class ProbeError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    public readonly hint: string,
  ) {
    super(message);
  }
}

export interface ProbeTimeouts {
  connectMs: number;
  greetingMs: number;
  commandMs: number;
}

export interface ProbeOptions {
  timeouts: ProbeTimeouts;
  /** extra trusted CA certificates (PEM); the system store and NODE_EXTRA_CA_CERTS always apply */
  ca?: string | string[];
  /** name sent with EHLO / LHLO */
  clientName?: string;
  /**
   * An account to log in with on IMAP, per side, to see the post-login capabilities.
   * Without it the probe logs in nowhere.
   */
  credentials?: Partial<Record<'source' | 'destination', Credentials>>;
}

export interface Credentials {
  user: string;
  password: string;
}

/** Longest line accepted from a server (a CAPABILITY line of a big server stays far below). */
const MAX_LINE = 16 * 1024;
const TRANSCRIPT_LINE = 300;

/** Lines from a socket, CRLF (or bare LF) terminated. */
class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: () => void;
  private closed = false;
  private failure?: Error;
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.closed = true;
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.failure = err;
    this.wake();
  };

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** bytes received but not yet returned as lines */
  get buffered(): number {
    return this.buf.length;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async readLine(timeoutMs: number, waitingFor: string, where: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl).toString('utf8').replace(/\r$/, '');
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.buf.length > MAX_LINE) {
        throw new ProbeError(
          'ELINE',
          `${where} sent a line longer than ${MAX_LINE} bytes while AutoPort waited for ${waitingFor}`,
          'is this the right protocol on this port?',
        );
      }
      if (this.failure) throw networkError(this.failure, where, `waiting for ${waitingFor}`);
      if (this.closed) {
        throw new ProbeError(
          'ECLOSED',
          `${where} closed the connection while AutoPort waited for ${waitingFor}`,
          'check the server log; it may limit connections from this address or expect TLS (try imaps:// / pop3s:// / smtps://)',
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ProbeError(
          'ETIMEOUT',
          `${where} did not send ${waitingFor} within ${timeoutMs} ms`,
          waitingFor === 'a greeting'
            ? 'an implicit-TLS port waits for the client to speak first: if this port is TLS, use imaps:// / pop3s:// / smtps://; else raise --timeout'
            : 'the server is slow or stuck; raise --timeout or check the server',
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }
}

/** Map a socket error to a cause and what to try. */
export function networkError(err: Error, where: string, during: string, host?: string): ProbeError {
  const code = (err as NodeJS.ErrnoException).code ?? 'ESOCKET';
  switch (code) {
    case 'ECONNREFUSED':
      return new ProbeError(
        code,
        `nothing listens on ${where}`,
        'is the server running / is the port right?',
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ProbeError(
        code,
        `the host name ${host ?? where} does not resolve (${code})`,
        'check the spelling, DNS and /etc/hosts',
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new ProbeError(
        code,
        `no route to ${where} (${code})`,
        'check the address, routing and firewalls',
      );
    case 'ECONNRESET':
    case 'EPIPE':
      return new ProbeError(
        code,
        `${where} reset the connection ${during}`,
        'check the server log; a firewall or a TLS/plain mismatch can do this',
      );
    default:
      return new ProbeError(
        code,
        `${where}: ${err.message} (${during})`,
        'check the server and the network path',
      );
  }
}

function tlsHandshakeError(err: Error, mode: 'implicit' | 'starttls'): ProbeError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const text = `${code} ${err.message}`;
  if (
    /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|HTTP_REQUEST|record layer failure/i.test(
      text,
    )
  ) {
    return mode === 'implicit'
      ? new ProbeError(
          'ETLS',
          'TLS handshake failed: the server did not answer TLS',
          'is this port plain? try tls=starttls',
        )
      : new ProbeError(
          'ETLS',
          'TLS handshake after STARTTLS failed: the server did not answer TLS',
          'check the TLS setup of the server',
        );
  }
  if (/ECONNRESET|socket disconnected|socket hang up|EPIPE/i.test(text)) {
    return new ProbeError(
      'ETLS',
      'TLS handshake failed: the server closed the connection',
      mode === 'implicit'
        ? 'is this port plain? try tls=starttls; or the server accepts no TLS version Node offers'
        : 'check the TLS setup of the server',
    );
  }
  if (
    /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS|HANDSHAKE_FAILURE|NO_SHARED_CIPHER/i.test(
      text,
    )
  ) {
    return new ProbeError(
      'ETLS',
      `TLS handshake failed: no common TLS version or cipher (${code || err.message})`,
      'enable TLS 1.2 or 1.3 with current ciphers on the server',
    );
  }
  return new ProbeError(
    'ETLS',
    `TLS handshake failed: ${err.message}`,
    'check the TLS setup of the server',
  );
}

export class ProbeSession {
  readonly where: string;
  readonly transcript: string[] = [];
  private socket: Socket;
  private reader: LineReader;
  connectMs?: number;
  tls?: TlsReport;

  private constructor(
    readonly ep: Endpoint,
    readonly opts: ProbeOptions,
    socket: Socket,
  ) {
    this.where = hostPort(ep);
    this.socket = socket;
    this.reader = new LineReader(socket);
  }

  /** TCP connect (timed), then TLS at once for implicit-TLS endpoints. */
  static async open(
    ep: Endpoint,
    opts: ProbeOptions,
    onConnected?: (s: ProbeSession) => void,
  ): Promise<ProbeSession> {
    const where = hostPort(ep);
    const started = performance.now();
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: ep.host, port: ep.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(
          new ProbeError(
            'ECONNTIMEOUT',
            `no answer from ${where} within ${opts.timeouts.connectMs} ms`,
            'a firewall may drop the packets, or the host is down; check the address, or raise --timeout',
          ),
        );
      }, opts.timeouts.connectMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(networkError(err, where, 'while connecting', ep.host));
      };
      s.once('error', onError);
    });
    socket.setNoDelay(true);
    const session = new ProbeSession(ep, opts, socket);
    session.connectMs = Math.round(performance.now() - started);
    onConnected?.(session);
    if (ep.tls === 'implicit') await session.startTls('implicit');
    return session;
  }

  private note(dir: 'C' | 'S', line: string): void {
    const shown = line.length > TRANSCRIPT_LINE ? `${line.slice(0, TRANSCRIPT_LINE)}...` : line;
    this.transcript.push(`${dir}: ${shown}`);
  }

  write(line: string): void {
    this.note('C', line);
    this.socket.write(`${line}\r\n`);
  }

  /** Send a line that carries a secret; the transcript gets `shown` instead. */
  writeSecret(line: string, shown: string): void {
    this.note('C', shown);
    this.socket.write(`${line}\r\n`);
  }

  async readLine(waitingFor: string, timeoutMs = this.opts.timeouts.commandMs): Promise<string> {
    const line = await this.reader.readLine(timeoutMs, waitingFor, this.where);
    this.note('S', line);
    return line;
  }

  /**
   * Call right after the server's one STARTTLS completion line was read. Bytes already
   * buffered behind that line were sent before TLS and would be taken as TLS-protected
   * answers: refuse (Exim CVE-2021-38371, "NO STARTTLS", USENIX Security 2021).
   */
  assertNothingBuffered(command: string): void {
    const extra = this.reader.buffered;
    if (extra > 0) {
      throw new ProbeError(
        'ESTARTTLS_INJECTION',
        `${this.where} sent ${extra} extra byte(s) after its ${command} reply, before TLS; they could be injected by an attacker (see Exim CVE-2021-38371)`,
        'do not migrate through this path until it is fixed: check for a middlebox rewriting the connection, update the server, or use implicit TLS',
      );
    }
  }

  async startTls(mode: 'implicit' | 'starttls'): Promise<void> {
    this.reader.detach();
    const servername = this.ep.servername;
    const started = performance.now();
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({
        socket: this.socket,
        // SNI carries host names only (RFC 6066 3); the identity check below still uses the IP.
        servername: isIP(servername) ? undefined : servername,
        rejectUnauthorized: false,
        ...(this.opts.ca ? { ca: withSystemCas(this.opts.ca) } : {}),
      });
      const timer = setTimeout(() => {
        t.destroy();
        reject(
          new ProbeError(
            'ETLS',
            `TLS handshake with ${this.where} did not finish within ${this.opts.timeouts.greetingMs} ms`,
            mode === 'implicit'
              ? 'is this port plain? try tls=starttls'
              : 'check the TLS setup of the server',
          ),
        );
      }, this.opts.timeouts.greetingMs);
      t.once('secureConnect', () => {
        clearTimeout(timer);
        t.off('error', onError);
        resolve(t);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(tlsHandshakeError(err, mode));
      };
      t.once('error', onError);
    });
    this.socket = secure;
    this.reader = new LineReader(secure);
    this.tls = describeTls(
      secure,
      mode,
      servername,
      this.ep.verify,
      Math.round(performance.now() - started),
    );
    this.transcript.push(`-- TLS ${this.tls.protocol ?? ''} ${this.tls.cipher ?? ''}`.trimEnd());
  }

  close(): void {
    this.reader.detach();
    this.socket.on('error', () => undefined);
    this.socket.destroy();
  }
}

/** `ca` replaces the default store in Node; keep the system roots next to the extra CA. */
function withSystemCas(ca: string | string[]): string[] {
  return [...rootCertificates, ...(Array.isArray(ca) ? ca : [ca])];
}
