/**
 * The well-behaved sessions of the soak, each a short honest conversation that checks every
 * reply: TLS (STARTTLS or implicit), login, read or send one small message, log out. They
 * run unchanged against the gateway and against the servers behind it (the baseline).
 */
import { Wire, WireError } from './wire.js';

export type Kind = 'imap-starttls' | 'imaps' | 'pop3-stls' | 'submission';
export const KINDS: readonly Kind[] = ['imap-starttls', 'imaps', 'pop3-stls', 'submission'];

export interface Account {
  user: string;
  password: string;
}

export interface SessionTarget {
  port: number;
  localAddress: string;
  ca: string;
  timeoutMs: number;
}

export interface SessionResult {
  /** connect to login accepted (TLS handshakes included), in ms */
  loginMs: number;
}

const TAGGED_BAD = (tag: string): RegExp => new RegExp(`^${tag} (NO|BAD)`);
const tagged = (tag: string): RegExp => new RegExp(`^${tag} OK`);

/** RFC 3501 4.3: a quoted string, enough for our generated names and passwords. */
const quoted = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;

/** One small RFC 5322 message, CRLF lines, no line starting with a dot. */
export function smallMessage(from: string, to: string, n: number): string {
  const body = 'The soak sends a short note so the relay path is exercised end to end.\r\n';
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: soak ${n}`,
    `Message-ID: <soak-${n}-${Date.now()}@soak.test>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    '',
    body.repeat(8),
  ].join('\r\n');
}

/** Log in over IMAP on an open (greeted or not yet greeted) connection; returns login time. */
export async function imapLogin(
  w: Wire,
  a: Account,
  t0: number,
  starttls: boolean,
): Promise<number> {
  w.step = 'greeting';
  await w.until(/^\* OK/, /^\* (BYE|NO|BAD)/);
  if (starttls) {
    await w.cmd('starttls', 'a1 STARTTLS', tagged('a1'), TAGGED_BAD('a1'));
    await w.startTls();
  }
  await w.cmd(
    'login',
    `a2 LOGIN ${quoted(a.user)} ${quoted(a.password)}`,
    tagged('a2'),
    TAGGED_BAD('a2'),
  );
  return performance.now() - t0;
}

async function imapSession(
  s: SessionTarget,
  a: Account,
  implicit: boolean,
): Promise<SessionResult> {
  const t0 = performance.now();
  const w = await Wire.open({ ...s, tls: implicit });
  try {
    const loginMs = await imapLogin(w, a, t0, !implicit);
    const sel = await w.cmd('select', 'a3 SELECT INBOX', tagged('a3'), TAGGED_BAD('a3'));
    const exists = Number(/^\* (\d+) EXISTS/m.exec(sel.join('\n'))?.[1] ?? 0);
    if (exists > 0) {
      const f = await w.cmd(
        'fetch',
        'a4 FETCH 1 (FLAGS BODY.PEEK[])',
        tagged('a4'),
        TAGGED_BAD('a4'),
      );
      if (!f.some((l) => /^\* 1 FETCH /.test(l))) throw new WireError('fetch', 'no FETCH response');
    }
    await w.cmd('logout', 'a5 LOGOUT', tagged('a5'), TAGGED_BAD('a5'));
    return { loginMs };
  } finally {
    w.close();
  }
}

async function pop3Session(s: SessionTarget, a: Account): Promise<SessionResult> {
  const t0 = performance.now();
  const w = await Wire.open({ ...s });
  const ok = /^\+OK/;
  const err = /^-ERR/;
  try {
    w.step = 'greeting';
    await w.until(ok, err);
    await w.cmd('stls', 'STLS', ok, err);
    await w.startTls();
    await w.cmd('user', `USER ${a.user}`, ok, err);
    await w.cmd('login', `PASS ${a.password}`, ok, err);
    const loginMs = performance.now() - t0;
    const [stat] = await w.cmd('stat', 'STAT', ok, err);
    if (Number(/^\+OK (\d+)/.exec(stat!)?.[1] ?? 0) > 0) {
      await w.cmd('retr', 'RETR 1', ok, err);
      await w.until(/^\.$/); // RFC 1939 3: the multi-line reply ends with a lone dot
    }
    await w.cmd('quit', 'QUIT', ok, err);
    return { loginMs };
  } finally {
    w.close();
  }
}

/** EHLO and its multi-line reply (RFC 5321 4.2.1: the last line has a space after the code). */
async function ehlo(w: Wire): Promise<string[]> {
  return w.cmd('ehlo', 'EHLO soak.test', /^250 /, /^[45]\d\d[ -]/);
}

async function submissionSession(
  s: SessionTarget,
  a: Account,
  rcpt: string,
  n: number,
): Promise<SessionResult> {
  const t0 = performance.now();
  const w = await Wire.open({ ...s });
  const bad = /^[45]\d\d/;
  try {
    w.step = 'greeting';
    await w.until(/^220 /, bad);
    await ehlo(w);
    await w.cmd('starttls', 'STARTTLS', /^220 /, bad);
    await w.startTls();
    const caps = await ehlo(w);
    if (!caps.some((l) => /^250[ -]AUTH\b.*\bPLAIN\b/i.test(l)))
      throw new WireError('ehlo', 'no AUTH PLAIN after STARTTLS');
    const plain = Buffer.from(`\0${a.user}\0${a.password}`).toString('base64');
    await w.cmd('login', `AUTH PLAIN ${plain}`, /^235 /, bad);
    const loginMs = performance.now() - t0;
    await w.cmd('mail', `MAIL FROM:<${a.user}>`, /^250 /, bad);
    await w.cmd('rcpt', `RCPT TO:<${rcpt}>`, /^250 /, bad);
    await w.cmd('data', 'DATA', /^354 /, bad);
    await w.cmd('message', `${smallMessage(a.user, rcpt, n)}\r\n.`, /^250 /, bad);
    await w.cmd('quit', 'QUIT', /^221 /, bad);
    return { loginMs };
  } finally {
    w.close();
  }
}

/** Run one session of `kind`; `rcpt` is the recipient of a submission. */
export function runSession(
  kind: Kind,
  target: SessionTarget,
  a: Account,
  rcpt: string,
  n: number,
): Promise<SessionResult> {
  switch (kind) {
    case 'imap-starttls':
      return imapSession(target, a, false);
    case 'imaps':
      return imapSession(target, a, true);
    case 'pop3-stls':
      return pop3Session(target, a);
    case 'submission':
      return submissionSession(target, a, rcpt, n);
  }
}

/**
 * A logged-in IMAP session sitting in IDLE (RFC 2177) until `finish()`, which ends the
 * IDLE and logs out, checking both replies: a session the gateway dropped while idle fails.
 */
export async function openIdle(
  s: SessionTarget,
  a: Account,
  implicit: boolean,
): Promise<{ finish(): Promise<void>; abort(): void }> {
  const w = await Wire.open({ ...s, tls: implicit });
  try {
    await imapLogin(w, a, performance.now(), !implicit);
    await w.cmd('select', 'a3 SELECT INBOX', tagged('a3'), TAGGED_BAD('a3'));
    await w.cmd('idle', 'a4 IDLE', /^\+ /, TAGGED_BAD('a4'));
  } catch (err) {
    w.close();
    throw err;
  }
  return {
    async finish() {
      try {
        await w.cmd('done', 'DONE', tagged('a4'), TAGGED_BAD('a4'));
        await w.cmd('logout', 'a5 LOGOUT', tagged('a5'), TAGGED_BAD('a5'));
      } finally {
        w.close();
      }
    },
    abort: () => w.close(),
  };
}
