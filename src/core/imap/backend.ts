/**
 * Logging in to an IMAP backend on behalf of a client (RFC 3501): greeting, STARTTLS,
 * ID with the client's address, LOGIN (or AUTHENTICATE PLAIN for a master user), then a
 * confirming command. Some servers (Exchange/O365) answer OK to LOGIN with a wrong
 * password and fail later commands, so a login only counts once `LIST "" ""` worked
 * (protocol-notes.md, "Logins").
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

const CAPS_IN_CODE = /\[CAPABILITY ([^\]]*)\]/i;

function capsFrom(line: string): string[] | undefined {
  const m = CAPS_IN_CODE.exec(line);
  return m ? m[1]!.trim().split(/\s+/) : undefined;
}

/** An IMAP string for a command: quoted when it can be (RFC 3501 4.3), else a literal. */
function needsLiteral(s: Buffer): boolean {
  for (const b of s) if (b < 0x20 || b > 0x7e) return true;
  return false;
}

function quote(s: Buffer): string {
  return `"${s.toString('latin1').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

interface Exchange {
  /** the tagged line without the tag */
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  untagged: string[];
}

class ImapTalk {
  private n = 0;
  constructor(
    readonly conn: Transport,
    readonly commandMs: number,
    public caps: string[] | undefined,
  ) {}

  nextTag(): string {
    return `ap${++this.n}`;
  }

  /**
   * Send a command made of parts; Buffer parts go as literals (waiting for "+" unless
   * LITERAL+). The whole exchange, untagged responses included, is over within commandMs.
   */
  async command(parts: Array<string | Buffer>, what: string): Promise<Exchange> {
    const by = new Reply(this.commandMs);
    const tag = this.nextTag();
    const plus = this.has('LITERAL+');
    let line = `${tag} `;
    for (const p of parts) {
      if (typeof p === 'string') {
        line += p;
        continue;
      }
      if (!needsLiteral(p)) {
        line += quote(p);
        continue;
      }
      this.conn.write(`${line}{${p.length}${plus ? '+' : ''}}\r\n`);
      if (!plus) {
        // Replies to pipelined commands (ID) may come first; wait for "+" or our own tag.
        let go = await this.conn.readLine(by, `the continuation for ${what}`);
        while (!go.startsWith('+') && !go.startsWith(`${tag} `)) {
          go = await this.conn.readLine(by, `the continuation for ${what}`);
        }
        if (!go.startsWith('+')) return this.finish(tag, go, [], what, by);
      }
      this.conn.write(p);
      line = '';
    }
    this.conn.write(`${line}\r\n`);
    return this.finish(tag, undefined, [], what, by);
  }

  private async finish(
    tag: string,
    first: string | undefined,
    untagged: string[],
    what: string,
    by: Reply,
  ): Promise<Exchange> {
    let line = first ?? (await this.conn.readLine(by, `the reply to ${what}`));
    for (;;) {
      if (line.startsWith(`${tag} `)) {
        const rest = line.slice(tag.length + 1);
        const sp = rest.indexOf(' ');
        const status = (sp < 0 ? rest : rest.slice(0, sp)).toUpperCase();
        if (status !== 'OK' && status !== 'NO' && status !== 'BAD') {
          throw new UpstreamError(
            'EPROTOCOL',
            `${this.conn.label} answered ${what} with "${line.slice(0, 200)}"`,
          );
        }
        return { status, text: sp < 0 ? '' : rest.slice(sp + 1), untagged };
      }
      if (/^\* BYE/i.test(line))
        throw new UpstreamError('ECLOSED', `${this.conn.label} said BYE during ${what}`, line);
      if (untagged.length < 1000) untagged.push(line);
      line = await this.conn.readLine(by, `the reply to ${what}`);
    }
  }

  has(cap: string): boolean {
    return this.caps?.some((c) => c.toUpperCase() === cap) ?? false;
  }

  async refreshCaps(): Promise<void> {
    const r = await this.command(['CAPABILITY'], 'CAPABILITY');
    if (r.status !== 'OK')
      throw new UpstreamError('EPROTOCOL', `${this.conn.label} refused CAPABILITY`, r.text);
    const line = r.untagged.find((l) => /^\* CAPABILITY /i.test(l));
    this.caps = line ? line.slice('* CAPABILITY '.length).trim().split(/\s+/) : [];
  }
}

/** RFC 2971 ID values: quoted strings, with anything odd dropped. */
function idString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]|["\\]/g, '')}"`;
}

export interface ImapLoginOptions extends ConnectOptions {
  label: string;
  /** forward the client's address with ID (RFC 2971, Dovecot's x-originating-ip) */
  forwardClient: boolean;
  /** the post-login command that proves the login (default LIST "" ""); false: none */
  confirm?: string | false;
}

/**
 * Connect and log in. On success the connection is detached and returned for splicing;
 * on failure it is closed. Throws UpstreamError (EAUTH when the credentials were refused).
 */
