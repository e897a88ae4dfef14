/**
 * Logging in (RFC 3501 6.2): LOGIN with quoted strings (literals for 8-bit passwords), or
 * SASL PLAIN (RFC 4616) when the server disables LOGIN, and for master users: authorization
 * identity = the user, authentication identity = the master (Dovecot also takes
 * `user*master` with LOGIN).
 */
import { ImapError } from './errors.js';
import type { ImapSession } from './imap-session.js';
import type { CommandPart, Credentials, Tagged } from './session-types.js';
import { quoted } from './wire.js';

/** Log in as the user, or through the master user. Throws EAUTH with the server's text. */
export async function login(s: ImapSession, c: Credentials): Promise<void> {
  if (s.has('LOGINDISABLED') && !s.has('AUTH=PLAIN')) {
    throw new ImapError(
      'EAUTH',
      `${s.label} refuses to log in on this connection (LOGINDISABLED); use TLS`,
    );
  }
  let t: Tagged;
  if (c.master && s.has('AUTH=PLAIN')) {
    // SASL PLAIN: authorization identity = the user, authentication identity = the master (RFC 4616)
    t = await authenticatePlain(s, c.user, c.master.user, c.master.password);
  } else if (c.master) {
    t = await s.command([
      'LOGIN ',
      ...astring(`${c.user}${c.master.separator}${c.master.user}`),
      ' ',
      ...astring(c.master.password),
    ]);
  } else if (s.has('LOGINDISABLED')) {
    t = await authenticatePlain(s, '', c.user, c.password);
  } else {
    t = await s.command(['LOGIN ', ...astring(c.user), ' ', ...astring(c.password)]);
  }
  if (t.status !== 'OK') {
    const who = c.master ? `${c.user} (through master user ${c.master.user})` : c.user;
    throw new ImapError('EAUTH', `${s.label} refused the login of ${who}: ${t.text}`, {
      serverText: t.text,
      serverCode: t.code?.name,
    });
  }
  if (t.code?.name === 'CAPABILITY') s.setCapabilities(t.code.args);
  else await s.refreshCapabilities();
}

function authenticatePlain(
  s: ImapSession,
  authz: string,
  authc: string,
  password: string,
): Promise<Tagged> {
  const token = Buffer.from(`${authz}\0${authc}\0${password}`, 'utf8').toString('base64');
  if (s.has('SASL-IR')) return s.command(`AUTHENTICATE PLAIN ${token}`);
  return s.command('AUTHENTICATE PLAIN', undefined, token);
}

/** A string as astring parts: quoted when possible, else a literal (8-bit passwords). */
export function astring(s: string): CommandPart[] {
  const q = quoted(s);
  return q === null ? [{ literal: Buffer.from(s, 'utf8') }] : [q];
}
