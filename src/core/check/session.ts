/**
 * A probe's connection: the transport (net/) with a transcript. Every wait has a
 * timeout, every reply a size and time bound; every failure becomes a ProbeError with a
 * cause and what to try.
 */
import { rootCertificates, type TLSSocket } from 'node:tls';
import { hostPort, type Endpoint } from '../config/endpoint.js';
import { NetError } from '../net/errors.js';
import { openTransport } from '../net/open.js';
import type { TransportOptions } from '../net/options.js';
import { Reply, type Transport } from '../net/transport.js';
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
/** Largest whole reply (greeting, CAPA list, EHLO lines, untagged lines before a tag). */
const MAX_REPLY = 256 * 1024;
const TRANSCRIPT_LINE = 300;

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

/** A transport failure while reading, with a cause and what to try. */
function readError(
  err: unknown,
  where: string,
  waitingFor: string,
  timeoutMs: number,
  /** the whole exchange, when its time ran out while its lines kept coming */
  exchange: Reply | undefined,
): unknown {
  if (!(err instanceof NetError)) return err;
  if (err.code === 'ETOOLONG' && err.detail.limit === MAX_LINE) {
    return new ProbeError(
      'ELINE',
      `${where} sent a line longer than ${MAX_LINE} bytes while AutoPort waited for ${waitingFor}`,
      'is this the right protocol on this port?',
    );
  }
  if (err.code === 'ETOOLONG') {
    return new ProbeError(
      'EREPLY',
      `${where} sent more than ${MAX_REPLY} bytes without ending its reply while AutoPort waited for ${waitingFor}`,
      'the server never finishes this reply: is this the right protocol on this port?',
    );
  }
  if (err.code === 'ETIMEOUT' && exchange) {
    return new ProbeError(
      'ETIMEOUT',
      `${where} did not finish its reply within ${exchange.ms} ms while AutoPort waited for ${waitingFor}`,
      'the server keeps sending without ending its reply, or is very slow; check the server, or raise --timeout',
    );
  }
  if (err.code === 'ETIMEOUT') {
    return new ProbeError(
      'ETIMEOUT',
      `${where} did not send ${waitingFor} within ${timeoutMs} ms`,
      waitingFor === 'a greeting'
        ? 'an implicit-TLS port waits for the client to speak first: if this port is TLS, use imaps:// / pop3s:// / smtps://; else raise --timeout'
        : 'the server is slow or stuck; raise --timeout or check the server',
    );
  }
  if (err.cause instanceof Error)
    return networkError(err.cause, where, `waiting for ${waitingFor}`);
  return new ProbeError(
    'ECLOSED',
    `${where} closed the connection while AutoPort waited for ${waitingFor}`,
    'check the server log; it may limit connections from this address or expect TLS (try imaps:// / pop3s:// / smtps://)',
  );
}

/** A failed TCP connect or TLS handshake, with a cause and what to try. */
function openError(err: unknown, ep: Endpoint, mode: 'implicit' | 'starttls', ms: number): unknown {
  if (!(err instanceof NetError)) return err;
  const where = hostPort(ep);
  if (err.code === 'ETIMEOUT' && err.detail.phase === 'connect') {
    return new ProbeError(
      'ECONNTIMEOUT',
      `no answer from ${where} within ${err.detail.limit} ms`,
      'a firewall may drop the packets, or the host is down; check the address, or raise --timeout',
    );
  }
  if (err.code === 'ETIMEOUT') {
    return new ProbeError(
      'ETLS',
      `TLS handshake with ${where} did not finish within ${ms} ms`,
      mode === 'implicit'
        ? 'is this port plain? try tls=starttls'
        : 'check the TLS setup of the server',
    );
  }
  const cause = err.cause instanceof Error ? err.cause : err;
  if (err.code === 'ETLS') return tlsHandshakeError(cause, mode);
  return networkError(cause, where, 'while connecting', ep.host);
}

export class ProbeSession {
  readonly where: string;
  readonly transcript: string[] = [];
  connectMs?: number;
  tls?: TlsReport;
  /** the exchange under way: bounded in time and bytes, renewed at each command */
  private reply: Reply;

  private constructor(
    readonly ep: Endpoint,
    readonly opts: ProbeOptions,
    private readonly transport: Transport,
  ) {
    this.where = hostPort(ep);
    const t = opts.timeouts;
    this.reply = new Reply(Math.max(t.greetingMs, t.commandMs), MAX_REPLY);
  }

