/**
 * One SMTP (RFC 5321) or LMTP (RFC 2033) conversation with a backend, up to the point
 * where a transaction can start: greeting, EHLO/LHLO, STARTTLS (RFC 3207) as the
 * endpoint says, XCLIENT with the client's address where the backend offers it (Postfix
 * smtpd_authorized_xclient_hosts, Dovecot login_trusted_networks), and AUTH PLAIN/LOGIN
 * (RFC 4954) for a submission service.
 *
 * TLS is never downgraded: STARTTLS missing or refused on a tls=starttls endpoint is an
 * error, the certificate is verified (net/tls.ts), and bytes the server sent
 * after its 220 to STARTTLS are refused (Exim CVE-2021-38371).
 */
import { isIP } from 'node:net';
import type { Endpoint } from '../config/endpoint.js';
import { hostPort } from '../config/endpoint.js';
import { openTransport } from '../net/open.js';
import { Reply, type Transport } from '../net/transport.js';
import { UpstreamError } from '../upstreams/errors.js';
import type { UpstreamTimeouts } from '../upstreams/types.js';

export interface SmtpReply {
  code: number;
  /** the text of each line, after "250-" / "250 " */
  lines: string[];
}

/** "250 2.0.0 Ok" as one line, for the client and the log. */
export function replyLine(r: SmtpReply): string {
  return `${r.code} ${r.lines.join(' ').trim()}`.trim();
}

/** The reply text without the code, joined into one line (what smtp-server sends after the code). */
export function replyText(r: SmtpReply): string {
  return r.lines.join(' ').trim();
}

const ENHANCED_CODE = /^([245])\.\d{1,3}\.\d{1,3}(?:\s+|$)/;

/**
 * A backend's reply as one line of text for our client, starting with an RFC 3463 code:
 * the backend's own (RFC 2034 repeats it on every line of a multi-line reply; it is kept
 * once), or "X.0.0" when it gave none of the reply's class, the code RFC 3463 3.1 has for
 * a status of which only the class is known.
 */
export function enhancedReplyText(r: SmtpReply): string {
  const cls = String(r.code)[0];
  const first = ENHANCED_CODE.exec(r.lines[0] ?? '');
  const code = first && first[1] === cls ? first[0].trim() : undefined;
  const text = r.lines
    .map((l) => {
      const m = ENHANCED_CODE.exec(l);
      return m && m[0].trim() === code ? l.slice(m[0].length) : l;
    })
    .join(' ')
    .trim();
  return `${code ?? `${cls}.0.0`}${text ? ` ${text}` : ''}`;
}

const MAX_REPLY_LINES = 100;
const REPLY_LINE = /^(\d{3})([ -]|$)(.*)$/;

export interface ClientIdentity {
  address: string;
  port: number;
  /** the name the client gave in EHLO/HELO */
  helo?: string;
  /** ESMTP, ESMTPS, ESMTPA, ... (Postfix's PROTO attribute takes SMTP or ESMTP) */
  proto: 'SMTP' | 'ESMTP';
}

export interface BackendOptions {
  /** for messages and logs: "source SMTP" */
  label: string;
  timeouts: UpstreamTimeouts;
  ca?: string | string[];
  /** the name the gateway gives in EHLO/LHLO */
  heloName: string;
  /** send XCLIENT with this identity when the backend offers it */
  client?: ClientIdentity;
  /** AUTH as this user (submission services) */
  auth?: { user: string; password: string };
}

/** A backend conversation at the start of a transaction (after EHLO, TLS, XCLIENT, AUTH). */
export class BackendSession {
  /** EHLO keywords (upper case) -> their parameters */
  caps = new Map<string, string>();
  /** set when the backend refused XCLIENT: the caller logs it */
  xclientRefused: string | undefined;
  private closed = false;

  constructor(
    readonly conn: Transport,
    readonly endpoint: Endpoint,
    readonly label: string,
    readonly timeouts: UpstreamTimeouts,
  ) {}

