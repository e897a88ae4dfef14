/**
 * Logging in to a POP3 backend on behalf of a client (RFC 1939, RFC 2449 CAPA, RFC 2595
 * STLS, RFC 5034 AUTH): greeting, CAPA, STLS, XCLIENT with the client's address where
 * offered, USER/PASS (or AUTH PLAIN for a master user), then STAT to prove the login.
 */
import type { Endpoint } from '../config/endpoint.js';
import { openTransport } from '../net/open.js';
import { Reply, type Transport } from '../net/transport.js';
import { UpstreamError } from '../upstreams/errors.js';
import type {
  ClientInfo,
  ConnectOptions,
  LoginCredentials,
  UpstreamSession,
} from '../upstreams/types.js';

export interface Pop3LoginOptions extends ConnectOptions {
  label: string;
  forwardClient: boolean;
  /** prove the login with STAT (default true) */
  confirm?: boolean;
}

async function reply(
  conn: Transport,
  ms: number | Reply,
  what: string,
): Promise<{ ok: boolean; text: string }> {
  const line = await conn.readLine(ms, `the reply to ${what}`);
  if (line.startsWith('+OK')) return { ok: true, text: line.slice(3).trimStart() };
  if (line.startsWith('-ERR')) return { ok: false, text: line.slice(4).trimStart() };
  throw new UpstreamError(
    'EPROTOCOL',
    `${conn.label} answered ${what} with "${line.slice(0, 200)}"`,
  );
}

async function capa(conn: Transport, ms: number): Promise<string[]> {
  conn.write('CAPA\r\n');
  const by = new Reply(ms);
  const r = await reply(conn, by, 'CAPA');
  if (!r.ok) return [];
  const out: string[] = [];
  for (;;) {
    const line = await conn.readLine(by, 'the CAPA list');
    if (line === '.') return out;
    if (out.length < 200) out.push(line.toUpperCase());
  }
}

/** XCLIENT values are xtext (RFC 1891 5): '+', '=' and non-printables hex-encoded. */
function xtext(s: string): string {
  return s.replace(
    /[^\x21-\x7e]|[+=]/g,
    (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

export async function pop3Login(
  ep: Endpoint,
  creds: LoginCredentials,
  client: ClientInfo,
  opts: Pop3LoginOptions,
): Promise<UpstreamSession> {
  const ms = opts.timeouts.commandMs;
  const conn = await openTransport(ep, opts.label, opts);
  try {
    const greeting = await conn.readLine(opts.timeouts.greetingMs, 'a greeting');
    if (!greeting.startsWith('+OK'))
      throw new UpstreamError('ECLOSED', `${opts.label} refused the connection`, greeting);
    let caps = await capa(conn, ms);
    if (ep.tls === 'starttls') {
      conn.write('STLS\r\n');
      const r = await reply(conn, ms, 'STLS');
      if (!r.ok)
        throw new UpstreamError(
          'ETLS',
          `${opts.label} refused STLS; fix tls= in its URL (TLS is never dropped silently)`,
          r.text,
        );
      await conn.startTls();
      caps = await capa(conn, ms); // RFC 2595 4: capabilities may change after STLS
    }
    // Dovecot announces XCLIENT in its greeting's response code (to trusted networks only),
    // others in CAPA.
    const xclient =
      /^\+OK \[XCLIENT\]/i.test(greeting) || caps.some((c) => c.startsWith('XCLIENT'));
    if (opts.forwardClient && xclient) {
      conn.write(
        `XCLIENT ADDR=${xtext(client.address)} PORT=${client.port} SESSION=${xtext(client.session)}\r\n`,
      );
      const r = await reply(conn, ms, 'XCLIENT');
      if (!r.ok) throw new UpstreamError('EPROTOCOL', `${opts.label} refused XCLIENT`, r.text);
    }
    let login: { ok: boolean; text: string };
    if (creds.master) {
      const m = creds.master;
      const payload = Buffer.from(`${creds.user}\0${m.user}\0${m.password}`, 'utf8').toString(
        'base64',
      );
      conn.write(`AUTH PLAIN ${payload}\r\n`);
      login = await reply(conn, ms, 'AUTH PLAIN');
    } else {
      if (/[\r\n\0 ]/.test(creds.user) || /[\r\n\0]/.test(creds.password)) {
        throw new UpstreamError('EAUTH', 'user name or password cannot be sent with USER/PASS');
      }
      conn.write(`USER ${creds.user}\r\n`);
      const u = await reply(conn, ms, 'USER');
      if (!u.ok) throw new UpstreamError('EAUTH', `${opts.label} refused USER`, u.text);
      conn.write(`PASS ${creds.password}\r\n`);
      login = await reply(conn, ms, 'PASS');
    }
    if (!login.ok) {
      // RFC 3206: [IN-USE] and [SYS/TEMP] are not wrong passwords
      if (/^\[(IN-USE|SYS\/TEMP)\]/i.test(login.text))
        throw new UpstreamError('ECLOSED', `${opts.label} cannot open the mailbox now`, login.text);
      throw new UpstreamError('EAUTH', `${opts.label} refused the login`, login.text);
    }
    if (opts.confirm !== false) {
      conn.write('STAT\r\n');
      const stat = await reply(conn, ms, 'STAT');
      if (!stat.ok)
        throw new UpstreamError(
          'EAUTH',
          `${opts.label} accepted the login but refused STAT after it`,
          stat.text,
        );
    }
    const { socket, buffered, reader } = conn.detach();
    return { socket, buffered, reader, loginText: login.text };
  } catch (err) {
    conn.close();
    throw err;
  }
}