export async function imapLogin(
  ep: Endpoint,
  creds: LoginCredentials,
  client: ClientInfo,
  opts: ImapLoginOptions,
): Promise<UpstreamSession> {
  const t = opts.timeouts;
  const conn = await openTransport(ep, opts.label, opts);
  try {
    const greeting = await conn.readLine(t.greetingMs, 'a greeting');
    if (/^\* PREAUTH/i.test(greeting)) {
      throw new UpstreamError(
        'EPROTOCOL',
        `${opts.label} greeted with PREAUTH: it must ask for a login`,
        greeting,
      );
    }
    if (/^\* BYE/i.test(greeting))
      throw new UpstreamError('ECLOSED', `${opts.label} refused the connection`, greeting);
    if (!/^\* OK/i.test(greeting)) {
      throw new UpstreamError(
        'EPROTOCOL',
        `${opts.label} sent no IMAP greeting: "${greeting.slice(0, 100)}"`,
      );
    }
    const talk = new ImapTalk(conn, t.commandMs, capsFrom(greeting));
    if (ep.tls === 'starttls') {
      const r = await talk.command(['STARTTLS'], 'STARTTLS');
      if (r.status !== 'OK') {
        throw new UpstreamError(
          'ETLS',
          `${opts.label} refused STARTTLS; fix tls= in its URL (TLS is never dropped silently)`,
          r.text,
        );
      }
      await conn.startTls();
      talk.caps = undefined; // RFC 3501 6.2.1: capabilities learnt before TLS are void
    }
    if (!talk.caps) await talk.refreshCaps();
    if (opts.forwardClient && talk.has('ID')) {
      const fields = [
        `"x-originating-ip" ${idString(client.address)}`,
        `"x-originating-port" "${client.port}"`,
        `"x-connected-ip" ${idString(client.localAddress)}`,
        `"x-connected-port" "${client.localPort}"`,
        `"x-session-id" ${idString(client.session)}`,
      ];
      // Pipelined with the login (RFC 3501 5.5): one round trip less per login. Its reply
      // is skipped while waiting for the login's.
      talk.conn.write(`${talk.nextTag()} ID (${fields.join(' ')})\r\n`);
    }
    if (talk.has('LOGINDISABLED') && !creds.master) {
      throw new UpstreamError(
        'ETLS',
        `${opts.label} says LOGINDISABLED: use tls=starttls or an imaps:// URL`,
      );
    }
    const login = creds.master
      ? await authenticatePlain(talk, creds)
      : await talk.command(
          ['LOGIN ', Buffer.from(creds.user, 'utf8'), ' ', Buffer.from(creds.password, 'utf8')],
          'LOGIN',
        );
    if (login.status !== 'OK')
      throw new UpstreamError('EAUTH', `${opts.label} refused the login`, login.text);
    const caps = capsFrom(login.text);
    const untagged = [...login.untagged];
    if (opts.confirm !== false) {
      const check = opts.confirm ?? 'LIST "" ""';
      const confirm = await talk.command([check], 'the login check');
      if (confirm.status !== 'OK') {
        throw new UpstreamError(
          'EAUTH',
          `${opts.label} accepted the login but refused ${check} after it`,
          confirm.text,
        );
      }
      untagged.push(...confirm.untagged);
    }
    const capLine = untagged.find((l) => /^\* CAPABILITY /i.test(l));
    const { socket, buffered, reader } = conn.detach();
    return {
      socket,
      buffered,
      reader,
      capabilities: caps ?? (capLine ? capLine.slice(13).trim().split(/\s+/) : undefined),
      loginText: login.text,
    };
  } catch (err) {
    conn.close();
    throw err;
  }
}

/** SASL PLAIN (RFC 4616) with authzid = user, authcid = master (Dovecot master users). */
async function authenticatePlain(talk: ImapTalk, creds: LoginCredentials): Promise<Exchange> {
  const m = creds.master!;
  const payload = Buffer.from(`${creds.user}\0${m.user}\0${m.password}`, 'utf8').toString('base64');
  if (talk.has('SASL-IR')) return talk.command([`AUTHENTICATE PLAIN ${payload}`], 'AUTHENTICATE');
  const tag = talk.nextTag();
  const by = new Reply(talk.commandMs);
  talk.conn.write(`${tag} AUTHENTICATE PLAIN\r\n`);
  let go = await talk.conn.readLine(by, 'the AUTHENTICATE continuation');
  while (!go.startsWith('+') && !go.startsWith(`${tag} `))
    go = await talk.conn.readLine(by, 'the AUTHENTICATE continuation');
  if (!go.startsWith('+'))
    throw new UpstreamError('EAUTH', `${talk.conn.label} refused AUTHENTICATE PLAIN`, go);
  talk.conn.write(`${payload}\r\n`);
  for (;;) {
    const line = await talk.conn.readLine(by, 'the AUTHENTICATE reply');
    if (!line.startsWith(`${tag} `)) continue;
    const rest = line.slice(tag.length + 1);
    const status = rest.split(' ', 1)[0]!.toUpperCase() as Exchange['status'];
    return { status, text: rest.slice(status.length + 1), untagged: [] };
  }
}