  get lmtp(): boolean {
    return this.endpoint.protocol === 'lmtp';
  }

  get where(): string {
    return hostPort(this.endpoint);
  }

  get isOpen(): boolean {
    return !this.closed && !this.conn.socket.destroyed;
  }

  has(keyword: string): boolean {
    return this.caps.has(keyword);
  }

  /** One reply, all of its lines within `timeoutMs`. */
  async readReply(timeoutMs: number, what: string): Promise<SmtpReply> {
    const lines: string[] = [];
    const by = new Reply(timeoutMs);
    for (;;) {
      const line = await this.conn.readLine(by, `the reply to ${what}`);
      const m = REPLY_LINE.exec(line);
      if (!m)
        throw new UpstreamError(
          'EPROTOCOL',
          `${this.label} answered ${what} with "${line.slice(0, 200)}"`,
        );
      const code = Number(m[1]);
      if (lines.length < MAX_REPLY_LINES) lines.push(m[3] ?? '');
      if (m[2] !== '-') return { code, lines };
    }
  }

  /** Send one command line (CRLF added) and read its reply. */
  async command(
    line: string,
    what: string,
    timeoutMs = this.timeouts.commandMs,
  ): Promise<SmtpReply> {
    this.conn.write(`${line}\r\n`);
    return this.readReply(timeoutMs, what);
  }

  async ehlo(heloName: string): Promise<void> {
    const verb = this.lmtp ? 'LHLO' : 'EHLO';
    const r = await this.command(`${verb} ${heloName}`, verb);
    if (r.code !== 250)
      throw new UpstreamError('EPROTOCOL', `${this.label} refused ${verb}`, replyLine(r));
    this.caps = new Map();
    for (const l of r.lines.slice(1)) {
      const [kw = '', ...rest] = l.trim().split(/\s+/);
      if (kw) this.caps.set(kw.toUpperCase(), rest.join(' '));
    }
  }

  /** QUIT politely (without waiting long), then close. */
  async quit(): Promise<void> {
    if (!this.isOpen) return this.close();
    try {
      this.conn.write('QUIT\r\n');
      await this.readReply(Math.min(this.timeouts.commandMs, 2000), 'QUIT');
    } catch {
      /* closing anyway */
    }
    this.close();
  }

  close(): void {
    this.closed = true;
    this.conn.close();
  }
}