  /** TCP connect (timed), then TLS at once for implicit-TLS endpoints. */
  static async open(
    ep: Endpoint,
    opts: ProbeOptions,
    onConnected?: (s: ProbeSession) => void,
  ): Promise<ProbeSession> {
    let connectMs: number | undefined;
    const transport = await openTransport(ep, hostPort(ep), {
      ...transportOptions(opts),
      // TLS after the session exists, so a failed handshake still shows the connect time
      deferTls: true,
      onConnected: (ms) => (connectMs = ms),
    }).catch((err: unknown) => {
      throw openError(err, ep, 'implicit', opts.timeouts.greetingMs);
    });
    const session = new ProbeSession(ep, opts, transport);
    session.connectMs = connectMs;
    onConnected?.(session);
    if (ep.tls === 'implicit') await session.startTls('implicit');
    return session;
  }

  private note(dir: 'C' | 'S', line: string): void {
    const shown = line.length > TRANSCRIPT_LINE ? `${line.slice(0, TRANSCRIPT_LINE)}...` : line;
    this.transcript.push(`${dir}: ${shown}`);
  }

  write(line: string): void {
    this.writeSecret(line, line);
  }

  /** Send a line that carries a secret; the transcript gets `shown` instead. */
  writeSecret(line: string, shown: string): void {
    this.note('C', shown);
    this.reply = new Reply(this.opts.timeouts.commandMs, MAX_REPLY);
    this.transport.write(`${line}\r\n`);
  }

  /**
   * The next line, within `timeoutMs` and within what is left of the exchange: a server
   * that never ends its reply (endless continuation lines) is cut in time and in bytes.
   */
  async readLine(waitingFor: string, timeoutMs = this.opts.timeouts.commandMs): Promise<string> {
    const whole = this.reply;
    const left = Math.max(0, whole.at - Date.now());
    const one = new Reply(Math.min(timeoutMs, left), whole.maxBytes - whole.used);
    try {
      const line = await this.transport.readLine(one, waitingFor);
      this.note('S', line);
      return line;
    } catch (err) {
      const endless = whole.used + one.used > 0 && timeoutMs >= left;
      throw readError(err, this.where, waitingFor, timeoutMs, endless ? whole : undefined);
    } finally {
      whole.used += one.used;
    }
  }

  /**
   * Call right after the server's one STARTTLS completion line was read. Bytes already
   * buffered behind that line were sent before TLS and would be taken as TLS-protected
   * answers: refuse (Exim CVE-2021-38371, "NO STARTTLS", USENIX Security 2021).
   */
  assertNothingBuffered(command: string): void {
    const extra = this.transport.bufferedBytes;
    if (extra > 0) throw injectionError(this.where, command, extra);
  }

  async startTls(mode: 'implicit' | 'starttls'): Promise<void> {
    const servername = this.ep.servername;
    try {
      if (mode === 'implicit') await this.transport.handshake();
      else await this.transport.startTls('STARTTLS');
    } catch (err) {
      if (err instanceof NetError && err.code === 'EINJECTION')
        throw injectionError(this.where, err.detail.what ?? 'STARTTLS', err.detail.bytes ?? 0);
      throw openError(err, this.ep, mode, this.opts.timeouts.greetingMs);
    }
    this.tls = describeTls(
      this.transport.socket as TLSSocket,
      mode,
      servername,
      this.ep.verify,
      this.transport.handshakeMs ?? 0,
    );
    this.transcript.push(`-- TLS ${this.tls.protocol ?? ''} ${this.tls.cipher ?? ''}`.trimEnd());
  }

  close(): void {
    this.transport.close();
  }
}

function injectionError(where: string, command: string, extra: number): ProbeError {
  return new ProbeError(
    'ESTARTTLS_INJECTION',
    `${where} sent ${extra} extra byte(s) after its ${command} reply, before TLS; they could be injected by an attacker (see Exim CVE-2021-38371)`,
    'do not migrate through this path until it is fixed: check for a middlebox rewriting the connection, update the server, or use implicit TLS',
  );
}

/**
 * The certificate is not enforced here: the probe completes the handshake to report on
 * it (tls-info.ts), and the copier and the gateway enforce it.
 */
function transportOptions(opts: ProbeOptions): TransportOptions {
  return {
    timeouts: { connectMs: opts.timeouts.connectMs, handshakeMs: opts.timeouts.greetingMs },
    verify: false,
    ...(opts.ca ? { ca: withSystemCas(opts.ca) } : {}),
    maxLineBytes: MAX_LINE,
    fastReads: false,
  };
}

/** `ca` replaces the default store in Node; keep the system roots next to the extra CA. */
function withSystemCas(ca: string | string[]): string[] {
  return [...rootCertificates, ...(Array.isArray(ca) ? ca : [ca])];
}