/** XCLIENT values are xtext (RFC 3461 4): '+', '=' and anything outside 33..126 as +XX. */
export function xtext(s: string): string {
  return s.replace(
    /[^\x21-\x7e]|[+=]/g,
    (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

/** Postfix wants IPv6 addresses as "IPV6:..." and IPv4-mapped ones as plain IPv4. */
export function xclientAddr(address: string): string {
  const a =
    address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return isIP(a) === 6 ? `IPV6:${a}` : a;
}

/** The XCLIENT command for what the backend says it accepts (Postfix XCLIENT_README). */
export function xclientCommand(offered: string, client: ClientIdentity): string | undefined {
  const ok = new Set(offered.toUpperCase().split(/\s+/));
  const attrs: string[] = [];
  if (ok.has('ADDR')) attrs.push(`ADDR=${xtext(xclientAddr(client.address))}`);
  if (ok.has('PORT')) attrs.push(`PORT=${client.port}`);
  if (ok.has('NAME')) attrs.push('NAME=[UNAVAILABLE]');
  if (ok.has('HELO') && client.helo) attrs.push(`HELO=${xtext(client.helo.slice(0, 255))}`);
  if (ok.has('PROTO')) attrs.push(`PROTO=${client.proto}`);
  return attrs.length > 0 && ok.has('ADDR') ? `XCLIENT ${attrs.join(' ')}` : undefined;
}

async function startTls(s: BackendSession, heloName: string): Promise<void> {
  if (!s.has('STARTTLS')) {
    throw new UpstreamError(
      'ETLS',
      `${s.label} does not offer STARTTLS; fix tls= in ${s.endpoint.url} (TLS is never dropped silently)`,
    );
  }
  const r = await s.command('STARTTLS', 'STARTTLS');
  if (r.code !== 220) {
    throw new UpstreamError(
      'ETLS',
      `${s.label} refused STARTTLS; fix tls= in ${s.endpoint.url} (TLS is never dropped silently)`,
      replyLine(r),
    );
  }
  await s.conn.startTls();
  // RFC 3207 4.2: forget what the server said before TLS and ask again.
  await s.ehlo(heloName);
}

async function xclient(s: BackendSession, opts: BackendOptions): Promise<void> {
  const offered = s.caps.get('XCLIENT');
  if (offered === undefined || !opts.client) return;
  const cmd = xclientCommand(offered, opts.client);
  if (!cmd) return;
  // After XCLIENT the server starts over with a new greeting (220) and wants EHLO again.
  const r = await s.command(cmd, 'XCLIENT');
  if (r.code !== 220) {
    s.xclientRefused = replyLine(r);
    return;
  }
  await s.ehlo(opts.heloName);
}

async function authenticate(
  s: BackendSession,
  auth: { user: string; password: string },
): Promise<void> {
  const mechs = (s.caps.get('AUTH') ?? '').toUpperCase().split(/\s+/);
  let r: SmtpReply;
  if (mechs.includes('PLAIN')) {
    const token = Buffer.from(`\0${auth.user}\0${auth.password}`, 'utf8').toString('base64');
    r = await s.command(`AUTH PLAIN ${token}`, 'AUTH PLAIN');
  } else if (mechs.includes('LOGIN')) {
    r = await s.command('AUTH LOGIN', 'AUTH LOGIN');
    if (r.code === 334)
      r = await s.command(Buffer.from(auth.user, 'utf8').toString('base64'), 'AUTH LOGIN');
    if (r.code === 334)
      r = await s.command(Buffer.from(auth.password, 'utf8').toString('base64'), 'AUTH LOGIN');
  } else {
    throw new UpstreamError(
      'EPROTOCOL',
      `${s.label} offers no AUTH PLAIN or LOGIN${s.conn.tls ? '' : ' before TLS; use tls=starttls or smtps://'}`,
    );
  }
  if (r.code === 235) return;
  // RFC 4954 6: 535 is a wrong password; 454 a temporary failure; other 5xx a setup problem.
  if (r.code === 535)
    throw new UpstreamError('EAUTH', `${s.label} refused the login`, replyLine(r));
  if (r.code >= 400 && r.code < 500)
    throw new UpstreamError('ECLOSED', `${s.label} cannot check passwords now`, replyLine(r));
  throw new UpstreamError('EPROTOCOL', `${s.label} refused AUTH`, replyLine(r));
}

/**
 * Connect and get a backend ready for MAIL FROM. Throws UpstreamError (EAUTH when the
 * credentials were refused); the connection is closed on failure.
 */
export async function openBackend(ep: Endpoint, opts: BackendOptions): Promise<BackendSession> {
  const conn = await openTransport(ep, opts.label, { timeouts: opts.timeouts, ca: opts.ca });
  const s = new BackendSession(conn, ep, opts.label, opts.timeouts);
  try {
    const greeting = await s.readReply(opts.timeouts.greetingMs, 'the greeting');
    if (greeting.code !== 220) {
      throw new UpstreamError(
        'ECLOSED',
        `${opts.label} at ${hostPort(ep)} refused the connection`,
        replyLine(greeting),
      );
    }
    await s.ehlo(opts.heloName);
    if (ep.tls === 'starttls') await startTls(s, opts.heloName);
    await xclient(s, opts);
    if (opts.auth) await authenticate(s, opts.auth);
    return s;
  } catch (err) {
    s.close();
    throw err;
  }
}
